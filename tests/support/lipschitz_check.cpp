#include "lipschitz_check.h"

#include "lipkit/lipschitz/lower_bound.h"

namespace lipkit::testing {

namespace {
std::vector<int64_t> batched(int64_t b, torch::IntArrayRef shape) {
  std::vector<int64_t> s{b};
  s.insert(s.end(), shape.begin(), shape.end());
  return s;
}
}  // namespace

double jacobian_norm(const BatchFn& f, const torch::Tensor& x, Norm norm) {
  int64_t m = 0;
  {
    torch::NoGradGuard no_grad;
    m = f(x.unsqueeze(0)).numel();
  }
  auto xs = x.unsqueeze(0).expand(batched(m, x.sizes())).clone().requires_grad_(true);
  auto ys = f(xs).reshape({m, m});
  auto eye = torch::eye(m, ys.options());
  auto grad = torch::autograd::grad({ys}, {xs}, {eye})[0];
  auto jac = grad.reshape({m, -1}).to(torch::kDouble);  // row i = d y_i / d x
  if (norm == Norm::Linf) return jac.abs().sum(1).max().item<double>();
  return torch::linalg::svdvals(jac, c10::nullopt).max().item<double>();
}

double max_pair_ratio(const BatchFn& f, torch::IntArrayRef sample_shape, int64_t pairs,
                      const torch::TensorOptions& options, Norm norm) {
  torch::NoGradGuard no_grad;
  auto x = torch::randn(batched(pairs, sample_shape), options);
  auto scale = torch::pow(10.0, -3.0 * torch::rand({pairs}, options));  // distances 1 .. 1e-3
  std::vector<int64_t> bshape(x.dim(), 1);
  bshape[0] = pairs;
  auto d = torch::randn_like(x) * scale.view(bshape);
  auto ratio = lipschitz::per_sample_norm(f(x + d) - f(x), norm) / lipschitz::per_sample_norm(d, norm);
  return ratio.max().item<double>();
}

double ascent_ratio(const BatchFn& f, torch::IntArrayRef sample_shape, int64_t starts, int64_t steps,
                    const torch::TensorOptions& options, Norm norm) {
  return lipschitz::empirical_lower_bound(f, torch::randn(batched(starts, sample_shape), options), steps,
                                          norm);
}

LipschitzReport measure_lipschitz(const BatchFn& f, torch::IntArrayRef sample_shape,
                                  const torch::TensorOptions& options, Norm norm) {
  LipschitzReport r;
  for (int i = 0; i < 4; ++i) {
    r.jacobian = std::max(r.jacobian, jacobian_norm(f, torch::randn(sample_shape, options), norm));
  }
  r.pairs = max_pair_ratio(f, sample_shape, 256, options, norm);
  r.ascent = ascent_ratio(f, sample_shape, 8, 150, options, norm);
  return r;
}

}  // namespace lipkit::testing
