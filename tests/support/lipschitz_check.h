#pragma once
// Numerical Lipschitz measurements, the ground truth every layer test rests on.
// All three are lower estimates of the true constant; on small float64 problems the Jacobian one is
// exact at the points it is evaluated.

#include <torch/torch.h>

#include <functional>

#include "lipkit/layers/lipschitz_layer.h"

namespace lipkit::testing {

/// A batched map: (B, sample_shape...) -> (B, ...), each sample independent of the others.
using BatchFn = std::function<torch::Tensor(const torch::Tensor&)>;

/// Operator norm of the full Jacobian of f at the single sample x (shape sample_shape): largest
/// singular value (l2) or largest row l1 norm (l_inf). Exact, via one batched backward pass.
double jacobian_norm(const BatchFn& f, const torch::Tensor& x, Norm norm = Norm::L2);

/// Largest ||f(x) - f(y)|| / ||x - y|| over `pairs` random pairs at mixed distances (1 to 1e-3).
double max_pair_ratio(const BatchFn& f, torch::IntArrayRef sample_shape, int64_t pairs,
                      const torch::TensorOptions& options, Norm norm = Norm::L2);

/// Largest ratio found by Adam ascent on ||f(x + d) - f(x)|| / ||d|| over x and d, from `starts`
/// random starting pairs, `steps` steps each (every iterate counts).
double ascent_ratio(const BatchFn& f, torch::IntArrayRef sample_shape, int64_t starts, int64_t steps,
                    const torch::TensorOptions& options, Norm norm = Norm::L2);

struct LipschitzReport {
  double jacobian = 0;  // max over a few random points
  double pairs = 0;
  double ascent = 0;
  double max() const { return std::max({jacobian, pairs, ascent}); }
};

/// All three measurements with the suite's default effort.
LipschitzReport measure_lipschitz(const BatchFn& f, torch::IntArrayRef sample_shape,
                                  const torch::TensorOptions& options, Norm norm = Norm::L2);

}  // namespace lipkit::testing
