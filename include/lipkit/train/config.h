#pragma once
// Training configuration: a typed struct, read from strict JSON (configs/*.json).

#include <nlohmann/json.hpp>

#include <string>
#include <vector>

#include "lipkit/data/transforms.h"
#include "lipkit/layers/lipschitz_layer.h"
#include "lipkit/models/presets.h"
#include "lipkit/train/losses.h"
#include "lipkit/train/schedule.h"

namespace lipkit::train {

struct OptimizerSpec {
  std::string name = "adam";  // adam | sgd
  double lr = 0.01;
  double beta1 = 0.5, beta2 = 0.9;  // SLL's Adam betas
  double weight_decay = 0.0;
  double momentum = 0.9;  // sgd (Nesterov)
  double spline_lr = 0;   // > 0: the learning rate of spline coefficients and scales (0: lr)
};

/// A table to train on (monotonic family): a CSV or JSON-records file (or "autompg": npm
/// vega-datasets' cars.json), the target column, the feature columns (empty: all others), the
/// missing-value policy, and the test split: a second file, or a seeded fraction.
struct TableSpec {
  std::string path;
  std::string target;
  std::vector<std::string> features;
  std::string missing = "error";  // error | drop
  std::string test_path;          // "": split test_fraction off `path`
  double test_fraction = 0.2;
  /// regression (MSE on the standardised target), binary (one logit, BCE; the target has 2 classes,
  /// the second in sorted order positive) or multiclass (one logit per class, cross-entropy)
  std::string task = "regression";
};

/// Private training without clipping (Bethune et al. 2024): present when the config has a `dp` section.
struct DpSpec {
  bool enabled = false;
  double epsilon = 0;           // the budget; > 0 required unless noise_multiplier is given
  double delta = 1e-5;
  double sampling_rate = 0;     // Poisson rate q; 0: batch_size / training examples
  double noise_multiplier = -1; // sigma; < 0: calibrated so that the configured epochs spend epsilon
  double input_norm = 0;        // > 0: the model's DpBoundedInput norm (model.input_norm otherwise)
  std::string mode = "global";  // global | per_layer (dp/mechanism.h)
};

struct RegularizationSpec {
  double tv2 = 0;  // weight of the splines' TV(2) (spline_tv2) added to the loss
};

struct TrainConfig {
  std::string preset;  // the model preset the model spec started from ("" if none)
  models::ModelSpec model;
  std::string data = "fashion-mnist";
  int64_t epochs = 5;
  int64_t batch_size = 256;
  int64_t subset = 0;  // > 0: only the first N training and N test images
  OptimizerSpec optimizer;
  ScheduleSpec schedule;
  LossSpec loss;
  RegularizationSpec regularization;
  TableSpec table;  // path set: tabular training (monotonic family)
  DpSpec dp;        // enabled: differentially private training (dp family)
  DistanceScheduleSpec distance;  // p and eps schedules of l_inf-distance nets
  data::Augment augment;
  Norm norm = Norm::L2;  // the norm of the per-epoch certificate ("l2" | "linf" in JSON)
  std::vector<double> radii = {36.0 / 255, 72.0 / 255, 108.0 / 255, 1.0};
  uint64_t seed = 0;
};

/// Reads a config file. Every unknown key (at any level) is an error; all of them are reported in
/// one message naming the file, e.g. "configs/x.json: unknown keys: epohcs, model.widht".
/// throws: c10::Error (bad JSON, unknown keys, wrong types, bad values).
TrainConfig load_config(const std::string& path);

/// Same from parsed JSON; `source` names it in errors.
TrainConfig config_from_json(const nlohmann::json& j, const std::string& source);
nlohmann::json to_json(const TrainConfig& c);

/// The config as saved (to_json), keeping only what applies to its model and loss: the distance
/// section for l_inf-distance nets, the loss fields of the chosen loss, model fields of the family.
nlohmann::json applicable_config(const nlohmann::json& config);

}  // namespace lipkit::train
