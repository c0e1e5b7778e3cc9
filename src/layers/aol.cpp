#include "lipkit/layers/aol.h"

#include <torch/torch.h>

#include "lipkit/kernels/conv2d.h"
#include "lipkit/linalg/gram.h"

namespace lipkit {

namespace functional {

torch::Tensor aol_rescale_linear(const torch::Tensor& weight, double eps) {
  auto wt = weight.t();
  auto d = torch::rsqrt(linalg::abs_gram_mv(wt, torch::ones({wt.size(0)}, weight.options())) + eps);
  return weight * d.unsqueeze(0);
}

torch::Tensor aol_rescale_conv2d(const torch::Tensor& kernel, double eps) {
  const int64_t k = kernel.size(2);
  auto kt = kernel.transpose(0, 1);  // (in, out, k, k): input channels as a batch
  auto gram = torch::conv2d(kt, kt, {}, 1, k - 1).abs().sum({1, 2, 3});
  auto d = torch::rsqrt(gram + eps);
  return kernel * d.view({1, -1, 1, 1});
}

}  // namespace functional

namespace {
void init_bias(torch::Tensor& bias) {
  if (bias.defined()) {
    torch::NoGradGuard no_grad;
    bias.zero_();
  }
}
}  // namespace

// ---------------------------------------------------------------------------------------- AolLinear

AolLinearOptions::AolLinearOptions(int64_t in_features, int64_t out_features)
    : in_features_(in_features), out_features_(out_features) {}

AolLinearImpl::AolLinearImpl(const AolLinearOptions& options_) : options(options_) { reset(); }

void AolLinearImpl::reset() {
  TORCH_CHECK(options.in_features() > 0 && options.out_features() > 0,
              "lipkit::AolLinear: in_features and out_features must be positive");
  TORCH_CHECK(options.eps() > 0, "lipkit::AolLinear: eps must be > 0 (a zero column of W would divide by 0), got ",
              options.eps());
  weight =
      register_parameter("weight", torch::empty({options.out_features(), options.in_features()}));
  bias = options.bias() ? register_parameter("bias", torch::empty({options.out_features()}))
                        : register_parameter("bias", {}, /*requires_grad=*/false);
  reset_parameters();
}

void AolLinearImpl::reset_parameters() {
  torch::NoGradGuard no_grad;
  torch::nn::init::orthogonal_(weight);
  init_bias(bias);
}

void AolLinearImpl::pretty_print(std::ostream& stream) const {
  stream << "lipkit::AolLinear(in_features=" << options.in_features()
         << ", out_features=" << options.out_features()
         << ", bias=" << (options.bias() ? "true" : "false") << ")";
}

torch::Tensor AolLinearImpl::effective_weight() const {
  return functional::aol_rescale_linear(weight, options.eps());
}

torch::Tensor AolLinearImpl::forward(const torch::Tensor& input) {
  detail::check_input(input, "AolLinear", 2, options.in_features(), weight, "(N, in_features)");
  auto w = folded_.get(is_training(), weight, detail::version_key({weight}), [&] { return effective_weight(); });
  return torch::nn::functional::linear(input, w, bias);
}

double AolLinearImpl::lipschitz_bound(Norm norm) const { return norm == Norm::L2 ? 1.0 : kNoBound; }

// ---------------------------------------------------------------------------------------- AolConv2d

AolConv2dOptions::AolConv2dOptions(int64_t in_channels, int64_t out_channels)
    : in_channels_(in_channels), out_channels_(out_channels) {}

AolConv2dImpl::AolConv2dImpl(const AolConv2dOptions& options_) : options(options_) { reset(); }

void AolConv2dImpl::reset() {
  const int64_t k = options.kernel_size();
  TORCH_CHECK(options.in_channels() > 0 && options.out_channels() > 0,
              "lipkit::AolConv2d: in_channels and out_channels must be positive");
  TORCH_CHECK(k > 0 && k % 2 == 1, "lipkit::AolConv2d: kernel_size must be odd, got ", k);
  TORCH_CHECK(options.eps() > 0, "lipkit::AolConv2d: eps must be > 0 (a zero input channel would divide by 0), got ",
              options.eps());
  weight = register_parameter(
      "weight", torch::empty({options.out_channels(), options.in_channels(), k, k}));
  bias = options.bias() ? register_parameter("bias", torch::empty({options.out_channels()}))
                        : register_parameter("bias", {}, /*requires_grad=*/false);
  reset_parameters();
}

void AolConv2dImpl::reset_parameters() {
  torch::NoGradGuard no_grad;
  const int64_t c = options.kernel_size() / 2;
  weight.zero_();
  auto centre = torch::empty({options.out_channels(), options.in_channels()});
  torch::nn::init::orthogonal_(centre);
  weight.select(2, c).select(2, c).copy_(centre);
  init_bias(bias);
}

void AolConv2dImpl::pretty_print(std::ostream& stream) const {
  stream << "lipkit::AolConv2d(in_channels=" << options.in_channels()
         << ", out_channels=" << options.out_channels()
         << ", kernel_size=" << options.kernel_size()
         << ", bias=" << (options.bias() ? "true" : "false") << ")";
}

torch::Tensor AolConv2dImpl::effective_weight() const {
  return functional::aol_rescale_conv2d(weight, options.eps());
}

torch::Tensor AolConv2dImpl::forward(const torch::Tensor& input) {
  detail::check_input(input, "AolConv2d", 4, options.in_channels(), weight,
                      "(N, in_channels, H, W)");
  auto w = folded_.get(is_training(), weight, detail::version_key({weight}), [&] { return effective_weight(); });
  return kernels::conv2d(input, w, bias, options.kernel_size() / 2);  // float64 evaluation: the direct kernel
}

double AolConv2dImpl::lipschitz_bound(Norm norm) const { return norm == Norm::L2 ? 1.0 : kNoBound; }

}  // namespace lipkit
