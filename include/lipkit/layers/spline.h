#pragma once
// Learnable 1-Lipschitz linear-spline activations (Ducotterd, Goujon, Bohra, Perdios, Neumayer,
// Unser, "Improving Lipschitz-Constrained Neural Networks by Learning Activation Functions", JMLR 25,
// 2024): one continuous piecewise-linear function per channel on a uniform grid of knots, continued
// linearly outside the grid with its end slopes, whose slopes are projected into [-L, L] at every
// forward, training and eval alike.

#include <torch/arg.h>
#include <torch/nn/cloneable.h>
#include <torch/nn/pimpl.h>
#include <torch/types.h>

#include <functional>
#include <string>
#include <utility>

#include "lipkit/layers/lipschitz_layer.h"

namespace lipkit {

namespace functional {
/// The coefficients (C, K) with every slope (a[k+1] - a[k]) / grid clamped to [-lipschitz, lipschitz]
/// (to [0, lipschitz] when monotone), rebuilt by a cumulative sum and shifted to the raw coefficients'
/// mean (so the projection moves the function no more than it must). Differentiable.
torch::Tensor spline_projection(const torch::Tensor& coefficients, double grid, double lipschitz,
                                bool monotone = false);

/// Evaluates per channel (dim 1) the linear spline with coefficients (C, K) at the knots
/// t_k = (k - (K - 1) / 2) grid; linear with the end slopes outside [t_0, t_{K-1}]. With a scale (C),
/// spline(scale x) / scale. Differentiable in x, the coefficients and the scale (kernels::linear_spline).
torch::Tensor linear_spline(const torch::Tensor& x, const torch::Tensor& coefficients, double grid,
                            const torch::Tensor& scale = {});

/// Sum over channels of the l1 norm of the second differences of the coefficients, divided by grid:
/// the total variation of the spline's derivative (TV(2)); a ReLU-shaped channel contributes 1.
torch::Tensor spline_tv2(const torch::Tensor& coefficients, double grid);
}  // namespace functional

struct LinearSplineOptions {
  /* implicit */ LinearSplineOptions(int64_t num_channels);
  /// channels (dim 1 of the input): one spline each
  TORCH_ARG(int64_t, num_channels);
  /// knots of the uniform grid, >= 3 (the paper: 51)
  TORCH_ARG(int64_t, num_knots) = 51;
  /// knot spacing, > 0 (the grid covers [-(K-1)/2, (K-1)/2] x grid)
  TORCH_ARG(double, grid) = 0.1;
  /// identity | relu | absolute_value | maxmin (even channels max(x, 0), odd channels min(x, 0))
  TORCH_ARG(std::string, init) = "relu";
  /// the largest slope allowed, in (0, 1] (the layer's Lipschitz constant)
  TORCH_ARG(double, lipschitz) = 1.0;
  /// learnable per-channel input scale s: y = spline(s x) / s (the paper's trick; same slopes)
  TORCH_ARG(bool, scaling) = true;
  /// slopes projected into [0, lipschitz] instead of [-lipschitz, lipschitz]: a non-decreasing spline,
  /// what the CPL and SLL residuals need of their activation (init identity, relu or maxmin)
  TORCH_ARG(bool, monotone) = false;
  /// the projection of the slopes; off only to test that checkers catch an unprojected spline (the
  /// stated bound is then the largest raw slope, still honest)
  TORCH_ARG(bool, project) = true;
};

/// (N, C, ...) -> (N, C, ...): a learnable 1-Lipschitz (or lipschitz-Lipschitz) function per channel.
class LinearSplineImpl : public torch::nn::Cloneable<LinearSplineImpl>, public LipschitzLayer {
 public:
  LinearSplineImpl(int64_t num_channels) : LinearSplineImpl(LinearSplineOptions(num_channels)) {}
  explicit LinearSplineImpl(const LinearSplineOptions& options_);
  void reset() override;
  void reset_parameters();
  void pretty_print(std::ostream& stream) const override;
  torch::Tensor forward(const torch::Tensor& input);
  /// The largest slope present, |slope| over every channel and interval: the same in l2 and l_inf
  /// (a per-coordinate map).
  double lipschitz_bound(Norm norm) const override;
  /// Whether every slope present lies in [0, 1] (up to rounding): the activation condition of the CPL
  /// and SLL proofs (true for a monotone spline with lipschitz <= 1).
  bool slopes_in_unit_interval() const;
  /// The coefficients the forward uses (projected unless project is off), (C, K).
  torch::Tensor effective_coefficients() const;
  /// TV(2) of this layer's effective coefficients (differentiable).
  torch::Tensor tv2() const;
  /// Exact output bounds when each input lies in [lower, upper]: the spline's min and max over the
  /// interval are taken at its ends or at the knots inside it. No gradient.
  std::pair<torch::Tensor, torch::Tensor> interval_bounds(const torch::Tensor& lower, const torch::Tensor& upper);

  LinearSplineOptions options;
  torch::Tensor coefficients;  // (C, K), learnable
  torch::Tensor log_scale;     // (C): s = exp(log_scale) > 0, learnable when options.scaling()
};
TORCH_MODULE(LinearSpline);

/// The activation inside the CPL / SLL residuals: ReLU, or with activation "spline" a monotone
/// LinearSpline (slopes in [0, 1], ReLU init) of `hidden` channels registered as "activation".
/// throws: c10::Error naming `layer` for any other activation.
LinearSpline residual_activation(torch::nn::Module& owner, const char* layer, const std::string& activation,
                                 int64_t hidden, int64_t knots, double grid);

/// The spline as the activation argument of the CPL / SLL functional forms: empty (their ReLU) for a
/// null holder.
std::function<torch::Tensor(const torch::Tensor&)> as_activation(const LinearSpline& spline);

/// Sum of tv2() over every LinearSpline inside `module` (0 when there is none): the regulariser.
torch::Tensor spline_tv2(torch::nn::Module& module);

}  // namespace lipkit
