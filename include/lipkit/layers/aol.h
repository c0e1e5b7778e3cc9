#pragma once
// Almost-Orthogonal Lipschitz layers (Prach & Lampert, "Almost-Orthogonal Layers for Efficient
// General-Purpose Lipschitz Networks", ECCV 2022):
//
//   y = W diag(d) x + b,   d_i = (sum_j |W^T W|_ij + eps)^{-1/2}
//
// By Gershgorin, ||W diag(d)||_2 <= 1, so y is 1-Lipschitz in l2 for every W. The rescaling is part
// of the forward graph (gradients flow through d). The conv form gets |W^T W| from the input-channel
// self-correlation of the kernel (padding k-1), which bounds the zero-padded operator as well.
// Stride 1 only: downsample with PixelUnshuffle (an isometry), as the AOL models do.

#include <torch/arg.h>
#include <torch/nn/cloneable.h>
#include <torch/nn/pimpl.h>
#include <torch/types.h>

#include "lipkit/layers/lipschitz_layer.h"

namespace lipkit {

namespace functional {
/// W diag(d) for a dense weight (out, in).
torch::Tensor aol_rescale_linear(const torch::Tensor& weight, double eps = 1e-6);
/// K with input channel i scaled by d_i, for a kernel (out, in, k, k).
torch::Tensor aol_rescale_conv2d(const torch::Tensor& kernel, double eps = 1e-6);
}  // namespace functional

struct AolLinearOptions {
  AolLinearOptions(int64_t in_features, int64_t out_features);
  TORCH_ARG(int64_t, in_features);
  TORCH_ARG(int64_t, out_features);
  /// whether to add a (free) bias
  TORCH_ARG(bool, bias) = true;
  /// added to the Gershgorin sums before the inverse square root (official 1e-6; makes d smaller)
  TORCH_ARG(double, eps) = 1e-6;
};

/// Dense AOL: (N, in_features) -> (N, out_features). Parameters: weight (out, in), bias (out).
/// Init: orthogonal (identity when square), as the AOL code's dense layers.
class AolLinearImpl : public torch::nn::Cloneable<AolLinearImpl>, public LipschitzLayer {
 public:
  AolLinearImpl(int64_t in_features, int64_t out_features)
      : AolLinearImpl(AolLinearOptions(in_features, out_features)) {}
  explicit AolLinearImpl(const AolLinearOptions& options_);

  void reset() override;
  void reset_parameters();
  void pretty_print(std::ostream& stream) const override;
  torch::Tensor forward(const torch::Tensor& input);
  double lipschitz_bound(Norm norm) const override;
  /// The rescaled weight W diag(d) actually applied.
  torch::Tensor effective_weight() const;

  AolLinearOptions options;
  torch::Tensor weight, bias;

 private:
  detail::CachedTensor folded_;  // eval mode: the rescaled weight until the weight changes
};
TORCH_MODULE(AolLinear);

struct AolConv2dOptions {
  AolConv2dOptions(int64_t in_channels, int64_t out_channels);
  TORCH_ARG(int64_t, in_channels);
  TORCH_ARG(int64_t, out_channels);
  /// odd kernel side; padding kernel_size / 2
  TORCH_ARG(int64_t, kernel_size) = 3;
  TORCH_ARG(bool, bias) = true;
  TORCH_ARG(double, eps) = 1e-6;
};

/// Convolutional AOL, stride 1, same padding: (N, in, H, W) -> (N, out, H, W).
/// Init: identity (orthogonal when not square) at the kernel centre, zeros elsewhere.
class AolConv2dImpl : public torch::nn::Cloneable<AolConv2dImpl>, public LipschitzLayer {
 public:
  AolConv2dImpl(int64_t in_channels, int64_t out_channels)
      : AolConv2dImpl(AolConv2dOptions(in_channels, out_channels)) {}
  explicit AolConv2dImpl(const AolConv2dOptions& options_);

  void reset() override;
  void reset_parameters();
  void pretty_print(std::ostream& stream) const override;
  torch::Tensor forward(const torch::Tensor& input);
  double lipschitz_bound(Norm norm) const override;
  torch::Tensor effective_weight() const;

  AolConv2dOptions options;
  torch::Tensor weight, bias;

 private:
  detail::CachedTensor folded_;  // eval mode: the rescaled kernel until the kernel changes
};
TORCH_MODULE(AolConv2d);

}  // namespace lipkit
