#include "lipkit/linalg/gram_iteration.h"

#include <torch/torch.h>

#include <cmath>

#include "lipkit/linalg/exact_norm.h"

namespace lipkit::linalg {

double gram_iteration_bound(const torch::Tensor& weight, int64_t max_iters, double rtol) {
  TORCH_CHECK(weight.dim() == 2, "gram_iteration_bound: expected a matrix, got shape ",
              weight.sizes());
  torch::NoGradGuard no_grad;
  auto g = weight.detach().to(torch::kDouble);
  if (g.numel() == 0) return 0.0;
  // G_t = exp(log_scale) * g with ||g||_F = 1 after each rescale; bound_t = ||G_t||_F^(1/2^t).
  double log_scale = 0.0;
  double prev = std::numeric_limits<double>::infinity();
  double bound = prev;
  for (int64_t t = 0;; ++t) {
    const double fro = g.norm().item<double>();
    if (fro == 0.0) return 0.0;
    g = g / fro;
    log_scale += std::log(fro);
    bound = std::exp(log_scale / std::ldexp(1.0, static_cast<int>(t)));
    if (t >= max_iters || (prev - bound) <= rtol * bound) break;
    prev = bound;
    // Square with the smaller Gram side first: W W^T and W^T W share their nonzero spectrum.
    g = (t == 0 && g.size(0) < g.size(1)) ? torch::mm(g, g.t()) : torch::mm(g.t(), g);
    log_scale *= 2.0;
  }
  return bound * (1.0 + 1e-9);
}

}  // namespace lipkit::linalg

namespace lipkit::linalg {

double gram_iteration_conv_bound(const torch::Tensor& kernel, int64_t height, int64_t width,
                                 int64_t padding, int64_t iters) {
  TORCH_CHECK(kernel.dim() == 4, "gram_iteration_conv_bound: kernel must be 4-D, got ", kernel.sizes());
  torch::NoGradGuard no_grad;
  auto g = circular_kernel_spectrum(kernel, height + padding, width + padding);
  const int64_t co = g.size(1), ci = g.size(2);
  if (co > ci) g = g.transpose(1, 2).conj();  // same singular values, smaller Gram side
  auto log_scale = torch::zeros({g.size(0)}, torch::kDouble);
  torch::Tensor bound;
  for (int64_t t = 0;; ++t) {
    auto fro = torch::linalg::vector_norm(g, 2, {1, 2}, false, c10::nullopt).clamp_min(1e-300);
    g = g / fro.view({-1, 1, 1});
    log_scale = log_scale + fro.log();
    bound = (log_scale / std::ldexp(1.0, static_cast<int>(t))).exp();
    if (t >= iters) break;
    g = torch::matmul(g, g.transpose(1, 2).conj());
    log_scale = log_scale * 2.0;
  }
  return bound.max().item<double>() * (1.0 + 1e-9);
}

}  // namespace lipkit::linalg
