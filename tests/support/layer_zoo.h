#pragma once
// Every lipkit layer at a small size, for the property tests that run over all of them.

#include <torch/torch.h>

#include <functional>
#include <string>
#include <vector>

#include "lipkit/layers/lipschitz_layer.h"

namespace lipkit::testing {

struct LayerCase {
  std::string name;
  std::function<torch::nn::Sequential()> make;  // the layer inside a one-element Sequential
  std::vector<int64_t> sample_shape;            // input shape without the batch dim
  Norm norm = Norm::L2;                         // the norm of the bound under test
};

/// Every lipkit module, each with the norm(s) it states a bound in (lipschitz_bound, not always 1).
std::vector<LayerCase> layer_cases();

inline std::ostream& operator<<(std::ostream& os, const LayerCase& c) {
  return os << c.name << "/" << to_string(c.norm);
}

}  // namespace lipkit::testing
