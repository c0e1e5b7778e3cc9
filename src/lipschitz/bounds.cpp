#include "lipkit/lipschitz/bounds.h"

#include <torch/torch.h>

namespace lipkit::lipschitz {

double model_bound(const torch::nn::Module& module, Norm norm) {
  if (const auto* layer = dynamic_cast<const LipschitzLayer*>(&module)) {
    return layer->lipschitz_bound(norm);
  }
  if (dynamic_cast<const torch::nn::FlattenImpl*>(&module) ||
      dynamic_cast<const torch::nn::IdentityImpl*>(&module)) {
    return 1.0;
  }
  if (dynamic_cast<const torch::nn::SequentialImpl*>(&module)) {
    double bound = 1.0;
    for (const auto& child : module.children()) bound *= model_bound(*child, norm);
    return bound;
  }
  TORCH_CHECK(false, "lipkit::lipschitz::model_bound: no ", to_string(norm),
              " Lipschitz bound known for module ", module.name(),
              "; use lipkit layers, or wrap the module in one that states its bound");
}

}  // namespace lipkit::lipschitz
