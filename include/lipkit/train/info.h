#pragma once
// What `lipkit info` shows about a checkpoint, as data.

#include <nlohmann/json.hpp>

#include <string>
#include <vector>

#include "lipkit/layers/lipschitz_layer.h"

namespace lipkit::train {

struct CheckpointInfo {
  std::string architecture;  // the model as printed
  int64_t parameters = 0;
  /// per norm (l2, linf): the body's proven bound, or none when the model has no bound in it
  std::vector<std::pair<Norm, c10::optional<double>>> bounds;
  bool pairwise_head = false;  // NormalizedLinear last layer: certified per class pair
  std::string data;
  int64_t epoch = 0, next_batch = 0;
  nlohmann::json config;        // applicable_config of the saved config
  nlohmann::json last_metrics;  // the last line of metrics.jsonl beside the checkpoint (null if none)
  /// Models trained on a table: the task, target and classes, and per output the features it is
  /// proven non-decreasing / non-increasing in, whether the proof holds with these weights, and the
  /// bound on each partial derivative w.r.t. the raw (unstandardised) feature (null otherwise).
  nlohmann::json table;
  /// Private runs: the accounting (epsilon spent, delta, noise multiplier, sampling rate, steps; null otherwise).
  nlohmann::json dp;
};

/// throws: c10::Error naming the file when it is not a readable lipkit checkpoint.
CheckpointInfo checkpoint_info(const std::string& path);

}  // namespace lipkit::train
