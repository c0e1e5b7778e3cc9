#pragma once
// Empirical lower bound of a Lipschitz constant: how tight an upper bound is.

#include <torch/types.h>

#include <torch/nn/modules/container/sequential.h>

#include <functional>

#include "lipkit/layers/lipschitz_layer.h"

namespace lipkit::lipschitz {

/// ||row||_2 or ||row||_inf of every sample (dim 0) of a batch.
torch::Tensor per_sample_norm(const torch::Tensor& t, Norm norm);

/// Largest ||f(x + d) - f(x)|| / ||d|| found by Adam ascent over x and d, started from the rows
/// of `starts` (each paired with a small random d), `steps` steps; every iterate counts. A lower
/// bound of the Lipschitz constant of f on the region explored.
double empirical_lower_bound(const std::function<torch::Tensor(const torch::Tensor&)>& f,
                             const torch::Tensor& starts, int64_t steps, Norm norm = Norm::L2,
                             double lr = 0.02);

/// The same for a model in eval mode.
double lower_bound(torch::nn::Sequential& model, const torch::Tensor& starts, int64_t steps = 200,
                   Norm norm = Norm::L2);

}  // namespace lipkit::lipschitz
