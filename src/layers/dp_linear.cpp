#include "lipkit/layers/dp_linear.h"

#include <torch/torch.h>


#include "lipkit/linalg/gram_iteration.h"
#include "lipkit/linalg/power_iteration.h"

namespace lipkit {

// -------------------------------------------------------------------------------------------- DpLinear

DpLinearOptions::DpLinearOptions(int64_t in_features, int64_t out_features)
    : in_features_(in_features), out_features_(out_features) {}

DpLinearImpl::DpLinearImpl(const DpLinearOptions& options_) : options(options_) { reset(); }

void DpLinearImpl::reset() {
  TORCH_CHECK(options.in_features() > 0 && options.out_features() > 0,
              "lipkit::DpLinear: in_features and out_features must be positive, got ", options.in_features(), " and ",
              options.out_features());
  TORCH_CHECK(options.bound_iters() >= 1 && options.project_iters() >= 1, "lipkit::DpLinear: bound_iters and ",
              "project_iters must be >= 1, got ", options.bound_iters(), " and ", options.project_iters());
  weight = register_parameter("weight", torch::empty({options.out_features(), options.in_features()}));
  bias = options.bias() ? register_parameter("bias", torch::empty({options.out_features()}))
                        : register_parameter("bias", {}, /*requires_grad=*/false);
  u = register_buffer("u", torch::empty({options.in_features()}));
  reset_parameters();
}

void DpLinearImpl::reset_parameters() {
  torch::NoGradGuard no_grad;
  torch::nn::init::orthogonal_(weight);
  if (bias.defined()) bias.zero_();
  u.normal_();
  u.div_(u.norm());
}

void DpLinearImpl::pretty_print(std::ostream& stream) const {
  stream << "lipkit::DpLinear(in_features=" << options.in_features() << ", out_features=" << options.out_features()
         << ", bias=" << (options.bias() ? "true" : "false") << ")";
}

torch::Tensor DpLinearImpl::forward(const torch::Tensor& input) {
  detail::check_input(input, "DpLinear", 2, options.in_features(), weight, "(N, in_features)");
  return torch::nn::functional::linear(input, weight, bias);
}

double DpLinearImpl::lipschitz_bound(Norm norm) const { return norm == Norm::L2 ? weight_norm_bound() : kNoBound; }

double DpLinearImpl::weight_norm_bound() const {
  return bound_.get(detail::version_key({weight}),
                    [&] { return linalg::gram_iteration_bound(weight, options.bound_iters()); });
}

void DpLinearImpl::project() {
  torch::NoGradGuard no_grad;
  // An estimate suffices here: what is stated (certificate, sensitivities) is weight_norm_bound(), the
  // proven bound of the weight as stored; the estimate only keeps it near 1 at the cost of two mat-vecs.
  const double s = linalg::power_iteration_dense(weight, u, options.project_iters()).item<double>();
  if (s > 1) weight.mul_(1.0 / s);
}

// -------------------------------------------------------------------------------------- DpBoundedInput

DpBoundedInputImpl::DpBoundedInputImpl(const DpBoundedInputOptions& options_) : options(options_) { reset(); }

void DpBoundedInputImpl::reset() {
  TORCH_CHECK(options.norm() > 0 && std::isfinite(options.norm()),
              "lipkit::DpBoundedInput: norm must be positive and finite, got ", options.norm());
}

void DpBoundedInputImpl::pretty_print(std::ostream& stream) const {
  stream << "lipkit::DpBoundedInput(norm=" << options.norm() << ")";
}

torch::Tensor DpBoundedInputImpl::forward(const torch::Tensor& input) {
  TORCH_CHECK(input.dim() >= 2, "DpBoundedInput: input must be (N, ...), got ", input.sizes());
  auto norms = input.flatten(1).norm(2, 1).clamp_min(1e-30);
  auto scale = (options.norm() / norms).clamp_max(1.0);
  std::vector<int64_t> shape(input.dim(), 1);
  shape[0] = input.size(0);
  return input * scale.view(shape);
}

}  // namespace lipkit
