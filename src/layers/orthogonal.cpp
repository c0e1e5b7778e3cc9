#include "lipkit/layers/orthogonal.h"

#include <torch/torch.h>

namespace lipkit {

namespace functional {
torch::Tensor cayley(const torch::Tensor& v) {
  auto a = v - v.t();
  auto eye = torch::eye(v.size(0), v.options());
  return torch::linalg::solve(eye + a, eye - a, /*left=*/true);
}

torch::Tensor cayley_linear(const torch::Tensor& x, const torch::Tensor& v, int64_t out_features) {
  const int64_t n = v.size(0);
  auto a = v - v.t();
  auto eye = torch::eye(n, v.options());
  auto xp = x.size(1) < n ? torch::constant_pad_nd(x, {0, n - x.size(1)}) : x;
  auto z = torch::linalg::solve(eye + a, xp.t(), /*left=*/true).t();
  return (2.0 * z - xp).narrow(1, 0, out_features);
}
}  // namespace functional

OrthogonalLinearOptions::OrthogonalLinearOptions(int64_t in_features, int64_t out_features)
    : in_features_(in_features), out_features_(out_features) {}

OrthogonalLinearImpl::OrthogonalLinearImpl(const OrthogonalLinearOptions& options_)
    : options(options_) {
  reset();
}

void OrthogonalLinearImpl::reset() {
  TORCH_CHECK(options.in_features() > 0 && options.out_features() > 0,
              "lipkit::OrthogonalLinear: in_features and out_features must be positive");
  const int64_t n = std::max(options.in_features(), options.out_features());
  v = register_parameter("v", torch::empty({n, n}));
  bias = options.bias() ? register_parameter("bias", torch::empty({options.out_features()}))
                        : register_parameter("bias", {}, /*requires_grad=*/false);
  reset_parameters();
}

void OrthogonalLinearImpl::reset_parameters() {
  torch::NoGradGuard no_grad;
  const double scale = 1.0 / std::sqrt(static_cast<double>(v.size(0)));
  v.uniform_(-scale, scale);
  if (bias.defined()) bias.zero_();
}

void OrthogonalLinearImpl::pretty_print(std::ostream& stream) const {
  stream << "lipkit::OrthogonalLinear(in_features=" << options.in_features()
         << ", out_features=" << options.out_features()
         << ", bias=" << (options.bias() ? "true" : "false") << ")";
}

torch::Tensor OrthogonalLinearImpl::effective_weight() const {
  return functional::cayley(v).narrow(0, 0, options.out_features()).narrow(1, 0,
                                                                           options.in_features());
}

torch::Tensor OrthogonalLinearImpl::forward(const torch::Tensor& input) {
  detail::check_input(input, "OrthogonalLinear", 2, options.in_features(), v, "(N, in_features)");
  if (is_training()) {  // every step changes v: apply Q through the batch solve
    auto y = functional::cayley_linear(input, v, options.out_features());
    return bias.defined() ? y + bias : y;
  }
  auto w = weight_.get(false, v, detail::version_key({v}), [&] { return effective_weight(); });
  return torch::nn::functional::linear(input, w, bias);
}

double OrthogonalLinearImpl::lipschitz_bound(Norm norm) const {
  return norm == Norm::L2 ? 1.0 : kNoBound;
}

}  // namespace lipkit
