#pragma once
// The training loop: progress, per-epoch evaluation (clean + certified accuracy), JSON-lines
// metrics, atomic checkpoints every epoch and on interruption, bit-for-bit resume.

#include <functional>
#include <string>

#include "lipkit/train/config.h"

namespace lipkit::train {

struct TrainOptions {
  std::string out_dir;  // holds model.pt, config.json, metrics.jsonl
  bool resume = false;  // continue from out_dir/model.pt
  bool progress = true; // progress bar on stderr
  /// polled after every batch; true saves a checkpoint and returns (Ctrl-C)
  std::function<bool()> stop_requested;
};

struct TrainSummary {
  int64_t epochs_done = 0;
  bool interrupted = false;
  double clean_accuracy = 0;
  std::vector<double> certified_accuracy;  // at config.radii
  double seconds = 0;
  double test_mse = 0;  // tabular (regression) runs: in the target's units
};

/// Trains as configured. throws: c10::Error for bad data/config, and for a NaN or infinite loss
/// (the last good checkpoint stays in place; the message says where).
/// A config with table.path set trains the monotonic family on the table (train_tabular).
TrainSummary train(const TrainConfig& config, const TrainOptions& options);

/// Tabular training: the table split (or its test file), standardised on the training rows, the
/// target fitted by MSE; metrics.jsonl holds the test MSE per epoch; the checkpoint's metadata the
/// column schema and the target's mean and std ("table"). No resume.
TrainSummary train_tabular(const TrainConfig& config, const TrainOptions& options);

}  // namespace lipkit::train
