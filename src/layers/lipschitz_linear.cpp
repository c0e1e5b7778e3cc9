#include "lipkit/layers/lipschitz_linear.h"

#include <torch/torch.h>

#include "init.h"
#include "lipkit/linalg/spectral_bound.h"

namespace lipkit {

std::string to_string(PNorm p) { return p == PNorm::One ? "1" : p == PNorm::Two ? "2" : "inf"; }

namespace functional {

torch::Tensor lipschitz_normalize(const torch::Tensor& weight, const std::string& kind, double bound, bool vectorwise,
                                  const torch::Tensor& spectral) {
  torch::Tensor norms;
  if (kind == "one") norms = weight.abs().sum(0, true);  // per column
  else if (kind == "inf") norms = weight.abs().sum(1, true);  // per row
  else if (kind == "one-inf") norms = weight.abs();  // per entry
  else if (kind == "two-inf") norms = weight.norm(2, 1, true);  // per row
  else norms = spectral;
  if (!vectorwise || kind == "two") norms = norms.max();
  // only where the norm exceeds the bound (the package's default, always_norm = false)
  return weight / torch::clamp_min(norms / bound, 1.0);
}

}  // namespace functional

namespace {
// The bound the forward normalises to: a little under `lipschitz`, so that the float64 norm of the
// float32 result, rounding included, is still <= lipschitz.
constexpr double kInside = 1.0 - 1e-5;

std::pair<PNorm, PNorm> pair_of(const std::string& kind) {
  if (kind == "one") return {PNorm::One, PNorm::One};
  if (kind == "inf") return {PNorm::Inf, PNorm::Inf};
  if (kind == "one-inf") return {PNorm::One, PNorm::Inf};
  if (kind == "two-inf") return {PNorm::Two, PNorm::Inf};
  return {PNorm::Two, PNorm::Two};
}
}  // namespace

double operator_norm(const torch::Tensor& weight, PNorm p, PNorm q) {
  torch::NoGradGuard no_grad;
  auto w = weight.detach().to(torch::kDouble).abs();
  double n;
  if (p == PNorm::One && q == PNorm::One) n = w.sum(0).max().item<double>();
  else if (p == PNorm::Inf && q == PNorm::Inf) n = w.sum(1).max().item<double>();
  else if (p == PNorm::One && q == PNorm::Inf) n = w.max().item<double>();
  else if (p == PNorm::Two && q == PNorm::Inf) n = w.pow(2).sum(1).sqrt().max().item<double>();
  else if (p == PNorm::Two && q == PNorm::Two) return linalg::spectral_norm_bound(weight.detach());  // proven
  else TORCH_CHECK(false, "lipkit::operator_norm: the ", to_string(p), " -> ", to_string(q), " norm is not computed");
  return n * (1 + 1e-12);  // float64 sums of float32 values: relative rounding far below this
}

LipschitzLinearOptions::LipschitzLinearOptions(int64_t in_features, int64_t out_features)
    : in_features_(in_features), out_features_(out_features) {}

LipschitzLinearImpl::LipschitzLinearImpl(const LipschitzLinearOptions& options_) : options(options_) { reset(); }

void LipschitzLinearImpl::reset() {
  const auto& o = options;
  TORCH_CHECK(o.in_features() > 0 && o.out_features() > 0, "lipkit::LipschitzLinear: in_features and out_features ",
              "must be positive, got ", o.in_features(), " and ", o.out_features());
  TORCH_CHECK(o.kind() == "one" || o.kind() == "inf" || o.kind() == "one-inf" || o.kind() == "two-inf" ||
                  o.kind() == "two",
              "lipkit::LipschitzLinear: kind must be one, inf, one-inf, two-inf or two, got '", o.kind(), "'");
  TORCH_CHECK(o.lipschitz() > 0 && std::isfinite(o.lipschitz()), "lipkit::LipschitzLinear: lipschitz must be a ",
              "positive number, got ", o.lipschitz());
  weight = register_parameter("weight", torch::empty({o.out_features(), o.in_features()}));
  bias = register_parameter("bias", o.bias() ? torch::empty({o.out_features()}) : torch::Tensor(), o.bias());
  reset_parameters();
}

void LipschitzLinearImpl::reset_parameters() { detail::uniform_fan_in_init(weight, bias, options.in_features()); }

void LipschitzLinearImpl::pretty_print(std::ostream& stream) const {
  stream << "lipkit::LipschitzLinear(in_features=" << options.in_features()
         << ", out_features=" << options.out_features() << ", bias=" << (options.bias() ? "true" : "false")
         << ", kind=" << options.kind() << ", lipschitz=" << options.lipschitz()
         << ", vectorwise=" << (options.vectorwise() ? "true" : "false") << ")";
}

torch::Tensor LipschitzLinearImpl::effective_weight() const {
  torch::Tensor spectral;
  if (options.kind() == "two") {
    // differentiable exact spectral norm in training; the proven bound (>= it) in eval
    spectral = is_training() ? torch::linalg_svdvals(weight).max()
                             : torch::full({}, spectral_.get(detail::version_key({weight}), [&] {
                                 return linalg::spectral_norm_bound(weight.detach());
                               }), weight.options());
  }
  return functional::lipschitz_normalize(weight, options.kind(), options.lipschitz() * kInside, options.vectorwise(),
                                         spectral);
}

torch::Tensor LipschitzLinearImpl::forward(const torch::Tensor& input) {
  detail::check_input(input, "LipschitzLinear", 2, options.in_features(), weight, "(N, in_features)");
  return torch::nn::functional::linear(input, effective_weight(), bias);
}

std::pair<PNorm, PNorm> LipschitzLinearImpl::norm_pair() const { return pair_of(options.kind()); }

double LipschitzLinearImpl::pair_bound() const {
  torch::NoGradGuard no_grad;
  auto [p, q] = norm_pair();
  return operator_norm(effective_weight(), p, q);
}

double LipschitzLinearImpl::lipschitz_bound(Norm norm) const {
  auto [p, q] = norm_pair();
  if (norm == Norm::L2 && p == PNorm::Two && q == PNorm::Two) return pair_bound();
  if (norm == Norm::Linf && p == PNorm::Inf && q == PNorm::Inf) return pair_bound();
  return kNoBound;
}

}  // namespace lipkit
