#include "lipkit/lipschitz/lower_bound.h"

#include <torch/torch.h>

namespace lipkit::lipschitz {

torch::Tensor per_sample_norm(const torch::Tensor& t, Norm norm) {
  auto flat = t.reshape({t.size(0), -1});
  return norm == Norm::L2 ? flat.norm(2, {1}) : flat.abs().amax(1);
}

double empirical_lower_bound(const std::function<torch::Tensor(const torch::Tensor&)>& f,
                             const torch::Tensor& starts, int64_t steps, Norm norm, double lr) {
  auto x = starts.detach().clone().requires_grad_(true);
  auto d = (0.1 * torch::randn_like(starts)).requires_grad_(true);
  torch::optim::Adam opt({x, d}, torch::optim::AdamOptions(lr));
  double best = 0.0;
  for (int64_t s = 0; s <= steps; ++s) {
    auto ratio = per_sample_norm(f(x + d) - f(x), norm) / per_sample_norm(d, norm);
    best = std::max(best, ratio.max().item<double>());
    if (s == steps) break;
    opt.zero_grad();
    (-ratio.sum()).backward();
    opt.step();
  }
  return best;
}

double lower_bound(torch::nn::Sequential& model, const torch::Tensor& starts, int64_t steps, Norm norm) {
  model->eval();
  return empirical_lower_bound([&](const torch::Tensor& x) { return model->forward(x); }, starts, steps, norm);
}

}  // namespace lipkit::lipschitz
