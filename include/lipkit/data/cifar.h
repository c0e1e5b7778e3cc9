#pragma once
// CIFAR-10 / CIFAR-100 binary batches (the official "binary version" layout).

#include <string>
#include <vector>

#include "lipkit/data/dataset.h"

namespace lipkit::data {

/// CIFAR-10: records of 1 label byte + 3072 pixel bytes (R, G, B planes of 32x32).
/// CIFAR-100: 1 coarse + 1 fine label byte + 3072 pixel bytes; the fine label (100 classes) is used.
/// throws: c10::Error naming the file when its size is not a multiple of the record size, it is
/// empty, or a label is out of range.
Dataset read_cifar(const std::vector<std::string>& files, bool cifar100, const std::string& name);

}  // namespace lipkit::data
