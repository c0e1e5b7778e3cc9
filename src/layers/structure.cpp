#include "lipkit/layers/structure.h"

#include <torch/torch.h>

#include <cmath>

#include "lipkit/linalg/exact_norm.h"

namespace lipkit {

// ------------------------------------------------------------------------------- InputNormalization

InputNormalizationOptions::InputNormalizationOptions(std::vector<double> mean, std::vector<double> std)
    : mean_(std::move(mean)), std_(std::move(std)) {}

InputNormalizationImpl::InputNormalizationImpl(const InputNormalizationOptions& options_)
    : options(options_) {
  reset();
}

void InputNormalizationImpl::reset() {
  const auto c = static_cast<int64_t>(options.mean().size());
  TORCH_CHECK(c > 0, "lipkit::InputNormalization: mean must have one value per channel, got none");
  TORCH_CHECK(options.std().empty() || static_cast<int64_t>(options.std().size()) == c,
              "lipkit::InputNormalization: std has ", options.std().size(), " values, mean has ", c);
  std::vector<double> inv(c, 1.0);
  for (int64_t i = 0; i < c && !options.std().empty(); ++i) {
    TORCH_CHECK(options.std()[i] > 0, "lipkit::InputNormalization: std must be positive, got ",
                options.std()[i]);
    inv[i] = 1.0 / options.std()[i];
  }
  mean = register_buffer("mean", torch::tensor(options.mean(), torch::kFloat).view({c, 1, 1}));
  inv_std = register_buffer("inv_std", torch::tensor(inv, torch::kFloat).view({c, 1, 1}));
}

void InputNormalizationImpl::pretty_print(std::ostream& stream) const {
  stream << "lipkit::InputNormalization(channels=" << options.mean().size()
         << ", std=" << (options.std().empty() ? "none" : "per-channel") << ")";
}

torch::Tensor InputNormalizationImpl::forward(const torch::Tensor& input) {
  if (input.dim() == 2) {  // a table: one value per feature
    detail::check_input(input, "InputNormalization", 2, mean.size(0), mean, "(N, features) or (N, channels, H, W)");
    return (input - mean.view({1, -1})) * inv_std.view({1, -1});
  }
  detail::check_input(input, "InputNormalization", 4, mean.size(0), mean, "(N, channels, H, W) or (N, features)");
  return (input - mean) * inv_std;
}

double InputNormalizationImpl::lipschitz_bound(Norm) const {
  return inv_std.abs().max().item<double>();  // 1 / min |std|, also for buffers loaded from a file
}

// -------------------------------------------------------------------------------------- PadChannels

PadChannelsOptions::PadChannelsOptions(int64_t in_channels, int64_t out_channels)
    : in_channels_(in_channels), out_channels_(out_channels) {}

PadChannelsImpl::PadChannelsImpl(const PadChannelsOptions& options_) : options(options_) {
  TORCH_CHECK(options.in_channels() > 0 && options.out_channels() >= options.in_channels(),
              "lipkit::PadChannels: need 0 < in_channels <= out_channels, got ",
              options.in_channels(), " -> ", options.out_channels());
}

void PadChannelsImpl::pretty_print(std::ostream& stream) const {
  stream << "lipkit::PadChannels(in_channels=" << options.in_channels()
         << ", out_channels=" << options.out_channels() << ")";
}

torch::Tensor PadChannelsImpl::forward(const torch::Tensor& input) {
  detail::check_input(input, "PadChannels", -1, options.in_channels(), input, "(N, in_channels, ...)");
  auto shape = input.sizes().vec();
  shape[1] = options.out_channels() - options.in_channels();
  return torch::cat({input, torch::zeros(shape, input.options())}, 1);
}

// ---------------------------------------------------------------------------------------- SumPool2d

SumPool2dOptions::SumPool2dOptions(int64_t kernel_size) : kernel_size_(kernel_size) {}

SumPool2dImpl::SumPool2dImpl(const SumPool2dOptions& options_) : options(options_) {
  TORCH_CHECK(options.kernel_size() >= 1, "lipkit::SumPool2d: kernel_size must be >= 1, got ",
              options.kernel_size());
}

void SumPool2dImpl::pretty_print(std::ostream& stream) const {
  stream << "lipkit::SumPool2d(kernel_size=" << options.kernel_size() << ")";
}

torch::Tensor SumPool2dImpl::forward(const torch::Tensor& input) {
  const int64_t k = options.kernel_size();
  detail::check_input(input, "SumPool2d", 4, -1, input, "(N, C, H, W)");
  TORCH_CHECK(input.size(2) % k == 0 && input.size(3) % k == 0, "lipkit::SumPool2d: H and W of input ",
              input.sizes(), " must be multiples of kernel_size ", k,
              " (a dropped border would not be seen by the certificate)");
  // sum / k == sum / sqrt(k * k)
  return torch::avg_pool2d(input, k, k, 0, false, true, /*divisor_override=*/k);
}

double SumPool2dImpl::lipschitz_bound(Norm norm) const {
  return norm == Norm::L2 ? 1.0 : static_cast<double>(options.kernel_size());
}

// ----------------------------------------------------------------------------------- PixelUnshuffle

PixelUnshuffleOptions::PixelUnshuffleOptions(int64_t factor) : factor_(factor) {}

PixelUnshuffleImpl::PixelUnshuffleImpl(const PixelUnshuffleOptions& options_) : options(options_) {
  TORCH_CHECK(options.factor() >= 1, "lipkit::PixelUnshuffle: factor must be >= 1, got ",
              options.factor());
}

void PixelUnshuffleImpl::pretty_print(std::ostream& stream) const {
  stream << "lipkit::PixelUnshuffle(factor=" << options.factor() << ")";
}

torch::Tensor PixelUnshuffleImpl::forward(const torch::Tensor& input) {
  const int64_t r = options.factor();
  detail::check_input(input, "PixelUnshuffle", 4, -1, input, "(N, C, H, W)");
  TORCH_CHECK(input.size(2) % r == 0 && input.size(3) % r == 0, "lipkit::PixelUnshuffle: H and W of input ",
              input.sizes(), " must be multiples of factor ", r);
  return torch::pixel_unshuffle(input, r);
}

// ------------------------------------------------------------------------------------ FirstChannels

FirstChannelsOptions::FirstChannelsOptions(int64_t count) : count_(count) {}

FirstChannelsImpl::FirstChannelsImpl(const FirstChannelsOptions& options_) : options(options_) {
  TORCH_CHECK(options.count() >= 1, "lipkit::FirstChannels: count must be >= 1, got ",
              options.count());
}

void FirstChannelsImpl::pretty_print(std::ostream& stream) const {
  stream << "lipkit::FirstChannels(count=" << options.count() << ")";
}

torch::Tensor FirstChannelsImpl::forward(const torch::Tensor& input) {
  TORCH_CHECK(input.dim() >= 2 && input.size(1) >= options.count(),
              "lipkit::FirstChannels: expected input of shape (N, C >= ", options.count(),
              ", ...), got ", input.sizes());
  return input.narrow(1, 0, options.count());
}

// ----------------------------------------------------------------------------------------- Residual

ResidualImpl::ResidualImpl(torch::nn::Sequential branch_) : branch(std::move(branch_)) { reset(); }

void ResidualImpl::reset() { branch = register_module("branch", branch); }

std::shared_ptr<torch::nn::Module> ResidualImpl::clone(const c10::optional<torch::Device>& device) const {
  auto copy = std::make_shared<ResidualImpl>(
      torch::nn::Sequential(std::dynamic_pointer_cast<torch::nn::SequentialImpl>(branch->clone(device))));
  copy->train(is_training());
  return copy;
}

void ResidualImpl::pretty_print(std::ostream& stream) const {
  stream << "lipkit::Residual(branch_layers=" << branch->size() << ")";
}

torch::Tensor ResidualImpl::forward(const torch::Tensor& input) {
  auto y = branch->forward(input);
  TORCH_CHECK(y.sizes() == input.sizes(), "lipkit::Residual: the branch maps ", input.sizes(), " to ",
              y.sizes(), "; a residual block needs the same shape");
  return input + y;
}

// --------------------------------------------------------------------------------- NormalizedLinear

NormalizedLinearOptions::NormalizedLinearOptions(int64_t in_features, int64_t out_features)
    : in_features_(in_features), out_features_(out_features) {}

NormalizedLinearImpl::NormalizedLinearImpl(const NormalizedLinearOptions& options_)
    : options(options_) {
  reset();
}

void NormalizedLinearImpl::reset() {
  TORCH_CHECK(options.in_features() > 0 && options.out_features() > 0,
              "lipkit::NormalizedLinear: in_features and out_features must be positive");
  weight =
      register_parameter("weight", torch::empty({options.out_features(), options.in_features()}));
  bias = options.bias() ? register_parameter("bias", torch::empty({options.out_features()}))
                        : register_parameter("bias", {}, /*requires_grad=*/false);
  reset_parameters();
}

void NormalizedLinearImpl::reset_parameters() {
  torch::NoGradGuard no_grad;
  const double bound = 1.0 / std::sqrt(static_cast<double>(options.in_features()));
  weight.uniform_(-bound, bound);
  if (bias.defined()) bias.zero_();
}

void NormalizedLinearImpl::pretty_print(std::ostream& stream) const {
  stream << "lipkit::NormalizedLinear(in_features=" << options.in_features()
         << ", out_features=" << options.out_features()
         << ", bias=" << (options.bias() ? "true" : "false") << ")";
}

torch::Tensor NormalizedLinearImpl::normalized_weight() const {
  return weight / weight.norm(2, {1}, /*keepdim=*/true).clamp_min(1e-12);
}

torch::Tensor NormalizedLinearImpl::forward(const torch::Tensor& input) {
  detail::check_input(input, "NormalizedLinear", 2, options.in_features(), weight,
                      "(N, in_features)");
  return torch::nn::functional::linear(input, normalized_weight(), bias);
}

double NormalizedLinearImpl::lipschitz_bound(Norm norm) const {
  torch::NoGradGuard no_grad;
  auto w = normalized_weight().to(torch::kDouble);
  if (norm == Norm::Linf) return w.abs().sum(1).max().item<double>();
  return linalg::spectral_norm_exact(w) * (1.0 + 1e-9);
}

torch::Tensor NormalizedLinearImpl::pairwise_lipschitz(Norm norm) const {
  torch::NoGradGuard no_grad;
  auto w = normalized_weight().to(torch::kDouble).unsqueeze(0);
  // compute_mode 2: differences, never the |a|^2 + |b|^2 - 2ab product, whose cancellation can shrink
  // the distance of two close rows (cdist's default for more than 25 rows) and so inflate a radius
  return torch::cdist(w, w, norm == Norm::L2 ? 2.0 : 1.0, /*compute_mode=*/2).squeeze(0);
}

}  // namespace lipkit
