#pragma once
// Shared by the commands that read a checkpoint: load the model and its test data.

#include <nlohmann/json.hpp>

#include <limits>

#include "lipkit/data/dataset.h"
#include "lipkit/layers/lipschitz_layer.h"
#include "lipkit/layers/sortnet.h"
#include "lipkit/train/checkpoint.h"

namespace lipkit::cli {

struct LoadedModel {
  torch::nn::Sequential model;
  nlohmann::json meta;
};

/// The checkpoint's model in eval mode. Distance layers are evaluated at p = inf, the network the
/// l_inf-dist / SortNet papers certify (a run stopped inside the p schedule still has a finite p).
inline LoadedModel load_checkpoint(const std::string& path) {
  LoadedModel m;
  m.model = train::load_model(path, &m.meta);
  set_distance_p(*m.model, std::numeric_limits<double>::infinity());
  return m;
}

/// The test split of --data, or of the data set the checkpoint was trained on.
inline data::Dataset load_test_data(const std::string& data_arg, const nlohmann::json& meta, int64_t subset) {
  std::string spec = data_arg;
  if (spec.empty()) spec = meta.value("data", std::string("fashion-mnist"));
  return data::load_dataset(spec, data::Split::Test).head(subset);
}

inline Norm parse_norm(const std::string& s) {
  if (s == "l2" || s == "L2") return Norm::L2;
  if (s == "linf" || s == "Linf" || s == "inf") return Norm::Linf;
  TORCH_CHECK(false, "--norm must be l2 or linf, got '", s, "'");
}

}  // namespace lipkit::cli
