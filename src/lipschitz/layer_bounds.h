#pragma once
// l2 bounds of single ordinary LibTorch modules, used by lipschitz::upper_bound. Every module option
// is either proven here or refused by name (c10::Error naming the layer and the option).

#include <torch/nn/module.h>
#include <torch/types.h>

#include <memory>
#include <string>
#include <vector>

#include "lipkit/lipschitz/bounds.h"

namespace lipkit::lipschitz::detail {

/// Bound of `module` on one input of shape `in` (without the batch dimension), or nullopt when the
/// module type is not an ordinary layer this file knows (the caller then refuses it).
c10::optional<LayerBound> ordinary_layer_bound(const std::shared_ptr<torch::nn::Module>& module,
                                               const std::vector<int64_t>& in, BoundMethod method,
                                               int64_t iters);

/// The module as its pretty_print writes it: how bound reports and refusals name a layer.
std::string printed(const torch::nn::Module& m);

/// Operators with at most this many inputs and kMaxUnrolledEntries matrix entries are bounded through
/// their unrolled matrix (exact for every option of the module).
constexpr int64_t kMaxUnrolledEntries = int64_t(1) << 24;

}  // namespace lipkit::lipschitz::detail
