#pragma once
// An in-memory image classification data set, and the registry that finds one by name or folder.

#include <torch/types.h>

#include <string>
#include <vector>

namespace lipkit::data {

/// Images as uint8 (N, C, H, W), labels as int64 (N) in [0, num_classes).
struct Dataset {
  std::string name;  // e.g. "fashion-mnist"
  torch::Tensor images;
  torch::Tensor labels;
  int64_t num_classes = 0;

  int64_t size() const { return labels.defined() ? labels.size(0) : 0; }
  int64_t channels() const { return images.size(1); }
  int64_t height() const { return images.size(2); }
  int64_t width() const { return images.size(3); }
  /// The first n examples (all when n <= 0 or n >= size()).
  Dataset head(int64_t n) const;
  /// The k-th of n contiguous, nearly equal parts (rows [k size / n, (k + 1) size / n)): one rank's share.
  Dataset shard(int64_t k, int64_t n) const;
};

/// Per-channel mean of the pixels scaled to [0, 1].
std::vector<double> channel_mean(const Dataset& d);
/// Standard deviation of all pixels in [0, 1] (one value for every channel: the l_inf ball stays a cube).
double pixel_std(const Dataset& d);

enum class Split { Train, Test };

/// Default folder of the known data sets: fashion-mnist -> /usr/share/datasets/fashion-mnist
/// (Debian's dataset-fashion-mnist). mnist, cifar10, cifar100 have no Debian package: pass a folder.
std::string default_folder(const std::string& name);

/// Loads `spec`, a data set name (fashion-mnist, mnist, cifar10, cifar100) or a folder holding
/// one of them (detected from its files). throws: c10::Error naming the folder and what is missing.
Dataset load_dataset(const std::string& spec, Split split);

/// The canonical name of `spec` (a name, or the name detected from a folder's files).
std::string dataset_name(const std::string& spec);

}  // namespace lipkit::data
