#pragma once
// Per-example gradient-norm bounds of a Lipschitz network, layer by layer, without per-example
// gradients (Bethune et al., ICLR 2024): an input-norm bound propagated forward from a DpBoundedInput,
// a gradient-norm bound propagated backward from a loss whose gradient w.r.t. the logits is bounded;
// a layer's parameters then have per-example gradient norm <= (its input-norm bound) x (the gradient
// bound at its output) (and the gradient bound itself for a bias). The Gaussian mechanism on the summed
// gradient needs nothing more: no clipping.

#include <torch/nn/modules/container/sequential.h>
#include <torch/types.h>

#include <string>
#include <vector>

namespace lipkit::dp {

/// The bound on the l2 norm of d loss / d logits, for every logit vector and label, of lipkit's
/// per-example losses (train/losses.h): ce and offset_ce: sqrt(2) (the gradient is softmax - onehot;
/// the temperature cancels in offset_ce); multi_margin: sqrt((C - 1) / C) for C classes. throws:
/// c10::Error naming the loss when it has no such constant here (mixture: its CE scale is learned).
double loss_lipschitz(const std::string& loss, int64_t classes);

struct LayerSensitivity {
  std::string layer;                      // index and name in the model, e.g. "4: DpLinear(256 -> 256)"
  std::vector<torch::Tensor> parameters;  // the layer's trainable tensors
  double input_norm = 0;                  // bound of ||x||_2 at the layer's input, per example
  double output_gradient = 0;             // bound of ||d loss / d y||_2 at its output, per example
  double bound = 0;                       // bound of the per-example gradient norm of `parameters` (joint)
};

/// The sensitivities of every parametrised layer of `model` with its current weights, for a loss with
/// gradient bound `loss_lipschitz` at the logits. Supported: DpBoundedInput, DpLinear, Flatten,
/// MaxMin, GroupSort, ReLU, FirstChannels, and before the DpBoundedInput any parameter-free
/// InputNormalization. throws: c10::Error naming the first module it cannot bound, a parametrised
/// layer before the DpBoundedInput, or a trainable parameter no bound covers.
std::vector<LayerSensitivity> sensitivities(torch::nn::Sequential& model, double loss_lipschitz);

/// The gradient's global sensitivity: sqrt(sum of the layers' bounds squared).
double global_sensitivity(const std::vector<LayerSensitivity>& layers);

}  // namespace lipkit::dp
