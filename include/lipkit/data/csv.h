#pragma once
// CSV image tables: one image per row, "label,p0,p1,...,pK" with integer pixels in [0, 255]
// (the layout of the widely shared mnist_train.csv / fashion-mnist_train.csv files).

#include <string>

#include "lipkit/data/dataset.h"

namespace lipkit::data {

/// "a,b,,c" -> {"a", "b", "", "c"}: the fields of one CSV line, or the items of a comma-separated
/// list (empty items kept, so callers can reject them).
std::vector<std::string> split_commas(const std::string& text);

/// Reads `path` into a Dataset of (N, channels, height, width) images; a first line that is not
/// numeric is taken as a header. throws: c10::Error naming the file, the line and the column for
/// a wrong column count, a non-integer or out-of-range pixel, or a label >= num_classes.
Dataset read_csv_images(const std::string& path, int64_t channels, int64_t height, int64_t width,
                        int64_t num_classes, const std::string& name);

}  // namespace lipkit::data
