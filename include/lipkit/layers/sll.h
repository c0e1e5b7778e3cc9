#pragma once
// SDP-based Lipschitz Layers (Araujo, Havens, Delattre, Allauzen, Hu, "A Unified Algebraic Perspective
// on Lipschitz Neural Networks", ICLR 2023), residual form:
//
//   z = x - 2 W^T T^{-1} relu(W x + b),   T_ii = sum_j |W W^T|_ij q_j / q_i,   q = exp(q_param)
//
// T is a Gershgorin bound of W W^T (T - W W^T is diagonally dominant, hence PSD), which makes z
// 1-Lipschitz in l2 for every W, b and q. Computed in closed form every forward: no state, no power
// iteration. Rows with T_ii = 0 (zero rows of W) contribute nothing (safe inverse, never an epsilon on
// one side: the official first release's one-sided epsilon broke 1-Lipschitzness).
// The conv form gets |W W^T| from the kernel's self-convolution (padding k-1), which dominates the
// unrolled operator's Gram row sums, so the same argument holds for zero padding.

#include <torch/arg.h>
#include <torch/nn/cloneable.h>
#include <torch/nn/pimpl.h>
#include <torch/types.h>

#include <functional>

#include "lipkit/layers/lipschitz_layer.h"
#include "lipkit/layers/spline.h"

namespace lipkit {

namespace functional {
/// t = 1 / T (0 where T = 0) for the dense layer: W (hidden, features), q_param (hidden).
torch::Tensor sll_linear_inverse_t(const torch::Tensor& weight, const torch::Tensor& q_param);
/// Same for the conv kernel (hidden, channels, k, k). cancel_q reproduces the official release,
/// where the q factors cancel and T_i = sum_j sum_offsets |G_ij|.
torch::Tensor sll_conv2d_inverse_t(const torch::Tensor& kernel, const torch::Tensor& q_param,
                                   bool cancel_q = false);
/// z = x - 2 W^T (t * sigma(W x + b)); sigma is ReLU when `activation` is empty (any other must be
/// slope-restricted in [0, 1]).
torch::Tensor sll_linear(const torch::Tensor& x, const torch::Tensor& weight, const torch::Tensor& bias,
                         const torch::Tensor& inv_t, const std::function<torch::Tensor(const torch::Tensor&)>& activation = {});
/// z = x - 2 conv2d_adjoint(t * relu(conv2d(x, K, b, padding)), K, padding), t per hidden channel.
torch::Tensor sll_conv2d(const torch::Tensor& x, const torch::Tensor& kernel,
                         const torch::Tensor& bias, const torch::Tensor& inv_t, int64_t padding);
}  // namespace functional

struct SllLinearOptions {
  /// hidden <= 0 means hidden = features (the official inner_dim = -1).
  SllLinearOptions(int64_t features, int64_t hidden = 0);
  /// size of the input and output (residual stream)
  TORCH_ARG(int64_t, features);
  /// rows of W; official `dense_inner_dim`, 2048 in the paper models
  TORCH_ARG(int64_t, hidden);
  /// relu, or spline: a learnable monotone LinearSpline per hidden unit (slopes in [0, 1], the SDP
  /// condition's slope restriction)
  TORCH_ARG(std::string, activation) = "relu";
  TORCH_ARG(int64_t, spline_knots) = 51;
  TORCH_ARG(double, spline_grid) = 0.1;
};

/// Dense SLL. Input and output (N, features). Parameters: weight (hidden, features), bias (hidden),
/// q (hidden).
class SllLinearImpl : public torch::nn::Cloneable<SllLinearImpl>, public LipschitzLayer {
 public:
  SllLinearImpl(int64_t features, int64_t hidden = 0)
      : SllLinearImpl(SllLinearOptions(features, hidden)) {}
  explicit SllLinearImpl(const SllLinearOptions& options_);

  void reset() override;
  void reset_parameters();
  void pretty_print(std::ostream& stream) const override;
  torch::Tensor forward(const torch::Tensor& input);
  double lipschitz_bound(Norm norm) const override;

  SllLinearOptions options;
  torch::Tensor weight, bias, q;
  LinearSpline spline{nullptr};  // with activation "spline"

 private:
  detail::CachedTensor inv_t_;  // eval mode: W W^T is not recomputed while the weights stay put
};
TORCH_MODULE(SllLinear);

struct SllConv2dOptions {
  SllConv2dOptions(int64_t channels, int64_t hidden = 0);
  /// channels of the input and output (residual stream width)
  TORCH_ARG(int64_t, channels);
  /// output channels of the inner convolution; official `conv_hidden_dim`, 5 in the paper presets
  TORCH_ARG(int64_t, hidden);
  /// odd kernel side; padding kernel_size / 2
  TORCH_ARG(int64_t, kernel_size) = 3;
  /// true reproduces the official conv code, in which q cancels out (q has no effect); false applies
  /// q_j / q_i as the theory says. Both are 1-Lipschitz.
  TORCH_ARG(bool, cancel_q) = false;
};

/// Convolutional SLL, stride 1. Input and output (N, channels, H, W).
class SllConv2dImpl : public torch::nn::Cloneable<SllConv2dImpl>, public LipschitzLayer {
 public:
  SllConv2dImpl(int64_t channels, int64_t hidden = 0)
      : SllConv2dImpl(SllConv2dOptions(channels, hidden)) {}
  explicit SllConv2dImpl(const SllConv2dOptions& options_);

  void reset() override;
  void reset_parameters();
  void pretty_print(std::ostream& stream) const override;
  torch::Tensor forward(const torch::Tensor& input);
  double lipschitz_bound(Norm norm) const override;

  SllConv2dOptions options;
  torch::Tensor weight, bias, q;

 private:
  detail::CachedTensor inv_t_;
};
TORCH_MODULE(SllConv2d);

}  // namespace lipkit
