#include "lipkit/linalg/power_iteration.h"

#include <torch/torch.h>

#include "lipkit/linalg/conv_adjoint.h"

namespace lipkit::linalg {

namespace {
torch::Tensor normalized(const torch::Tensor& t) { return t / (t.norm() + 1e-12); }
}  // namespace

torch::Tensor power_iteration_dense(const torch::Tensor& weight, torch::Tensor& u, int64_t iters) {
  TORCH_CHECK(weight.dim() == 2, "power_iteration_dense: weight must be a matrix, got shape ",
              weight.sizes());
  TORCH_CHECK(u.numel() == weight.size(1), "power_iteration_dense: vector has ", u.numel(),
              " elements, the operator's input has ", weight.size(1));
  {
    torch::NoGradGuard no_grad;
    auto w = weight.detach();
    auto v = u.reshape({-1});
    for (int64_t i = 0; i < iters; ++i) {
      auto wv = normalized(torch::mv(w, v));
      v = normalized(torch::mv(w.t(), wv));
    }
    u.copy_(v.view(u.sizes()));
  }
  return torch::mv(weight, u.detach().reshape({-1})).norm();
}

torch::Tensor power_iteration_conv(const torch::Tensor& kernel, torch::Tensor& u, int64_t padding,
                                   int64_t iters) {
  TORCH_CHECK(kernel.dim() == 4, "power_iteration_conv: kernel must be 4-D, got shape ",
              kernel.sizes());
  TORCH_CHECK(u.dim() == 4 && u.size(0) == 1 && u.size(1) == kernel.size(1),
              "power_iteration_conv: vector must have shape (1, ", kernel.size(1),
              ", H, W), got ", u.sizes());
  {
    torch::NoGradGuard no_grad;
    auto k = kernel.detach();
    auto v = u.clone();
    for (int64_t i = 0; i < iters; ++i) {
      auto kv = normalized(torch::conv2d(v, k, {}, 1, padding));
      v = normalized(conv2d_adjoint(kv, k, padding));
    }
    u.copy_(v);
  }
  return torch::conv2d(u.detach(), kernel, {}, 1, padding).norm();
}

}  // namespace lipkit::linalg

namespace lipkit::linalg {

bool ensure_power_vector(torch::Tensor& u, torch::IntArrayRef shape) {
  if (u.sizes() == shape) return false;
  torch::NoGradGuard no_grad;
  auto fresh = torch::randn(shape, u.options());
  u.set_(fresh / fresh.norm());  // in place: the module's buffer entry shares this tensor
  return true;
}

}  // namespace lipkit::linalg
