#pragma once
// Norm-preserving structural blocks of the paper models: channel padding, scaled sum pooling,
// pixel-unshuffle, first-k selection, and the normalized last layer (LLN).

#include <torch/arg.h>
#include <torch/nn/cloneable.h>
#include <torch/nn/modules/container/sequential.h>
#include <torch/nn/pimpl.h>
#include <torch/types.h>

#include <vector>

#include "lipkit/layers/lipschitz_layer.h"

namespace lipkit {

/// (x - mean) / std per channel, inside the model so the certificate sees it. With std = 1 (the
/// default, as the CPL/SLL models) it is a translation: 1-Lipschitz. With a std, the bound is
/// 1 / min(std) and certification divides by it (the radius stays in pixel space).
struct InputNormalizationOptions {
  InputNormalizationOptions(std::vector<double> mean, std::vector<double> std = {});
  TORCH_ARG(std::vector<double>, mean);
  /// empty: no division
  TORCH_ARG(std::vector<double>, std);
};
class InputNormalizationImpl : public torch::nn::Cloneable<InputNormalizationImpl>,
                               public LipschitzLayer {
 public:
  explicit InputNormalizationImpl(const InputNormalizationOptions& options_);
  void reset() override;
  void pretty_print(std::ostream& stream) const override;
  torch::Tensor forward(const torch::Tensor& input);
  double lipschitz_bound(Norm norm) const override;
  InputNormalizationOptions options;
  torch::Tensor mean, inv_std;  // buffers (C, 1, 1)
};
TORCH_MODULE(InputNormalization);

/// Zero-pads dim 1 from in_channels to out_channels: (N, in, ...) -> (N, out, ...). An isometry
/// (the official PaddingChannels "zero" mode, used as the first layer of CPL and SLL models).
struct PadChannelsOptions {
  PadChannelsOptions(int64_t in_channels, int64_t out_channels);
  TORCH_ARG(int64_t, in_channels);
  TORCH_ARG(int64_t, out_channels);
};
class PadChannelsImpl : public torch::nn::Cloneable<PadChannelsImpl>, public LipschitzLayer {
 public:
  PadChannelsImpl(int64_t in_channels, int64_t out_channels)
      : PadChannelsImpl(PadChannelsOptions(in_channels, out_channels)) {}
  explicit PadChannelsImpl(const PadChannelsOptions& options_);
  void reset() override {}
  void pretty_print(std::ostream& stream) const override;
  torch::Tensor forward(const torch::Tensor& input);
  double lipschitz_bound(Norm) const override { return 1.0; }
  PadChannelsOptions options;
};
TORCH_MODULE(PadChannels);

/// Window sum divided by sqrt(window area), non-overlapping k x k windows: (N, C, H, W) ->
/// (N, C, H/k, W/k). 1-Lipschitz in l2 (Cauchy-Schwarz per window); k-Lipschitz in l_inf.
/// Equals the official AvgPool2d(k, divisor_override=k).
struct SumPool2dOptions {
  /* implicit */ SumPool2dOptions(int64_t kernel_size);
  TORCH_ARG(int64_t, kernel_size);
};
class SumPool2dImpl : public torch::nn::Cloneable<SumPool2dImpl>, public LipschitzLayer {
 public:
  explicit SumPool2dImpl(const SumPool2dOptions& options_);
  void reset() override {}
  void pretty_print(std::ostream& stream) const override;
  torch::Tensor forward(const torch::Tensor& input);
  double lipschitz_bound(Norm norm) const override;
  SumPool2dOptions options;
};
TORCH_MODULE(SumPool2d);

/// Space-to-depth: (N, C, H, W) -> (N, C r^2, H/r, W/r). A permutation of the entries: an isometry.
struct PixelUnshuffleOptions {
  /* implicit */ PixelUnshuffleOptions(int64_t factor);
  TORCH_ARG(int64_t, factor);
};
class PixelUnshuffleImpl : public torch::nn::Cloneable<PixelUnshuffleImpl>, public LipschitzLayer {
 public:
  explicit PixelUnshuffleImpl(const PixelUnshuffleOptions& options_);
  void reset() override {}
  void pretty_print(std::ostream& stream) const override;
  torch::Tensor forward(const torch::Tensor& input);
  double lipschitz_bound(Norm) const override { return 1.0; }
  PixelUnshuffleOptions options;
};
TORCH_MODULE(PixelUnshuffle);

/// Keeps the first k entries of dim 1: (N, C, ...) -> (N, k, ...). A projection: 1-Lipschitz in
/// every norm. The official "PoolingLinear(trunc)" last layer and AOL's FirstChannels.
struct FirstChannelsOptions {
  /* implicit */ FirstChannelsOptions(int64_t count);
  TORCH_ARG(int64_t, count);
};
class FirstChannelsImpl : public torch::nn::Cloneable<FirstChannelsImpl>, public LipschitzLayer {
 public:
  explicit FirstChannelsImpl(const FirstChannelsOptions& options_);
  void reset() override {}
  void pretty_print(std::ostream& stream) const override;
  torch::Tensor forward(const torch::Tensor& input);
  double lipschitz_bound(Norm) const override { return 1.0; }
  FirstChannelsOptions options;
};
TORCH_MODULE(FirstChannels);

/// y = x + branch(x): a residual block around any Sequential. Lipschitz constant at most
/// 1 + Lip(branch); lipkit bounds it that way (lipschitz::model_bound, lipschitz::upper_bound).
class ResidualImpl : public torch::nn::Cloneable<ResidualImpl> {
 public:
  explicit ResidualImpl(torch::nn::Sequential branch);
  void reset() override;
  /// A deep copy: the branch is cloned too (Cloneable's default would share it).
  std::shared_ptr<torch::nn::Module> clone(
      const c10::optional<torch::Device>& device = c10::nullopt) const override;
  void pretty_print(std::ostream& stream) const override;
  torch::Tensor forward(const torch::Tensor& input);
  torch::nn::Sequential branch;
};
TORCH_MODULE(Residual);

/// Last-layer normalization (LLN): y = W_hat x + b with each row of W_hat = w_k / ||w_k||_2.
/// NOT 1-Lipschitz by itself (unit rows bound the norm only by sqrt(out)): certify with the per-pair
/// rule, margin_ij / (Lip(body) ||w_hat_i - w_hat_j||), using pairwise_lipschitz().
struct NormalizedLinearOptions {
  NormalizedLinearOptions(int64_t in_features, int64_t out_features);
  TORCH_ARG(int64_t, in_features);
  TORCH_ARG(int64_t, out_features);
  TORCH_ARG(bool, bias) = true;
};
class NormalizedLinearImpl : public torch::nn::Cloneable<NormalizedLinearImpl>,
                             public LipschitzLayer {
 public:
  NormalizedLinearImpl(int64_t in_features, int64_t out_features)
      : NormalizedLinearImpl(NormalizedLinearOptions(in_features, out_features)) {}
  explicit NormalizedLinearImpl(const NormalizedLinearOptions& options_);
  void reset() override;
  void reset_parameters();
  void pretty_print(std::ostream& stream) const override;
  torch::Tensor forward(const torch::Tensor& input);
  /// Exact operator norm of W_hat: spectral (l2) or max row l1 norm (l_inf).
  double lipschitz_bound(Norm norm) const override;
  /// W_hat, the row-normalized weight.
  torch::Tensor normalized_weight() const;
  /// (out, out) matrix of ||w_hat_i - w_hat_j||_2 (l2) or ||.||_1 (l_inf): the Lipschitz constant of
  /// y_i - y_j, float64, computed from differences (no cancellation).
  torch::Tensor pairwise_lipschitz(Norm norm = Norm::L2) const;
  NormalizedLinearOptions options;
  torch::Tensor weight, bias;
};
TORCH_MODULE(NormalizedLinear);

}  // namespace lipkit
