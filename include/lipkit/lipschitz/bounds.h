#pragma once
// Whole-model Lipschitz bounds: from the layers' own guarantees (lipkit layers), and for ordinary
// LibTorch networks layer by layer (Linear, Conv2d, BatchNorm, pooling, activations).
//
// The bound functions, one name each:
//   LipschitzLayer::lipschitz_bound(norm)  one lipkit layer's own guarantee (layers/lipschitz_layer.h)
//   model_bound(module, norm)              the product of those guarantees over a model
//   upper_bound(model, shape, method)      a bound computed for any model, ordinary layers included
//   certify::body_bound(model, norm)       model_bound of everything but a NormalizedLinear head

#include <torch/nn/module.h>
#include <torch/nn/modules/container/sequential.h>

#include <string>
#include <vector>

#include "lipkit/layers/lipschitz_layer.h"

namespace lipkit::lipschitz {

/// Upper bound of the Lipschitz constant of `module` in `norm`: a lipkit layer's own bound, 1 for
/// torch::nn::Flatten / Identity, the product over the children for torch::nn::Sequential.
/// throws: c10::Error naming the first module type it cannot bound.
double model_bound(const torch::nn::Module& module, Norm norm);

/// How the l2 norm of a weight layer is bounded.
///  gram:  Gram iteration (proven upper bound; conv in the Fourier domain),
///  exact: SVD of the matrix (dense), of the unrolled operator (conv, at most kUnrollLimit inputs),
///         else the exact circular-conv norm by FFT + SVD (proven upper bound of the zero-padded one),
///  power: power iteration on the true operator, times 1.01: an estimate, not a proof.
enum class BoundMethod { Gram, Exact, Power };
BoundMethod parse_bound_method(const std::string& name);
std::string to_string(BoundMethod method);

struct LayerBound {
  std::string layer;   // the module as printed
  double bound = 1.0;
  bool proven = true;  // false when it rests on a power-iteration estimate
};

struct BoundReport {
  std::vector<LayerBound> layers;
  double product = 1.0;  // the whole-model bound
  bool proven = true;
};

/// l2 upper bound of a (nested) Sequential, layer by layer, on one input of `sample_shape`
/// ((C, H, W) or (F)); lipkit layers use their own bounds. `iters`: Gram squarings or power
/// iterations (0: 12 / 200). The model is switched to eval mode (BatchNorm uses running stats).
/// throws: c10::Error naming an unsupported layer (type and options).
BoundReport upper_bound(torch::nn::Sequential& model, std::vector<int64_t> sample_shape,
                        BoundMethod method, int64_t iters = 0);

}  // namespace lipkit::lipschitz
