#pragma once
// Exact mean-shift statistics before certification (official l_inf-dist / SortNet practice).

#include <torch/nn/modules/container/sequential.h>

#include "lipkit/data/dataset.h"

namespace lipkit::certify {

/// Recomputes the running mean of every MeanShift layer as the exact average over `data` (train
/// mode without gradients, every distance layer at p = inf for the pass, so SortNet layers use the
/// deterministic sort neuron; the layers' p and the model's mode are restored afterwards).
/// Returns the number of MeanShift layers (0: nothing to do, no pass made).
int64_t reestimate_mean_shift(torch::nn::Sequential& model, const data::Dataset& data,
                              int64_t batch_size = 500);

}  // namespace lipkit::certify
