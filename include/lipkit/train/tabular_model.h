#pragma once
// A model trained on a table (the monotonic family), as its checkpoint keeps it: the network (which
// standardises raw features itself), the column schema and category lists, the task and its classes,
// the target's scale, the training rows' range and the monotone constraints. Used by `lipkit
// predict`, `lipkit check-monotonic` and `lipkit info`.

#include <torch/nn/modules/container/sequential.h>

#include <nlohmann/json.hpp>

#include <string>
#include <vector>

#include "lipkit/data/tabular.h"

namespace lipkit::train {

struct TabularModel {
  torch::nn::Sequential model;  // raw encoded features -> outputs (eval mode)
  nlohmann::json meta;          // the checkpoint's metadata
  std::vector<data::TabularColumn> columns;
  std::vector<std::string> feature_names;  // encoded
  std::string target, task;                // task: regression | binary | multiclass
  std::vector<std::string> classes;        // binary / multiclass labels
  double target_mean = 0, target_std = 1;  // regression: the model predicts (y - mean) / std
  torch::Tensor range_min, range_max;      // (features) float64: the training rows' raw range
  torch::Tensor constraints;               // (outputs, features) float64 in {-1, 0, 1}
  double lambda = 1;                       // the monotonic residual's lambda
};

/// The "table" metadata a tabular checkpoint carries (see TabularModel).
nlohmann::json tabular_meta(const data::Table& all, const data::Table& train_rows, const std::string& task,
                            double target_mean, double target_std);

/// throws: c10::Error naming the file when it is not a checkpoint of a model trained on a table.
TabularModel load_tabular(const std::string& checkpoint);
/// The same from a model and metadata already read (`source` names them in errors).
TabularModel tabular_model(torch::nn::Sequential model, nlohmann::json meta, const std::string& source);

/// Reads rows by column name in any order (the checkpoint's encoding; the target column may be
/// absent). throws: c10::Error naming file, line and column; a missing value is always an error.
data::Table read_rows(const TabularModel& m, const std::string& path);

/// Predictions for encoded raw rows x (N, features): regression: (N) in the target's units; binary:
/// (N) probability of classes[1]; multiclass: (N, classes) probabilities.
torch::Tensor predict(const TabularModel& m, const torch::Tensor& x);

/// Writes `out` (CSV, atomically): one line per row of `in`, in order: the predicted target, and for
/// classification the probability of each class (columns "p(<label>)").
void write_predictions(const TabularModel& m, const std::string& in, const std::string& out);

/// Whether the monotone guarantee holds with the current weights (MonotonicResidual::monotone_proven).
bool monotone_proven(const TabularModel& m);

/// The bound on every partial derivative of output k w.r.t. raw feature i: |d f_k / d x_i| <=
/// pair_bound / std_i, in the output's units (target units for regression, logits otherwise) per raw
/// unit; (outputs, features) float64.
torch::Tensor raw_partial_bounds(const TabularModel& m);

}  // namespace lipkit::train
