#pragma once
// Whole-model Lipschitz bounds from the layers' own guarantees.

#include <torch/nn/module.h>

#include "lipkit/layers/lipschitz_layer.h"

namespace lipkit::lipschitz {

/// Upper bound of the Lipschitz constant of `module` in `norm`: a lipkit layer's own bound, 1 for
/// torch::nn::Flatten / Identity, the product over the children for torch::nn::Sequential.
/// throws: c10::Error naming the first module type it cannot bound.
double model_bound(const torch::nn::Module& module, Norm norm);

}  // namespace lipkit::lipschitz
