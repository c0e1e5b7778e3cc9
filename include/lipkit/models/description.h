#pragma once
// A model as data: the module tree with every module's type and options, as JSON. The interchange
// format between the C++ modules and their Python twins (python/lipkit), and the architecture record
// of checkpoints whose model was not built from a ModelSpec (meta "layers").
//
// {"type": "Sequential", "children": [{"name": "0", "type": "CplConv2d", "options": {...}}, ...]}
// Types are the lipkit layer names (CplLinear, SllConv2d, ..., the structure blocks) and the
// LibTorch modules the bounds understand (Linear, Conv2d, BatchNorm1d/2d, ReLU, AvgPool2d, MaxPool2d,
// Flatten, Identity, ...). Parameters and buffers are not part of it: they travel by name.

#include <torch/nn/module.h>
#include <torch/nn/modules/container/sequential.h>

#include <nlohmann/json.hpp>

#include <memory>

namespace lipkit::models {

/// The description of `module` and its children. throws: c10::Error naming a module type that has
/// no description (a custom module).
nlohmann::json describe(const torch::nn::Module& module);

/// A module built from a description, with freshly initialised parameters. throws: c10::Error naming
/// the unknown type or the missing / ill-typed option ("CplLinear.options.features: ...").
std::shared_ptr<torch::nn::Module> build_module(const nlohmann::json& description);

/// build_module for a description whose root is a Sequential (what models and checkpoints are).
torch::nn::Sequential build_sequential(const nlohmann::json& description);

}  // namespace lipkit::models
