#include "lipkit/layers/spectral.h"

#include <torch/torch.h>

#include "init.h"
#include "lipkit/linalg/exact_norm.h"
#include "lipkit/linalg/spectral_bound.h"
#include "lipkit/linalg/power_iteration.h"

namespace lipkit {

// ----------------------------------------------------------------------------------- SpectralLinear

SpectralLinearOptions::SpectralLinearOptions(int64_t in_features, int64_t out_features)
    : in_features_(in_features), out_features_(out_features) {}

SpectralLinearImpl::SpectralLinearImpl(const SpectralLinearOptions& options_) : options(options_) {
  reset();
}

void SpectralLinearImpl::reset() {
  TORCH_CHECK(options.in_features() > 0 && options.out_features() > 0,
              "lipkit::SpectralLinear: in_features and out_features must be positive");
  weight =
      register_parameter("weight", torch::empty({options.out_features(), options.in_features()}));
  bias = options.bias() ? register_parameter("bias", torch::empty({options.out_features()}))
                        : register_parameter("bias", {}, /*requires_grad=*/false);
  u = register_buffer("u", torch::empty({options.in_features()}));
  reset_parameters();
}

void SpectralLinearImpl::reset_parameters() {
  detail::uniform_fan_in_init(weight, bias, options.in_features());
  torch::NoGradGuard no_grad;
  u.normal_();
  u.div_(u.norm());
}

void SpectralLinearImpl::pretty_print(std::ostream& stream) const {
  stream << "lipkit::SpectralLinear(in_features=" << options.in_features()
         << ", out_features=" << options.out_features()
         << ", bias=" << (options.bias() ? "true" : "false") << ")";
}

double SpectralLinearImpl::weight_norm_bound() {
  return bound_.get(detail::version_key({weight}), [&] { return linalg::spectral_norm_bound(weight); });
}

torch::Tensor SpectralLinearImpl::forward(const torch::Tensor& input) {
  detail::check_input(input, "SpectralLinear", 2, options.in_features(), weight,
                      "(N, in_features)");
  auto w = is_training()
               ? weight / linalg::power_iteration_dense(weight, u, options.train_iters())
               : weight / weight_norm_bound();
  return torch::nn::functional::linear(input, w, bias);
}

double SpectralLinearImpl::lipschitz_bound(Norm norm) const {
  return norm == Norm::L2 ? 1.0 : kNoBound;
}

// ----------------------------------------------------------------------------------- SpectralConv2d

SpectralConv2dOptions::SpectralConv2dOptions(int64_t in_channels, int64_t out_channels)
    : in_channels_(in_channels), out_channels_(out_channels) {}

SpectralConv2dImpl::SpectralConv2dImpl(const SpectralConv2dOptions& options_) : options(options_) {
  reset();
}

void SpectralConv2dImpl::reset() {
  const int64_t k = options.kernel_size();
  TORCH_CHECK(options.in_channels() > 0 && options.out_channels() > 0,
              "lipkit::SpectralConv2d: in_channels and out_channels must be positive");
  TORCH_CHECK(k > 0 && k % 2 == 1, "lipkit::SpectralConv2d: kernel_size must be odd, got ", k);
  weight = register_parameter(
      "weight", torch::empty({options.out_channels(), options.in_channels(), k, k}));
  bias = options.bias() ? register_parameter("bias", torch::empty({options.out_channels()}))
                        : register_parameter("bias", {}, /*requires_grad=*/false);
  u = register_buffer("u", torch::empty({0}));  // sized to the real input on the first forward
  reset_parameters();
}

void SpectralConv2dImpl::reset_parameters() {
  const int64_t k = options.kernel_size();
  detail::uniform_fan_in_init(weight, bias, options.in_channels() * k * k);
}

void SpectralConv2dImpl::pretty_print(std::ostream& stream) const {
  stream << "lipkit::SpectralConv2d(in_channels=" << options.in_channels()
         << ", out_channels=" << options.out_channels()
         << ", kernel_size=" << options.kernel_size()
         << ", bias=" << (options.bias() ? "true" : "false") << ")";
}

double SpectralConv2dImpl::weight_norm_bound(int64_t height, int64_t width) {
  return bound_.get(detail::version_key({weight}, {height, width}), [&] {
    return linalg::conv2d_norm_bound(weight, height, width, options.kernel_size() / 2);
  });
}

torch::Tensor SpectralConv2dImpl::forward(const torch::Tensor& input) {
  detail::check_input(input, "SpectralConv2d", 4, options.in_channels(), weight,
                      "(N, in_channels, H, W)");
  const int64_t pad = options.kernel_size() / 2;
  torch::Tensor w;
  if (is_training()) {
    linalg::ensure_power_vector(u, {1, options.in_channels(), input.size(2), input.size(3)});
    w = weight / linalg::power_iteration_conv(weight, u, pad, options.train_iters());
  } else {
    w = weight / weight_norm_bound(input.size(2), input.size(3));
  }
  return torch::conv2d(input, w, bias, 1, pad);
}

double SpectralConv2dImpl::lipschitz_bound(Norm norm) const {
  return norm == Norm::L2 ? 1.0 : kNoBound;
}

}  // namespace lipkit
