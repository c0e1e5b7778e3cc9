#pragma once
// Initializers shared by the layer implementations (not public API).

#include <torch/torch.h>

#include <cmath>

namespace lipkit::detail {

/// PyTorch's default Linear/Conv init, as the official CPL code: weight and (if defined) bias
/// uniform in +-1/sqrt(fan_in).
inline void uniform_fan_in_init(torch::Tensor& weight, torch::Tensor& bias, int64_t fan_in) {
  torch::NoGradGuard no_grad;
  const double bound = 1.0 / std::sqrt(static_cast<double>(fan_in));
  weight.uniform_(-bound, bound);
  if (bias.defined()) bias.uniform_(-bound, bound);
}

}  // namespace lipkit::detail
