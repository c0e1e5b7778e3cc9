#pragma once
// What the image training loop (trainer.cpp) and the table one (tabular_trainer.cpp) share (internal).

#include <torch/torch.h>

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "lipkit/train/config.h"

namespace lipkit::train::detail {

/// Creates `dir` and its parents. throws: c10::Error naming it when it cannot be made.
void make_dirs(const std::string& dir);

/// (parameters, base learning rate) per optimizer group.
using ParamGroups = std::vector<std::pair<std::vector<torch::Tensor>, double>>;

/// The model's parameters at optimizer.lr, and, when optimizer.spline_lr is set and the model has
/// LinearSplines, their coefficients and scales in a second group at spline_lr (the paper trains
/// them at a rate of their own).
ParamGroups parameter_groups(torch::nn::Module& model, const OptimizerSpec& o);

/// Adam or SGD as configured, one parameter group per entry, the other settings shared.
std::unique_ptr<torch::optim::Optimizer> make_optimizer(const OptimizerSpec& o, const ParamGroups& groups);

/// Every group at its base rate (group 0: lr; group 1: spline_lr) times the schedule's factor.
void set_lr(torch::optim::Optimizer& opt, const OptimizerSpec& o, double factor);

}  // namespace lipkit::train::detail
