#pragma once
// Numeric tables for tabular models (monotonic networks): CSV with a header row (RFC 4180 quoting),
// or a JSON array of records (as npm's vega-datasets ships cars.json). Columns are named; the target
// is one column; features are named columns or every other one. A column whose first present value is
// not a number is categorical and one-hot encoded (its category list kept, so new files are encoded
// the same way); a numeric column must stay numeric. An ISO date (YYYY-MM-DD) is a number: the
// decimal year (year + (month - 1) / 12 + (day - 1) / 365.25). Every error names the file, line (or record) and
// column.

#include <torch/types.h>

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace lipkit::data {

struct TabularOptions {
  std::string target;                 // the target column's name (required)
  std::vector<std::string> features;  // feature columns by name; empty: every column but the target
  std::string missing = "error";      // error | drop: rows with an empty, NA, ? or null value in a used column
  /// classification: the target holds class labels (numbers or text); y is the class index into
  /// `classes`, which are given (a checkpoint's: an unseen label is an error) or, when empty, found in
  /// the file and sorted (numerically when every label is a number)
  bool class_target = false;
  std::vector<std::string> classes;
};

/// A feature column of the source and how it is encoded: numeric (no categories) or one-hot.
struct TabularColumn {
  std::string name;
  std::vector<std::string> categories;  // empty: numeric
};

struct Table {
  std::vector<TabularColumn> columns;      // source feature columns, in feature order
  std::vector<std::string> feature_names;  // encoded: a numeric column's name, or "name=category"
  std::string target;
  std::vector<std::string> classes;  // class_target: the labels, y indexes them
  torch::Tensor x;  // (rows, encoded features), float64
  torch::Tensor y;  // (rows), float64: the target, or the class index
};

/// Reads `path` (.json: records; anything else: CSV). With `schema` (the columns of an earlier read,
/// e.g. from a checkpoint), features are read by those names in that order and categories encoded
/// with those lists (an unseen category is an error); the file's own column order does not matter.
/// Without a target in the file and `require_target` false, y is empty (prediction input).
/// throws: c10::Error naming file, line and column.
Table read_table(const std::string& path, const TabularOptions& options, const std::vector<TabularColumn>* schema = nullptr,
                 bool require_target = true);

/// A seeded random split: (train, test) with round(test_fraction x rows) test rows.
std::pair<Table, Table> split_table(const Table& table, double test_fraction, uint64_t seed);

/// Per-feature mean and standard deviation (1 where a column is constant) of the training rows.
struct Standardization {
  torch::Tensor mean, std;  // (features), float64
};
Standardization fit_standardization(const torch::Tensor& x);

}  // namespace lipkit::data
