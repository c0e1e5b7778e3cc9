#include "lipkit/layers/sortnet.h"

#include <torch/torch.h>

#include <cmath>
#include <random>

#include "lipkit/kernels/dist.h"
#include "lipkit/layers/linf_dist.h"

namespace lipkit {

SortNetLinearOptions::SortNetLinearOptions(int64_t in_features, int64_t out_features)
    : in_features_(in_features), out_features_(out_features) {}

SortNetLinearImpl::SortNetLinearImpl(const SortNetLinearOptions& options_) : options(options_) {
  reset();
}

void SortNetLinearImpl::reset() {
  TORCH_CHECK(options.q() > 0 && options.q() <= 1, "lipkit::SortNetLinear: q must be in (0, 1], got ",
              options.q());
  TORCH_CHECK(options.k() >= 1 && options.k() <= 64, "lipkit::SortNetLinear: k must be in [1, 64], got ",
              options.k());
  auto d = detail::register_distance_parameters(*this, "SortNetLinear", options.in_features(),
                                                options.out_features(), options.bias(),
                                                options.init_std(), options.identity_init());
  weight = d.weight, bias = d.bias, p_ = d.p;
  layer_name_ = "SortNetLinear";
  step = register_buffer("step", torch::zeros({}, torch::kLong));
}

void SortNetLinearImpl::pretty_print(std::ostream& stream) const {
  stream << "lipkit::SortNetLinear(" << options.in_features() << ", " << options.out_features()
         << ", q=" << options.q() << ", k=" << eval_k() << ", p=" << p()
         << ", bias=" << (options.bias() ? "true" : "false") << ")";
}

int64_t SortNetLinearImpl::eval_k() const { return std::min(options.k(), options.in_features()); }

torch::Tensor SortNetLinearImpl::forward(const torch::Tensor& input) {
  detail::check_input(input, "SortNetLinear", 2, options.in_features(), weight, "(N, in_features)");
  const double p = this->p();
  torch::Tensor y;
  const bool subset = is_training() && (torch::GradMode::is_enabled() || !std::isinf(p));
  if (subset && options.q() < 1) {
    // One subset per batch (the official code draws one per 32 samples); unbiased either way.
    const int64_t s = step.item<int64_t>();
    step.add_(1);
    auto kept = sortnet_subset(options.seed(), s, options.in_features(), options.q());
    auto idx = torch::tensor(kept, torch::TensorOptions().dtype(torch::kLong).device(input.device()));
    y = kernels::lp_dist(input.index_select(1, idx), weight.index_select(1, idx), p, "SortNetLinear");
  } else if (subset) {
    y = kernels::lp_dist(input, weight, p, "SortNetLinear");
  } else {
    y = kernels::sort_neuron(input, weight, options.q(), eval_k(), "SortNetLinear");
  }
  return bias.defined() ? y + bias : y;
}

double SortNetLinearImpl::lipschitz_bound(Norm norm) const {
  return detail::distance_layer_bound(norm, options.in_features(), options.out_features(),
                                      std::numeric_limits<double>::infinity());
}

std::pair<torch::Tensor, torch::Tensor> SortNetLinearImpl::interval_bounds(const torch::Tensor& lower,
                                                                           const torch::Tensor& upper) {
  auto [lo, hi] = kernels::sort_neuron_bounds(lower, upper, weight.detach().to(lower.scalar_type()),
                                              options.q(), eval_k());
  if (bias.defined()) {
    auto b = bias.detach().to(lower.scalar_type());
    lo = lo + b, hi = hi + b;
  }
  return {lo, hi};
}


void NegatedDistanceImpl::pretty_print(std::ostream& stream) const {
  stream << "lipkit::NegatedDistance()";
}

std::vector<int64_t> sortnet_subset(uint64_t seed, int64_t step, int64_t n, double q) {
  std::mt19937_64 rng(seed * 0x9E3779B97F4A7C15ull + static_cast<uint64_t>(step));
  std::bernoulli_distribution keep(q);
  std::vector<int64_t> kept;
  kept.reserve(n);
  for (int64_t i = 0; i < n; ++i)
    if (keep(rng)) kept.push_back(i);
  if (kept.empty()) kept.push_back(static_cast<int64_t>(rng() % static_cast<uint64_t>(n)));
  return kept;
}

int64_t set_distance_p(torch::nn::Module& module, double p) {
  int64_t n = 0;
  for (auto& m : module.modules(/*include_self=*/true)) {
    if (auto* d = dynamic_cast<DistanceLayer*>(m.get())) d->set_p(p), ++n;
  }
  return n;
}

}  // namespace lipkit
