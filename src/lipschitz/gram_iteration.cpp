#include "lipkit/lipschitz/gram_iteration.h"

#include <torch/torch.h>

#include <cmath>

namespace lipkit::lipschitz {

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

}  // namespace lipkit::lipschitz
