#include "support/dist_reference.h"

#include <cmath>

namespace lipkit::testing {

namespace {
torch::Tensor diffs(const torch::Tensor& x, const torch::Tensor& w) {
  return (x.unsqueeze(1) - w.unsqueeze(0)).abs();  // (B, M, N)
}
}  // namespace

torch::Tensor linf_dist_reference(const torch::Tensor& x, const torch::Tensor& w) {
  auto d = diffs(x, w);
  return d.gather(-1, d.argmax(-1, true)).squeeze(-1);
}

torch::Tensor lp_dist_reference(const torch::Tensor& x, const torch::Tensor& w, double p) {
  auto d = diffs(x, w);
  auto scale = d.amax(-1, true).detach().clamp_min(1e-300);
  // linalg's norm backward gives 0 (not NaN) at a zero vector
  return torch::linalg_vector_norm(d / scale, p, {-1}, true, c10::nullopt).mul(scale).squeeze(-1);
}

torch::Tensor sort_neuron_reference(const torch::Tensor& x, const torch::Tensor& w, double q, int64_t k) {
  auto d = diffs(x, w);
  auto sorted = std::get<0>(torch::sort(d, /*stable=*/true, /*dim=*/-1, /*descending=*/true));
  std::vector<double> c(k);
  double total = 0;
  for (int64_t t = 0; t < k; ++t) total += c[t] = q * std::pow(1 - q, double(t));
  for (auto& v : c) v /= total;
  return sorted.narrow(-1, 0, k).matmul(torch::tensor(c, x.options()));
}

}  // namespace lipkit::testing
