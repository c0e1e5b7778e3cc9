#pragma once
// Convex Potential Layers (Meunier, Delattre, Araujo, Allauzen, "A Dynamical System Perspective for
// Lipschitz Neural Networks", ICML 2022).
//
//   z = x - h W^T relu(W x + b),   h = 2 / (||W||_2^2 + eps)
//
// One explicit Euler step of the gradient flow of a convex potential: the Jacobian I - h W^T D W
// (D diagonal in [0, 1]) has eigenvalues in [1 - h ||W||^2, 1], so z is 1-Lipschitz in l2.
// Training mode: ||W||_2 is a one-step power-iteration estimate with a persisted vector (buffer `u`),
// differentiable in W, as in the official code. Eval mode: ||W||_2 is replaced by a proven upper
// bound (a Cholesky-verified spectral bound for dense, the circular-embedding FFT bound for conv at the actual input
// size), cached until the weights change, so the eval layer is 1-Lipschitz for certain.

#include <torch/arg.h>
#include <torch/nn/cloneable.h>
#include <torch/nn/pimpl.h>
#include <torch/types.h>

#include <functional>

#include "lipkit/layers/lipschitz_layer.h"
#include "lipkit/layers/spline.h"

namespace lipkit {

namespace functional {
/// z = x - step * W^T sigma(W x + b) for x of shape (N, features), W (hidden, features); sigma is
/// ReLU when `activation` is empty (any other must be non-decreasing with slopes <= 1).
torch::Tensor cpl_linear(const torch::Tensor& x, const torch::Tensor& weight, const torch::Tensor& bias,
                         const torch::Tensor& step, const std::function<torch::Tensor(const torch::Tensor&)>& activation = {});
/// z = x - step * conv2d_adjoint(relu(conv2d(x, K, b, padding)), K, padding), stride 1.
torch::Tensor cpl_conv2d(const torch::Tensor& x, const torch::Tensor& kernel,
                         const torch::Tensor& bias, const torch::Tensor& step, int64_t padding);
}  // namespace functional

struct CplLinearOptions {
  /// hidden <= 0 means hidden = features.
  CplLinearOptions(int64_t features, int64_t hidden = 0);
  /// size of the input and output (the residual stream), n in the paper
  TORCH_ARG(int64_t, features);
  /// rows of W (hidden units inside the potential); official `n_features`, default 2048 in the models
  TORCH_ARG(int64_t, hidden);
  /// added to ||W||^2 in the step size h = 2 / (||W||^2 + eps); official 1e-4
  TORCH_ARG(double, eps) = 1e-4;
  /// power iterations per training forward (official: 1)
  TORCH_ARG(int64_t, train_iters) = 1;
  /// relu, or spline: a learnable monotone LinearSpline per hidden unit (slopes in [0, 1], which the
  /// proof needs: sigma = psi' of a convex 1-smooth potential)
  TORCH_ARG(std::string, activation) = "relu";
  TORCH_ARG(int64_t, spline_knots) = 51;
  TORCH_ARG(double, spline_grid) = 0.1;
};

/// Dense CPL. Input and output (N, features). Parameters: weight (hidden, features), bias (hidden);
/// buffer u (features): power-iteration vector.
class CplLinearImpl : public torch::nn::Cloneable<CplLinearImpl>, public LipschitzLayer {
 public:
  CplLinearImpl(int64_t features, int64_t hidden = 0)
      : CplLinearImpl(CplLinearOptions(features, hidden)) {}
  explicit CplLinearImpl(const CplLinearOptions& options_);

  void reset() override;
  void reset_parameters();
  void pretty_print(std::ostream& stream) const override;
  torch::Tensor forward(const torch::Tensor& input);
  double lipschitz_bound(Norm norm) const override;

  /// Proven upper bound of ||W||_2 (linalg::spectral_norm_bound, float64), cached until the weight changes.
  double weight_norm_bound();

  CplLinearOptions options;
  torch::Tensor weight, bias, u;
  LinearSpline spline{nullptr};  // with activation "spline"

 private:
  detail::CachedBound bound_;
};
TORCH_MODULE(CplLinear);

struct CplConv2dOptions {
  /// hidden <= 0 means hidden = channels.
  CplConv2dOptions(int64_t channels, int64_t hidden = 0);
  /// channels of the input and output (residual stream width); official `num_channels`
  TORCH_ARG(int64_t, channels);
  /// output channels of the inner convolution; official `conv_size`, 5 in the paper models
  TORCH_ARG(int64_t, hidden);
  /// odd kernel side; padding is kernel_size / 2 so the residual keeps the shape
  TORCH_ARG(int64_t, kernel_size) = 3;
  TORCH_ARG(double, eps) = 1e-4;
  TORCH_ARG(int64_t, train_iters) = 1;
};

/// Convolutional CPL, stride 1. Input and output (N, channels, H, W). Parameters: weight
/// (hidden, channels, k, k), bias (hidden); buffer u (1, channels, H, W), re-created when the input
/// size changes (the official code hard-codes 32x32).
class CplConv2dImpl : public torch::nn::Cloneable<CplConv2dImpl>, public LipschitzLayer {
 public:
  CplConv2dImpl(int64_t channels, int64_t hidden = 0)
      : CplConv2dImpl(CplConv2dOptions(channels, hidden)) {}
  explicit CplConv2dImpl(const CplConv2dOptions& options_);

  void reset() override;
  void reset_parameters();
  void pretty_print(std::ostream& stream) const override;
  torch::Tensor forward(const torch::Tensor& input);
  double lipschitz_bound(Norm norm) const override;

  /// Proven upper bound of the conv operator's norm on height x width inputs, cached per size.
  double weight_norm_bound(int64_t height, int64_t width);

  CplConv2dOptions options;
  torch::Tensor weight, bias, u;

 private:
  detail::CachedBound bound_;
};
TORCH_MODULE(CplConv2d);

}  // namespace lipkit
