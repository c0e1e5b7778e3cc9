#pragma once
// Checkpoints: model + optimizer + metadata in one file, written atomically (temp file + rename),
// so an interrupted run always leaves the previous complete checkpoint.

#include <torch/nn/modules/container/sequential.h>
#include <torch/optim/optimizer.h>

#include <nlohmann/json.hpp>

#include <string>

#include "lipkit/models/presets.h"

namespace lipkit::train {

constexpr const char* kCheckpointFormat = "lipkit-ckpt-v1";

/// Training tensors that are not the model's (the mixture loss's learnable temperature), by name.
using ExtraTensors = std::vector<std::pair<std::string, torch::Tensor>>;

/// Writes `path` atomically. meta must hold "spec" (see spec_to_json); optimizer may be null.
void save_checkpoint(const std::string& path, torch::nn::Module& model,
                     torch::optim::Optimizer* optimizer, const nlohmann::json& meta,
                     const ExtraTensors& extra = {});

/// The metadata of a checkpoint. throws: c10::Error naming the file when it is missing, not a
/// lipkit checkpoint, or of another format version.
nlohmann::json read_checkpoint_meta(const std::string& path);

/// Rebuilds the model from the checkpoint's spec and loads its weights and buffers (eval mode).
torch::nn::Sequential load_model(const std::string& path, nlohmann::json* meta = nullptr);

/// A checkpoint ready for evaluation: eval mode, every distance layer at p = inf (the network the
/// l_inf-dist / SortNet papers certify, also for a run stopped inside its p schedule).
struct EvalModel {
  torch::nn::Sequential model;
  nlohmann::json meta;
  std::string data;  ///< the data set it was trained on (meta "data"; fashion-mnist when absent)
  std::string name;  ///< the preset it was built from, else its model family (for titles)
};
EvalModel load_for_evaluation(const std::string& path);

/// Loads weights (and the optimizer state and the extra tensors, when given) into existing objects
/// whose tensors are on `device` (the checkpoint's tensors are read onto it, whoever wrote them).
void load_state(const std::string& path, torch::nn::Module& model, torch::optim::Optimizer* optimizer,
                const ExtraTensors& extra = {}, torch::Device device = torch::kCPU);

nlohmann::json spec_to_json(const models::ModelSpec& s);
models::ModelSpec spec_from_json(const nlohmann::json& j);

}  // namespace lipkit::train
