#pragma once
// l_inf-distance neurons (Zhang et al., "Towards certifying l_inf robustness using neural networks
// with l_inf-dist neurons", ICML 2021; v2 ICLR 2022): y_j = ||x - w_j||_inf + b_j. Every output is
// 1-Lipschitz in l_inf whatever the weights, so a stack of them (plus translations) is too.
// Training uses the l_p relaxation (p from 8 towards 1000, then inf), set with set_p().

#include <torch/arg.h>
#include <torch/nn/cloneable.h>
#include <torch/nn/pimpl.h>
#include <torch/types.h>

#include <limits>
#include <utility>

#include "lipkit/layers/lipschitz_layer.h"

namespace lipkit {

/// Implemented by the layers whose distance norm p follows the training schedule
/// (LinfDistLinear, SortNetLinear); set_distance_p() and the re-estimation pass reach them through it.
class DistanceLayer {
 public:
  virtual ~DistanceLayer() = default;
  /// Current p (a buffer, so checkpoints keep it).
  double p() const;
  /// throws: c10::Error naming the layer when p < 1.
  void set_p(double p);

  torch::Tensor p_;              // the buffer "p", registered by the layer's reset()
  const char* layer_name_ = "";  // for errors
};

struct LinfDistLinearOptions {
  LinfDistLinearOptions(int64_t in_features, int64_t out_features);
  TORCH_ARG(int64_t, in_features);
  TORCH_ARG(int64_t, out_features);
  /// hidden layers have none (the mean-shift that follows replaces it); the last layer has one
  TORCH_ARG(bool, bias) = false;
  /// > 0 and in <= out: w[i, i mod in] = -identity_init, so neuron i starts as x_(i mod in) +
  /// identity_init (deep stacks start near the identity; the papers use 10)
  TORCH_ARG(double, identity_init) = 0.0;
  /// weights start N(0, init_std^2)
  TORCH_ARG(double, init_std) = 1.0;
};

/// (N, in_features) -> (N, out_features): y[n, j] = ||x[n] - weight[j]||_p + bias[j].
/// Bounds (eval): l_inf 1 at p = inf (in_features^(1/p) for a finite p); l2 sqrt(out_features)
/// times the same factor (each output is 1-Lipschitz from l2 as well).
class LinfDistLinearImpl : public torch::nn::Cloneable<LinfDistLinearImpl>, public LipschitzLayer,
                           public DistanceLayer {
 public:
  LinfDistLinearImpl(int64_t in_features, int64_t out_features)
      : LinfDistLinearImpl(LinfDistLinearOptions(in_features, out_features)) {}
  explicit LinfDistLinearImpl(const LinfDistLinearOptions& options_);
  void reset() override;
  void pretty_print(std::ostream& stream) const override;
  torch::Tensor forward(const torch::Tensor& input);
  double lipschitz_bound(Norm norm) const override;
  /// Output bounds when each input lies in [lower, upper] (requires p = inf).
  std::pair<torch::Tensor, torch::Tensor> interval_bounds(const torch::Tensor& lower,
                                                          const torch::Tensor& upper);

  LinfDistLinearOptions options;
  torch::Tensor weight, bias;
};
TORCH_MODULE(LinfDistLinear);

namespace detail {
struct DistanceParameters {
  torch::Tensor weight, bias, p;
};
/// Checks the sizes and p, registers weight (out, in), bias (if wanted) and the p buffer on `m`,
/// and initializes them: N(0, std^2) weights plus the identity-style init, zero bias.
/// p starts at inf: the one place p lives is that buffer (DistanceLayer::set_p, set_distance_p).
DistanceParameters register_distance_parameters(torch::nn::Module& m, const char* layer, int64_t in,
                                                int64_t out, bool bias, double std, double identity);
/// The eval bound of a distance layer with `in` inputs, `out` outputs, at p.
double distance_layer_bound(Norm norm, int64_t in, int64_t out, double p);
}  // namespace detail

}  // namespace lipkit
