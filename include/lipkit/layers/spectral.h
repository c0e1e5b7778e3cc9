#pragma once
// Spectral normalization (Miyato et al., ICLR 2018), with the conv norm taken of the true operator:
//
//   y = (W / ||W||_2) x + b
//
// Training mode: ||W||_2 by power iteration with a persisted vector (buffer `u`), differentiable in W.
// Eval mode: a proven upper bound (linalg::spectral_norm_bound for dense; for conv, the circular-embedding FFT
// bound of the zero-padded operator at the actual input size), cached until the weights change, so
// the eval layer is 1-Lipschitz in l2 for certain. Not the reshaped-kernel norm, which can be off by
// a factor up to k for a k x k kernel.

#include <torch/arg.h>
#include <torch/nn/cloneable.h>
#include <torch/nn/pimpl.h>
#include <torch/types.h>

#include "lipkit/layers/lipschitz_layer.h"

namespace lipkit {

struct SpectralLinearOptions {
  SpectralLinearOptions(int64_t in_features, int64_t out_features);
  TORCH_ARG(int64_t, in_features);
  TORCH_ARG(int64_t, out_features);
  TORCH_ARG(bool, bias) = true;
  /// power iterations per training forward
  TORCH_ARG(int64_t, train_iters) = 1;
};

/// (N, in_features) -> (N, out_features). Parameters: weight (out, in), bias (out); buffer u (in).
class SpectralLinearImpl : public torch::nn::Cloneable<SpectralLinearImpl>, public LipschitzLayer {
 public:
  SpectralLinearImpl(int64_t in_features, int64_t out_features)
      : SpectralLinearImpl(SpectralLinearOptions(in_features, out_features)) {}
  explicit SpectralLinearImpl(const SpectralLinearOptions& options_);

  void reset() override;
  void reset_parameters();
  void pretty_print(std::ostream& stream) const override;
  torch::Tensor forward(const torch::Tensor& input);
  double lipschitz_bound(Norm norm) const override;
  /// Proven upper bound of ||W||_2 (linalg::spectral_norm_bound), cached until the weight changes.
  double weight_norm_bound();

  SpectralLinearOptions options;
  torch::Tensor weight, bias, u;

 private:
  detail::CachedBound bound_;
};
TORCH_MODULE(SpectralLinear);

struct SpectralConv2dOptions {
  SpectralConv2dOptions(int64_t in_channels, int64_t out_channels);
  TORCH_ARG(int64_t, in_channels);
  TORCH_ARG(int64_t, out_channels);
  /// odd kernel side; padding kernel_size / 2, stride 1
  TORCH_ARG(int64_t, kernel_size) = 3;
  TORCH_ARG(bool, bias) = true;
  TORCH_ARG(int64_t, train_iters) = 1;
};

/// (N, in, H, W) -> (N, out, H, W). Buffer u (1, in, H, W), re-created when the input size changes.
class SpectralConv2dImpl : public torch::nn::Cloneable<SpectralConv2dImpl>, public LipschitzLayer {
 public:
  SpectralConv2dImpl(int64_t in_channels, int64_t out_channels)
      : SpectralConv2dImpl(SpectralConv2dOptions(in_channels, out_channels)) {}
  explicit SpectralConv2dImpl(const SpectralConv2dOptions& options_);

  void reset() override;
  void reset_parameters();
  void pretty_print(std::ostream& stream) const override;
  torch::Tensor forward(const torch::Tensor& input);
  double lipschitz_bound(Norm norm) const override;
  /// Proven upper bound of the conv operator's norm on height x width inputs, cached per size.
  double weight_norm_bound(int64_t height, int64_t width);

  SpectralConv2dOptions options;
  torch::Tensor weight, bias, u;

 private:
  detail::CachedBound bound_;
};
TORCH_MODULE(SpectralConv2d);

}  // namespace lipkit
