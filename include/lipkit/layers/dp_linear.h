#pragma once
// The layers of differentially private training without clipping (Bethune et al., ICLR 2024,
// "lip-dp"): a dense layer kept 1-Lipschitz by projection after each step, so its forward uses the
// raw parameter (the per-example gradient w.r.t. the weight is exactly g x^T, of norm ||g|| ||x||), and
// the input clipping that bounds ||x||.

#include <torch/arg.h>
#include <torch/nn/cloneable.h>
#include <torch/nn/pimpl.h>
#include <torch/types.h>

#include "lipkit/layers/lipschitz_layer.h"

namespace lipkit {

struct DpLinearOptions {
  DpLinearOptions(int64_t in_features, int64_t out_features);
  TORCH_ARG(int64_t, in_features);
  TORCH_ARG(int64_t, out_features);
  TORCH_ARG(bool, bias) = true;
  /// Gram-iteration squarings of the proven norm bound (more: tighter, slower)
  TORCH_ARG(int64_t, bound_iters) = 8;
  /// power iterations per project() (the estimate it divides by; its vector persists in buffer u)
  TORCH_ARG(int64_t, project_iters) = 2;
};

/// (N, in) -> (N, out): y = W x + b, no reparametrisation. Parameters: weight (out, in), bias (out);
/// buffer u (in): the power-iteration vector. project() (called after every optimizer step) divides W
/// by a power-iteration estimate of ||W||_2 when it exceeds 1, keeping the layer near 1-Lipschitz;
/// what is stated, the Lipschitz bound for certification and the sensitivities, is weight_norm_bound(),
/// a proven bound of the weight as stored (so an estimate slightly low costs nothing in soundness).
class DpLinearImpl : public torch::nn::Cloneable<DpLinearImpl>, public LipschitzLayer {
 public:
  DpLinearImpl(int64_t in_features, int64_t out_features)
      : DpLinearImpl(DpLinearOptions(in_features, out_features)) {}
  explicit DpLinearImpl(const DpLinearOptions& options_);
  void reset() override;
  /// Orthogonal init (1-Lipschitz from the start), zero bias.
  void reset_parameters();
  void pretty_print(std::ostream& stream) const override;
  torch::Tensor forward(const torch::Tensor& input);
  double lipschitz_bound(Norm norm) const override;
  /// A proven upper bound of ||W||_2 for the current weight (Gram iteration), cached until it changes.
  double weight_norm_bound() const;
  /// W <- W / s when the estimate s of ||W||_2 exceeds 1 (post-processing of a private step).
  void project();

  DpLinearOptions options;
  torch::Tensor weight, bias, u;

 private:
  mutable detail::CachedBound bound_;
};
TORCH_MODULE(DpLinear);

struct DpBoundedInputOptions {
  explicit DpBoundedInputOptions(double norm) : norm_(norm) {}
  /// X: every example is scaled to l2 norm <= X (over all its dimensions)
  TORCH_ARG(double, norm);
};

/// (N, ...) -> same shape: x min(1, X / ||x||_2) per example, the projection onto the X-ball (1-Lipschitz
/// in l2). The input-norm bound every private sensitivity starts from.
class DpBoundedInputImpl : public torch::nn::Cloneable<DpBoundedInputImpl>, public LipschitzLayer {
 public:
  explicit DpBoundedInputImpl(double norm) : DpBoundedInputImpl(DpBoundedInputOptions(norm)) {}
  explicit DpBoundedInputImpl(const DpBoundedInputOptions& options_);
  void reset() override;
  void pretty_print(std::ostream& stream) const override;
  torch::Tensor forward(const torch::Tensor& input);
  double lipschitz_bound(Norm norm) const override { return norm == Norm::L2 ? 1.0 : kNoBound; }

  DpBoundedInputOptions options;
};
TORCH_MODULE(DpBoundedInput);

}  // namespace lipkit
