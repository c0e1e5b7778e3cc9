#pragma once
// Small learnable data sets written to disk in the official formats, so the data, training and CLI
// tests need no downloaded data.

#include <string>

namespace lipkit::testing {

/// Writes an MNIST-layout folder (train-/t10k- images and labels, gzip) of `size` x `size` images:
/// 10 classes, each a fixed random prototype plus noise. Returns the folder.
std::string write_synthetic_mnist(const std::string& folder, int64_t train_count, int64_t test_count,
                                  int64_t size = 8, uint64_t seed = 0);

/// A fresh empty folder under the test temp dir.
std::string fresh_dir(const std::string& name);

}  // namespace lipkit::testing
