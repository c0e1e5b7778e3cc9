#pragma once
// SortNet (Zhang, Jiang, He, Wang, "Rethinking Lipschitz neural networks and certified robustness:
// a Boolean function perspective", NeurIPS 2022). The neuron sorts z_i = |x_i - w_i| in decreasing
// order and takes y = sum_k q (1-q)^(k-1) z_(k) + b: the weights sum to at most 1 and every order
// statistic is 1-Lipschitz in l_inf, so y is. q = 1 is the l_inf-distance neuron.
// Training uses the identity E_S[max_{i in S} z_i] = sum_k q (1-q)^(k-1) z_(k) for a random subset
// S keeping each input with probability q: an l_p/l_inf-distance pass on a subset of the inputs,
// never a sort. Evaluation uses the top k (10) order statistics, renormalized, as the official code.

#include <vector>
#include <torch/arg.h>
#include <torch/nn/cloneable.h>
#include <torch/nn/module.h>
#include <torch/nn/pimpl.h>
#include <torch/types.h>

#include <limits>
#include <utility>

#include "lipkit/layers/linf_dist.h"
#include "lipkit/layers/lipschitz_layer.h"

namespace lipkit {

struct SortNetLinearOptions {
  SortNetLinearOptions(int64_t in_features, int64_t out_features);
  TORCH_ARG(int64_t, in_features);
  TORCH_ARG(int64_t, out_features);
  /// keep probability of an input in training; the geometric ratio of the sort weights
  TORCH_ARG(double, q) = 0.7;
  /// order statistics kept at evaluation (the official truncate = 10)
  TORCH_ARG(int64_t, k) = 10;
  TORCH_ARG(bool, bias) = false;
  TORCH_ARG(double, identity_init) = 0.0;
  TORCH_ARG(double, init_std) = 1.0;
  /// subset masks come from (seed, step): reproducible, and resumable (step is a buffer)
  TORCH_ARG(uint64_t, seed) = 0;
};

/// (N, in_features) -> (N, out_features). Training with gradients (or p < inf): l_p distance on a
/// random input subset, one subset per batch. Otherwise (eval, or train mode without gradients at
/// p = inf, as in the mean-shift re-estimation pass): the deterministic truncated sort neuron.
/// Eval bounds: l_inf 1; l2 sqrt(out_features).
class SortNetLinearImpl : public torch::nn::Cloneable<SortNetLinearImpl>, public LipschitzLayer,
                          public DistanceLayer {
 public:
  SortNetLinearImpl(int64_t in_features, int64_t out_features)
      : SortNetLinearImpl(SortNetLinearOptions(in_features, out_features)) {}
  explicit SortNetLinearImpl(const SortNetLinearOptions& options_);
  void reset() override;
  void pretty_print(std::ostream& stream) const override;
  torch::Tensor forward(const torch::Tensor& input);
  double lipschitz_bound(Norm norm) const override;
  /// Bounds of the evaluation neuron over the box [lower, upper].
  std::pair<torch::Tensor, torch::Tensor> interval_bounds(const torch::Tensor& lower,
                                                          const torch::Tensor& upper);
  /// The truncation actually used: min(k, in_features).
  int64_t eval_k() const;

  SortNetLinearOptions options;
  torch::Tensor weight, bias, step;
};
TORCH_MODULE(SortNetLinear);

/// The inputs a SortNetLinear keeps at training step `step` (each with probability q, at least one):
/// a function of (seed, step) alone, so twins (the Python layer) and resumed runs draw the same.
std::vector<int64_t> sortnet_subset(uint64_t seed, int64_t step, int64_t n, double q);

/// Logits of a distance network: -x (the closest center wins). 1-Lipschitz in every norm. (The
/// learnable temperature of the SortNet loss's cross-entropy term is the trainer's, not the model's:
/// margins and certificates use the raw distances.)
class NegatedDistanceImpl : public torch::nn::Cloneable<NegatedDistanceImpl>, public LipschitzLayer {
 public:
  NegatedDistanceImpl() = default;
  void reset() override {}
  void pretty_print(std::ostream& stream) const override;
  torch::Tensor forward(const torch::Tensor& input) { return -input; }
  double lipschitz_bound(Norm) const override { return 1.0; }
};
TORCH_MODULE(NegatedDistance);

/// Sets p on every DistanceLayer (LinfDistLinear, SortNetLinear) inside `module`; returns how many.
int64_t set_distance_p(torch::nn::Module& module, double p);

}  // namespace lipkit
