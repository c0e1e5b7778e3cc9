#pragma once
// Lipschitz-normalised dense layer of the monotonic Lipschitz networks (Kitouni, Nolte, Williams,
// "Robust and Provably Monotonic Networks" / "Expressive Monotonic Neural Networks", ICLR 2023; the
// MonotonicNetworks package): the weight divided by its norm only where that norm exceeds the bound,
// per column, row or entry ("vectorwise", the default) or as a whole.
//
//   kind      norm of W bounded              operator norm it bounds
//   one       max column abs sum             1 -> 1
//   inf       max row abs sum                inf -> inf
//   one-inf   max abs entry                  1 -> inf
//   two-inf   max row l2 norm                2 -> inf
//   two       spectral norm (whole matrix)   2 -> 2

#include <torch/arg.h>
#include <torch/nn/cloneable.h>
#include <torch/nn/pimpl.h>
#include <torch/types.h>

#include <string>

#include "lipkit/layers/lipschitz_layer.h"

namespace lipkit {

/// The l_p norm of an operator's input or output: 1, 2 or inf.
enum class PNorm { One, Two, Inf };
std::string to_string(PNorm p);

namespace functional {
/// weight / max(1, norm / bound) with the norm of `kind` taken per column (one), row (inf, two-inf) or
/// entry (one-inf) when vectorwise, else over the whole matrix (always for two; `spectral` is then
/// its spectral norm, computed by the caller). Differentiable.
torch::Tensor lipschitz_normalize(const torch::Tensor& weight, const std::string& kind, double bound, bool vectorwise,
                                  const torch::Tensor& spectral = {});
}  // namespace functional

struct LipschitzLinearOptions {
  LipschitzLinearOptions(int64_t in_features, int64_t out_features);
  TORCH_ARG(int64_t, in_features);
  TORCH_ARG(int64_t, out_features);
  TORCH_ARG(bool, bias) = true;
  /// one | inf | one-inf | two-inf | two (the table above)
  TORCH_ARG(std::string, kind) = "one";
  /// the bound of this layer's operator norm in its norm pair, > 0
  TORCH_ARG(double, lipschitz) = 1.0;
  /// per column / row / entry (true, the package's default) or the whole matrix
  TORCH_ARG(bool, vectorwise) = true;
};

/// (N, in_features) -> (N, out_features): y = W_n x + b with ||W_n||_{p->q} <= lipschitz.
class LipschitzLinearImpl : public torch::nn::Cloneable<LipschitzLinearImpl>, public LipschitzLayer {
 public:
  LipschitzLinearImpl(int64_t in_features, int64_t out_features)
      : LipschitzLinearImpl(LipschitzLinearOptions(in_features, out_features)) {}
  explicit LipschitzLinearImpl(const LipschitzLinearOptions& options_);
  void reset() override;
  void reset_parameters();
  void pretty_print(std::ostream& stream) const override;
  torch::Tensor forward(const torch::Tensor& input);
  /// The bound in l2 (kind two) or l_inf (kind inf); no bound in the other norm.
  double lipschitz_bound(Norm norm) const override;
  /// The norm pair this layer is bounded in: input and output norm.
  std::pair<PNorm, PNorm> norm_pair() const;
  /// The operator norm of the weight actually applied in norm_pair(), computed in float64 (slightly
  /// above it: outward for rounding); <= lipschitz up to that slack.
  double pair_bound() const;
  /// The normalised weight the forward applies.
  torch::Tensor effective_weight() const;

  LipschitzLinearOptions options;
  torch::Tensor weight, bias;

 private:
  mutable detail::CachedBound spectral_;  // kind two, eval: the proven spectral bound until the weight changes
};
TORCH_MODULE(LipschitzLinear);

/// The operator norm of `weight` (out, in) from l_p to l_q for the five pairs above, in float64,
/// rounded outward. throws: c10::Error for other pairs.
double operator_norm(const torch::Tensor& weight, PNorm p, PNorm q);

}  // namespace lipkit
