#include "lipkit/layers/sll.h"

#include <torch/torch.h>

#include "lipkit/kernels/conv2d.h"
#include "lipkit/linalg/gram.h"

namespace lipkit {

namespace functional {

namespace {
// 1/T with zeros where T == 0; the double where keeps gradients finite.
torch::Tensor safe_inverse(const torch::Tensor& t) {
  auto positive = t > 0;
  return torch::where(positive, 1.0 / torch::where(positive, t, torch::ones_like(t)),
                      torch::zeros_like(t));
}
// T_i = sum_j S_ij exp(q_j - q_i), with S_ij >= 0 the absolute Gram row entries.
torch::Tensor weighted_row_sums(const torch::Tensor& s, const torch::Tensor& q_param) {
  return torch::exp(-q_param) * torch::mv(s, torch::exp(q_param));
}
}  // namespace

torch::Tensor sll_linear_inverse_t(const torch::Tensor& weight, const torch::Tensor& q_param) {
  return safe_inverse(torch::exp(-q_param) * linalg::abs_gram_mv(weight, torch::exp(q_param)));
}

torch::Tensor sll_conv2d_inverse_t(const torch::Tensor& kernel, const torch::Tensor& q_param,
                                   bool cancel_q) {
  const int64_t k = kernel.size(2);
  // G[i, j, offset] = <K_i, K_j shifted by offset>: the kernel convolved with itself, padding k-1.
  auto g = torch::conv2d(kernel, kernel, {}, 1, k - 1).abs().sum({2, 3});
  auto t = cancel_q ? g.sum(1) : weighted_row_sums(g, q_param);
  return safe_inverse(t);
}

torch::Tensor sll_linear(const torch::Tensor& x, const torch::Tensor& weight, const torch::Tensor& bias,
                         const torch::Tensor& inv_t, const std::function<torch::Tensor(const torch::Tensor&)>& activation) {
  auto h = torch::nn::functional::linear(x, weight, bias);
  auto r = (activation ? activation(h) : torch::relu(h)) * inv_t;
  return x - 2.0 * torch::mm(r, weight);
}

torch::Tensor sll_conv2d(const torch::Tensor& x, const torch::Tensor& kernel,
                         const torch::Tensor& bias, const torch::Tensor& inv_t, int64_t padding) {
  return kernels::conv2d_residual(x, kernel, bias, padding, inv_t, 2.0);  // float64: the fused direct kernel
}

}  // namespace functional

namespace {
void sll_init(torch::Tensor& weight, torch::Tensor& bias, torch::Tensor& q, int64_t fan_in) {
  torch::NoGradGuard no_grad;
  torch::nn::init::xavier_normal_(weight);
  const double bound = 1.0 / std::sqrt(static_cast<double>(fan_in));
  bias.uniform_(-bound, bound);
  q.normal_();
}
}  // namespace

// ---------------------------------------------------------------------------------------- SllLinear

SllLinearOptions::SllLinearOptions(int64_t features, int64_t hidden)
    : features_(features), hidden_(hidden > 0 ? hidden : features) {}

SllLinearImpl::SllLinearImpl(const SllLinearOptions& options_) : options(options_) { reset(); }

void SllLinearImpl::reset() {
  TORCH_CHECK(options.features() > 0 && options.hidden() > 0,
              "lipkit::SllLinear: features and hidden must be positive, got features=",
              options.features(), ", hidden=", options.hidden());
  weight = register_parameter("weight", torch::empty({options.hidden(), options.features()}));
  bias = register_parameter("bias", torch::empty({options.hidden()}));
  q = register_parameter("q", torch::empty({options.hidden()}));
  spline = residual_activation(*this, "SllLinear", options.activation(), options.hidden(), options.spline_knots(),
                               options.spline_grid());
  reset_parameters();
}

void SllLinearImpl::reset_parameters() {
  sll_init(weight, bias, q, options.features());
  if (spline) spline->reset_parameters();
}

void SllLinearImpl::pretty_print(std::ostream& stream) const {
  stream << "lipkit::SllLinear(features=" << options.features() << ", hidden=" << options.hidden();
  if (spline) stream << ", activation=spline, spline_knots=" << options.spline_knots() << ", spline_grid=" << options.spline_grid();
  stream << ")";
}

torch::Tensor SllLinearImpl::forward(const torch::Tensor& input) {
  detail::check_input(input, "SllLinear", 2, options.features(), weight, "(N, features)");
  auto inv_t = inv_t_.get(is_training(), weight, detail::version_key({weight, q}),
                          [&] { return functional::sll_linear_inverse_t(weight, q); });
  return functional::sll_linear(input, weight, bias, inv_t, as_activation(spline));
}

// The proof holds for an activation slope-restricted in [0, 1]; a spline without that has no bound.
double SllLinearImpl::lipschitz_bound(Norm norm) const {
  return norm == Norm::L2 && (!spline || spline->slopes_in_unit_interval()) ? 1.0 : kNoBound;
}

// ---------------------------------------------------------------------------------------- SllConv2d

SllConv2dOptions::SllConv2dOptions(int64_t channels, int64_t hidden)
    : channels_(channels), hidden_(hidden > 0 ? hidden : channels) {}

SllConv2dImpl::SllConv2dImpl(const SllConv2dOptions& options_) : options(options_) { reset(); }

void SllConv2dImpl::reset() {
  const int64_t k = options.kernel_size();
  TORCH_CHECK(options.channels() > 0 && options.hidden() > 0,
              "lipkit::SllConv2d: channels and hidden must be positive, got channels=",
              options.channels(), ", hidden=", options.hidden());
  TORCH_CHECK(k > 0 && k % 2 == 1,
              "lipkit::SllConv2d: kernel_size must be odd (same padding keeps the residual shape), got ",
              k);
  weight = register_parameter("weight", torch::empty({options.hidden(), options.channels(), k, k}));
  bias = register_parameter("bias", torch::empty({options.hidden()}));
  q = register_parameter("q", torch::empty({options.hidden()}));
  reset_parameters();
}

void SllConv2dImpl::reset_parameters() {
  const int64_t k = options.kernel_size();
  sll_init(weight, bias, q, options.channels() * k * k);
}

void SllConv2dImpl::pretty_print(std::ostream& stream) const {
  stream << "lipkit::SllConv2d(channels=" << options.channels() << ", hidden=" << options.hidden()
         << ", kernel_size=" << options.kernel_size()
         << ", cancel_q=" << (options.cancel_q() ? "true" : "false") << ")";
}

torch::Tensor SllConv2dImpl::forward(const torch::Tensor& input) {
  detail::check_input(input, "SllConv2d", 4, options.channels(), weight, "(N, channels, H, W)");
  auto inv_t = inv_t_.get(is_training(), weight, detail::version_key({weight, q}),
                          [&] { return functional::sll_conv2d_inverse_t(weight, q, options.cancel_q()); });
  return functional::sll_conv2d(input, weight, bias, inv_t, options.kernel_size() / 2);
}

double SllConv2dImpl::lipschitz_bound(Norm norm) const { return norm == Norm::L2 ? 1.0 : kNoBound; }

}  // namespace lipkit
