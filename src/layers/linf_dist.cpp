#include "lipkit/layers/linf_dist.h"

#include <torch/torch.h>

#include <cmath>

#include "lipkit/kernels/dist.h"

namespace lipkit {

namespace detail {

DistanceParameters register_distance_parameters(torch::nn::Module& m, const char* layer, int64_t in,
                                                int64_t out, bool bias, double std, double identity) {
  TORCH_CHECK(in > 0 && out > 0, "lipkit::", layer, ": features must be positive, got ", in, " -> ", out);
  const double p = std::numeric_limits<double>::infinity();
  DistanceParameters d;
  d.weight = m.register_parameter("weight", torch::empty({out, in}));
  d.bias = m.register_parameter("bias", bias ? torch::empty({out}) : torch::Tensor(), bias);
  d.p = m.register_buffer("p", torch::full({}, p, torch::kDouble));
  torch::NoGradGuard no_grad;
  d.weight.normal_(0.0, std);
  if (identity > 0 && in <= out) {
    for (int64_t i = 0; i < out; ++i) d.weight[i][i % in] = -identity;
  }
  if (d.bias.defined()) d.bias.zero_();
  return d;
}

double distance_layer_bound(Norm norm, int64_t in, int64_t out, double p) {
  // ||a||_p - ||b||_p <= ||a - b||_p <= in^(1/p) ||a - b||_inf, and ||.||_p <= ||.||_2 for p >= 2
  const double linf = std::isinf(p) ? 1.0 : std::pow(static_cast<double>(in), 1.0 / p);
  if (norm == Norm::Linf) return linf;
  const double l2 = p >= 2 ? 1.0 : std::pow(static_cast<double>(in), 1.0 / p - 0.5);
  return std::sqrt(static_cast<double>(out)) * l2;
}

}  // namespace detail

double DistanceLayer::p() const { return p_.item<double>(); }

void DistanceLayer::set_p(double p) {
  TORCH_CHECK(p >= 1, "lipkit::", layer_name_, ": p must be >= 1 (or inf), got ", p);
  p_.fill_(p);
}

LinfDistLinearOptions::LinfDistLinearOptions(int64_t in_features, int64_t out_features)
    : in_features_(in_features), out_features_(out_features) {}

LinfDistLinearImpl::LinfDistLinearImpl(const LinfDistLinearOptions& options_) : options(options_) {
  reset();
}

void LinfDistLinearImpl::reset() {
  auto d = detail::register_distance_parameters(*this, "LinfDistLinear", options.in_features(),
                                                options.out_features(), options.bias(),
                                                options.init_std(), options.identity_init());
  weight = d.weight, bias = d.bias, p_ = d.p;
  layer_name_ = "LinfDistLinear";
}

void LinfDistLinearImpl::pretty_print(std::ostream& stream) const {
  stream << "lipkit::LinfDistLinear(" << options.in_features() << ", " << options.out_features()
         << ", p=" << p() << ", bias=" << (options.bias() ? "true" : "false") << ")";
}

torch::Tensor LinfDistLinearImpl::forward(const torch::Tensor& input) {
  detail::check_input(input, "LinfDistLinear", 2, options.in_features(), weight, "(N, in_features)");
  auto y = kernels::lp_dist(input, weight, p(), "LinfDistLinear");
  return bias.defined() ? y + bias : y;
}

double LinfDistLinearImpl::lipschitz_bound(Norm norm) const {
  return detail::distance_layer_bound(norm, options.in_features(), options.out_features(), p());
}

std::pair<torch::Tensor, torch::Tensor> LinfDistLinearImpl::interval_bounds(const torch::Tensor& lower,
                                                                            const torch::Tensor& upper) {
  TORCH_CHECK(std::isinf(p()), "lipkit::LinfDistLinear: interval bounds need p = inf, the layer has p = ", p());
  auto [lo, hi] = kernels::sort_neuron_bounds(lower, upper, weight.detach().to(lower.scalar_type()), 1.0, 1);
  if (bias.defined()) {
    auto b = bias.detach().to(lower.scalar_type());
    lo = lo + b, hi = hi + b;
  }
  return {lo, hi};
}

}  // namespace lipkit
