#include "lipkit/kernels/conv2d.h"

#include <torch/torch.h>

#include "kernels/cpu/conv2d_kernel.h"
#include "lipkit/linalg/conv_adjoint.h"

namespace lipkit::kernels {

namespace {
bool records_gradient(const torch::Tensor& x, const torch::Tensor& w, const torch::Tensor& bias) {
  return torch::GradMode::is_enabled() &&
         (x.requires_grad() || w.requires_grad() || (bias.defined() && bias.requires_grad()));
}
}  // namespace

torch::Tensor conv2d_direct(const torch::Tensor& x, const torch::Tensor& w, const torch::Tensor& bias,
                            int64_t padding) {
  TORCH_CHECK(x.dim() == 4 && w.dim() == 4 && w.size(1) == x.size(1) && w.size(2) == w.size(3),
              "conv2d_direct: expected x (N, C, H, W) and a square kernel (Co, C, k, k), got x ", x.sizes(),
              " and kernel ", w.sizes());
  TORCH_CHECK(x.device().is_cpu() && x.scalar_type() == torch::kDouble && w.scalar_type() == torch::kDouble &&
                  w.device().is_cpu() && (!bias.defined() || (bias.scalar_type() == torch::kDouble && bias.device().is_cpu())),
              "conv2d_direct: CPU float64 tensors only, got x ", x.scalar_type(), " on ", x.device());
  TORCH_CHECK(!bias.defined() || (bias.dim() == 1 && bias.size(0) == w.size(0)), "conv2d_direct: bias ",
              bias.sizes(), " does not match ", w.size(0), " output channels");
  TORCH_CHECK(padding >= 0 && x.size(2) + 2 * padding >= w.size(2) && x.size(3) + 2 * padding >= w.size(3),
              "conv2d_direct: padding ", padding, " leaves no output for input ", x.sizes(), " and kernel ", w.sizes());
  TORCH_CHECK(!records_gradient(x, w, bias), "conv2d_direct: forward only, but a gradient is being recorded "
              "(use kernels::conv2d, which falls back to LibTorch)");
  torch::NoGradGuard no_grad;
  auto xpad = torch::constant_pad_nd(x, {padding, padding, padding, padding}).contiguous();
  return cpu::conv2d_direct_forward(xpad, w.contiguous(), bias.defined() ? bias.contiguous() : bias);
}

torch::Tensor conv2d(const torch::Tensor& x, const torch::Tensor& w, const torch::Tensor& bias, int64_t padding) {
  const bool direct = x.device().is_cpu() && x.scalar_type() == torch::kDouble && x.dim() == 4 &&
                      w.scalar_type() == torch::kDouble && w.dim() == 4 && w.size(2) == w.size(3) &&
                      !records_gradient(x, w, bias);
  return direct ? conv2d_direct(x, w, bias, padding) : torch::conv2d(x, w, bias, 1, padding);
}

torch::Tensor conv2d_adjoint(const torch::Tensor& y, const torch::Tensor& w, int64_t padding) {
  const auto [flipped, flipped_padding] = linalg::adjoint_kernel(w, padding);
  return conv2d(y, flipped, {}, flipped_padding);
}

}  // namespace lipkit::kernels
