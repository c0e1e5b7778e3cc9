#pragma once
// IDX files (MNIST, Fashion-MNIST), gzip-compressed or raw.

#include <torch/types.h>

#include <string>

#include "lipkit/data/dataset.h"

namespace lipkit::data {

/// Reads one IDX file (magic 0x0000 08 0D: unsigned byte data, D dimensions) as a uint8 tensor of
/// the header's shape. Gzip or raw (detected). throws: c10::Error with the path and what is wrong
/// (bad magic, unsupported type, truncated data at byte N of M, trailing bytes).
torch::Tensor read_idx(const std::string& path);

/// Reads an images file (N, H, W) and a labels file (N) into a Dataset with 1 channel; checks that
/// the counts agree and that labels are < num_classes.
Dataset read_idx_dataset(const std::string& images_path, const std::string& labels_path,
                         int64_t num_classes, const std::string& name);

/// Writes an uint8 tensor as an IDX file, gzip-compressed when the path ends in .gz (tests, tools).
void write_idx(const std::string& path, const torch::Tensor& data);

}  // namespace lipkit::data
