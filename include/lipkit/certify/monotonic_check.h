#pragma once
// An adversarial search for monotonicity violations: the check a monotone guarantee must survive
// (0 expected on a MonotonicResidual network; an unconstrained network usually has some).

#include <torch/nn/modules/container/sequential.h>
#include <torch/types.h>

namespace lipkit::certify {

struct MonotonicCheckOptions {
  int64_t pairs = 4096;       // random pairs per constrained (output, input)
  int64_t steps = 50;         // signed-gradient ascent steps on the violation, from the random pairs
  double step_fraction = 0.02;  // ascent step, as a fraction of each input's range
  double tolerance = 1e-9;    // a pair counts as a violation when it goes the wrong way by more
  uint64_t seed = 0;
};

struct MonotonicCheckReport {
  int64_t pairs = 0;       // pairs evaluated (random and ascent iterates; t = 0 not counted)
  int64_t violations = 0;  // pairs that went the wrong way by more than the tolerance
  double worst = 0;        // the largest wrong-way change found (< 0: none, the margin); output units
  int64_t output = -1, input = -1;  // where the worst was found
  torch::Tensor at;        // its lower point x (raw inputs, float64), and the step t along input
  double step = 0;
  double worst_slope = 0;  // the most wrong-signed partial derivative seen at the search points (< 0: none)
};

/// Searches, for every output k and input i with constraints(k, i) = s != 0, for pairs (x, x + t e_i)
/// inside the box [lo, hi] (t > 0) with s (f_k(x + t e_i) - f_k(x)) < 0: random pairs, then signed
/// gradient ascent on the wrong-way change (x and t kept in the box). Runs in float64: the model is
/// converted for the search and back (exact), so it must not be used concurrently. throws:
/// c10::Error naming the shape when constraints (outputs, inputs), lo and hi (inputs) do not fit.
MonotonicCheckReport check_monotonic(torch::nn::Sequential model, const torch::Tensor& constraints,
                                     const torch::Tensor& lo, const torch::Tensor& hi,
                                     const MonotonicCheckOptions& options = {});

}  // namespace lipkit::certify
