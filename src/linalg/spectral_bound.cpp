#include "lipkit/linalg/spectral_bound.h"

#include <ATen/CPUGeneratorImpl.h>
#include <torch/torch.h>

#include <cmath>

#include "lipkit/linalg/gram.h"
#include "lipkit/linalg/gram_iteration.h"

namespace lipkit::linalg {

namespace {
constexpr double kUnit = 0x1p-53;  // unit roundoff of float64

// 2 gamma_j: Higham's gamma_j = j u / (1 - j u), doubled as a margin for blocked implementations
double twice_gamma(int64_t j) {
  const double x = 2.0 * static_cast<double>(j) * kUnit;
  return x / (1.0 - x);
}

// lambda_max of the symmetric G estimated from below: Lanczos from a fixed start with full
// reorthogonalisation (twice), the largest Ritz value, at most `steps` steps; it stops early once the
// Ritz value moved by less than 1e-12 (relative) over 10 steps, far inside the first eps of the ladder.
// Only the estimate: the Cholesky step proves, whatever it is.
double lanczos_estimate(const torch::Tensor& g, int64_t steps) {
  const int64_t n = g.size(0), k = std::min(steps, n);
  auto gen = at::make_generator<at::CPUGeneratorImpl>(0x5eedULL);  // fixed: the bound is reproducible
  auto q = torch::zeros({n, k}, g.options());
  auto v = torch::randn({n}, gen, g.options());
  q.select(1, 0).copy_(v / v.norm());
  auto t = torch::zeros({k, k}, g.options());
  auto ritz = [&](int64_t m) { return torch::linalg::eigvalsh(t.narrow(0, 0, m).narrow(1, 0, m), "L").max().item<double>(); };
  double previous = -1.0;
  for (int64_t j = 0; j < k; ++j) {
    auto z = torch::mv(g, q.select(1, j));
    t[j][j] = torch::dot(q.select(1, j), z);
    auto basis = q.narrow(1, 0, j + 1);
    for (int pass = 0; pass < 2; ++pass) z = z - torch::mv(basis, torch::mv(basis.t(), z));
    const double beta = z.norm().item<double>();
    if (j + 1 == k) break;
    if (beta <= 1e-12 * std::abs(t[0][0].item<double>()) + 1e-300) return ritz(j + 1);  // an invariant subspace
    if ((j + 1) % 10 == 0) {
      const double current = ritz(j + 1);
      if (current - previous <= 1e-12 * std::abs(current)) return current;
      previous = current;
    }
    t[j][j + 1] = beta, t[j + 1][j] = beta;
    q.select(1, j + 1).copy_(z / beta);
  }
  return ritz(k);
}
}  // namespace

double spectral_norm_bound(const torch::Tensor& weight) {
  TORCH_CHECK(weight.dim() == 2, "spectral_norm_bound: expected a matrix, got shape ", weight.sizes());
  torch::NoGradGuard no_grad;
  auto w = weight.detach().to(torch::kCPU, torch::kDouble).contiguous();
  if (w.numel() == 0) return 0.0;
  const double top = w.abs().max().item<double>();
  if (!std::isfinite(top)) return gram_iteration_bound(weight);
  if (top == 0.0) return 0.0;
  int exponent = 0;
  std::frexp(top, &exponent);
  w = w * std::ldexp(1.0, -exponent);  // exact: max |w_ij| in [1/2, 1)
  const bool wide = w.size(0) <= w.size(1);
  const int64_t inner = wide ? w.size(1) : w.size(0);
  const auto g = gram(wide ? w : w.t());  // one triangle of GEMMs; the factorisation reads the lower one
  const int64_t n = g.size(0);
  const double lambda = lanczos_estimate(g, 160);
  const double diag_max = g.diagonal().max().item<double>();
  const double w_fro2 = w.pow(2).sum().item<double>() * (1.0 + 1e-6);  // its own rounding: far below 1e-6
  for (const double eps : {1e-9, 1e-8, 1e-7, 1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 1e-1}) {
    const double s = lambda * (1.0 + eps) + 1e-280;
    auto a = -g;  // exact; the lower triangle is what the factorisation reads
    a.diagonal().add_(s);
    auto [r, info] = torch::linalg_cholesky_ex(a);
    if (info.item<int64_t>() != 0) continue;
    const double r_fro2 = r.pow(2).sum().item<double>() * (1.0 + 1e-6);
    const double lambda_max = s + kUnit * (s + diag_max) + twice_gamma(n + 1) * r_fro2 + twice_gamma(inner) * w_fro2 + 1e-290;
    return std::ldexp(std::sqrt(lambda_max) * (1.0 + 1e-12), exponent);
  }
  return gram_iteration_bound(weight);
}

}  // namespace lipkit::linalg
