#include "lipkit/layers/cpl.h"

#include <torch/torch.h>

#include <limits>

#include "init.h"
#include "lipkit/kernels/conv2d.h"
#include "lipkit/linalg/exact_norm.h"
#include "lipkit/linalg/spectral_bound.h"
#include "lipkit/linalg/power_iteration.h"

namespace lipkit {

namespace functional {

torch::Tensor cpl_linear(const torch::Tensor& x, const torch::Tensor& weight, const torch::Tensor& bias,
                         const torch::Tensor& step, const std::function<torch::Tensor(const torch::Tensor&)>& activation) {
  // step scales the hidden activations, not the output: autograd then keeps the (smaller) hidden
  // tensor for the step's gradient instead of a second full-width one
  auto h = torch::nn::functional::linear(x, weight, bias);
  auto r = activation ? activation(h) : torch::relu(h);
  return x - torch::mm(step * r, weight);
}

torch::Tensor cpl_conv2d(const torch::Tensor& x, const torch::Tensor& kernel,
                         const torch::Tensor& bias, const torch::Tensor& step, int64_t padding) {
  return kernels::conv2d_residual(x, kernel, bias, padding, step, 1.0);  // float64: the fused direct kernel
}

}  // namespace functional

namespace {
// 2 / (sigma^2 + eps); 0 when both are 0 (then W = 0 and the residual term vanishes anyway)
torch::Tensor step_size(const torch::Tensor& sigma, double eps) {
  auto d = sigma * sigma + eps;
  return torch::where(d > 0, 2.0 / d.clamp_min(std::numeric_limits<double>::min()), torch::zeros_like(d));
}
double step_size(double sigma, double eps) {
  const double d = sigma * sigma + eps;
  return d > 0 ? 2.0 / d : 0.0;
}
}  // namespace

// ---------------------------------------------------------------------------------------- CplLinear

CplLinearOptions::CplLinearOptions(int64_t features, int64_t hidden)
    : features_(features), hidden_(hidden > 0 ? hidden : features) {}

CplLinearImpl::CplLinearImpl(const CplLinearOptions& options_) : options(options_) { reset(); }

void CplLinearImpl::reset() {
  TORCH_CHECK(options.features() > 0 && options.hidden() > 0,
              "lipkit::CplLinear: features and hidden must be positive, got features=",
              options.features(), ", hidden=", options.hidden());
  TORCH_CHECK(options.eps() >= 0, "lipkit::CplLinear: eps must be >= 0 (a negative eps makes the step "
              "2 / (||W||^2 + eps) too large: not 1-Lipschitz), got ", options.eps());
  weight = register_parameter("weight", torch::empty({options.hidden(), options.features()}));
  bias = register_parameter("bias", torch::empty({options.hidden()}));
  u = register_buffer("u", torch::empty({options.features()}));
  spline = residual_activation(*this, "CplLinear", options.activation(), options.hidden(), options.spline_knots(),
                               options.spline_grid());
  reset_parameters();
}

void CplLinearImpl::reset_parameters() {
  detail::uniform_fan_in_init(weight, bias, options.features());
  if (spline) spline->reset_parameters();
  torch::NoGradGuard no_grad;
  u.normal_();
  u.div_(u.norm());
}

void CplLinearImpl::pretty_print(std::ostream& stream) const {
  stream << "lipkit::CplLinear(features=" << options.features() << ", hidden=" << options.hidden();
  if (spline) stream << ", activation=spline, spline_knots=" << options.spline_knots() << ", spline_grid=" << options.spline_grid();
  stream << ")";
}

double CplLinearImpl::weight_norm_bound() {
  return bound_.get(detail::version_key({weight}), [&] { return linalg::spectral_norm_bound(weight); });
}

torch::Tensor CplLinearImpl::forward(const torch::Tensor& input) {
  detail::check_input(input, "CplLinear", 2, options.features(), weight, "(N, features)");
  torch::Tensor step;
  if (is_training()) {
    step = step_size(linalg::power_iteration_dense(weight, u, options.train_iters()),
                     options.eps());
  } else {
    step = torch::full({}, step_size(weight_norm_bound(), options.eps()), weight.options());
  }
  return functional::cpl_linear(input, weight, bias, step, as_activation(spline));
}

// The proof holds for an activation with slopes in [0, 1]; a spline without them has no bound.
double CplLinearImpl::lipschitz_bound(Norm norm) const {
  return norm == Norm::L2 && (!spline || spline->slopes_in_unit_interval()) ? 1.0 : kNoBound;
}

// ---------------------------------------------------------------------------------------- CplConv2d

CplConv2dOptions::CplConv2dOptions(int64_t channels, int64_t hidden)
    : channels_(channels), hidden_(hidden > 0 ? hidden : channels) {}

CplConv2dImpl::CplConv2dImpl(const CplConv2dOptions& options_) : options(options_) { reset(); }

void CplConv2dImpl::reset() {
  const int64_t k = options.kernel_size();
  TORCH_CHECK(options.channels() > 0 && options.hidden() > 0,
              "lipkit::CplConv2d: channels and hidden must be positive, got channels=",
              options.channels(), ", hidden=", options.hidden());
  TORCH_CHECK(k > 0 && k % 2 == 1,
              "lipkit::CplConv2d: kernel_size must be odd (same padding keeps the residual shape), got ",
              k);
  TORCH_CHECK(options.eps() >= 0, "lipkit::CplConv2d: eps must be >= 0 (a negative eps makes the step "
              "2 / (||W||^2 + eps) too large: not 1-Lipschitz), got ", options.eps());
  weight = register_parameter("weight", torch::empty({options.hidden(), options.channels(), k, k}));
  bias = register_parameter("bias", torch::empty({options.hidden()}));
  // Sized to the real input on the first forward.
  u = register_buffer("u", torch::empty({0}));
  reset_parameters();
}

void CplConv2dImpl::reset_parameters() {
  const int64_t k = options.kernel_size();
  detail::uniform_fan_in_init(weight, bias, options.channels() * k * k);
}

void CplConv2dImpl::pretty_print(std::ostream& stream) const {
  stream << "lipkit::CplConv2d(channels=" << options.channels() << ", hidden=" << options.hidden()
         << ", kernel_size=" << options.kernel_size() << ")";
}

double CplConv2dImpl::weight_norm_bound(int64_t height, int64_t width) {
  return bound_.get(detail::version_key({weight}, {height, width}), [&] {
    return linalg::conv2d_norm_bound(weight, height, width, options.kernel_size() / 2);
  });
}

torch::Tensor CplConv2dImpl::forward(const torch::Tensor& input) {
  detail::check_input(input, "CplConv2d", 4, options.channels(), weight, "(N, channels, H, W)");
  const int64_t pad = options.kernel_size() / 2;
  torch::Tensor step;
  if (is_training()) {
    linalg::ensure_power_vector(u, {1, options.channels(), input.size(2), input.size(3)});
    step = step_size(linalg::power_iteration_conv(weight, u, pad, options.train_iters()),
                     options.eps());
  } else {
    step = torch::full({}, step_size(weight_norm_bound(input.size(2), input.size(3)), options.eps()),
                       weight.options());
  }
  return functional::cpl_conv2d(input, weight, bias, step, pad);
}

double CplConv2dImpl::lipschitz_bound(Norm norm) const { return norm == Norm::L2 ? 1.0 : kNoBound; }

}  // namespace lipkit
