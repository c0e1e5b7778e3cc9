#pragma once
// The training loop: progress, per-epoch evaluation (clean + certified accuracy), JSON-lines
// metrics, atomic checkpoints every epoch and on interruption, bit-for-bit resume.

#include <functional>
#include <string>

#include "lipkit/train/config.h"
#include "lipkit/train/distributed.h"

namespace lipkit::train {

struct TrainOptions {
  std::string out_dir;  // holds model.pt, config.json, metrics.jsonl
  bool resume = false;  // continue from out_dir/model.pt
  bool progress = true; // progress bar on stderr
  bool no_privacy = false;  // allow dp.noise_multiplier 0 (a debugging run, recorded as not private)
  /// polled after every batch; true saves a checkpoint and returns (Ctrl-C)
  std::function<bool()> stop_requested;
  /// Several processes (Distributed::from_environment): each trains on its shard of every global
  /// batch (config.batch_size) and the gradients are averaged, so the run follows the one-process
  /// run; rank 0 writes the checkpoints, the metrics and the progress. Null: one process.
  std::shared_ptr<Distributed> distributed;
  /// Where the model trains (lipkit::parse_device): batches are copied there, checkpoints read onto it.
  /// Distributed runs: the group's device (Distributed::device()). Tabular training is CPU-only.
  torch::Device device = torch::kCPU;
  /// The training precision: float32, or float64 for reference runs (the tests compare 1 and N
  /// processes in float64); recorded in the checkpoint ("dtype"), which loads in it.
  torch::Dtype dtype = torch::kFloat;
};

struct TrainSummary {
  int64_t epochs_done = 0;
  bool interrupted = false;
  double clean_accuracy = 0;  // tabular classification: test accuracy
  std::vector<double> certified_accuracy;  // at config.radii
  double seconds = 0;
  double test_mse = 0;  // tabular (regression) runs: in the target's units
  double epsilon = 0;   // private runs: the epsilon spent (at dp.delta)
  bool budget_spent = false;  // private runs: stopped because one more step would exceed dp.epsilon
};

/// Trains as configured. throws: c10::Error for bad data/config, and for a NaN or infinite loss
/// (the last good checkpoint stays in place; the message says where).
/// A config with table.path set trains the monotonic family on the table (train_tabular).
TrainSummary train(const TrainConfig& config, const TrainOptions& options);

/// Tabular training: the table split (or its test file), standardised on the training rows; table.task
/// regression fits the standardised target by MSE (metrics: test_mse in the target's units), binary
/// one logit by BCE, multiclass one logit per class by cross-entropy (metrics: test_loss,
/// test_accuracy; summary.clean_accuracy); the checkpoint's metadata holds what TabularModel reads
/// ("table"). No resume (a run takes seconds: it is refused by name).
TrainSummary train_tabular(const TrainConfig& config, const TrainOptions& options);

}  // namespace lipkit::train
