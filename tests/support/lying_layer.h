#pragma once
// Negative controls for certification tests: a layer that triples its input while claiming a bound
// of 1, and a copy of a model with it inserted before the head.

#include <torch/torch.h>

#include "lipkit/layers/lipschitz_layer.h"

namespace lipkit::testing {

struct LyingScaleImpl : torch::nn::Cloneable<LyingScaleImpl>, LipschitzLayer {
  void reset() override {}
  torch::Tensor forward(const torch::Tensor& x) { return 3.0 * x; }
  double lipschitz_bound(Norm) const override { return 1.0; }
};
TORCH_MODULE(LyingScale);

/// The layers of `model` (sharing their modules) with a LyingScale before the last one.
inline torch::nn::Sequential with_liar_before_head(torch::nn::Sequential& model) {
  torch::nn::Sequential liar;
  auto it = model->begin();
  for (size_t i = 0; i + 1 < model->size(); ++i) liar->push_back(*it++);
  liar->push_back(LyingScale());
  liar->push_back(*it);
  return liar;
}

}  // namespace lipkit::testing
