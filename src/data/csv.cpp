#include "lipkit/data/csv.h"

#include <torch/torch.h>

#include <cerrno>
#include <cstdlib>
#include <fstream>

namespace lipkit::data {

namespace {
// Parses a whole-field integer; false if the field is not one.
bool parse_int(const std::string& field, long& out) {
  if (field.empty()) return false;
  char* end = nullptr;
  errno = 0;
  out = std::strtol(field.c_str(), &end, 10);
  while (end && (*end == ' ' || *end == '\r')) ++end;
  return errno == 0 && end != nullptr && *end == '\0';
}

}  // namespace

std::vector<std::string> split_commas(const std::string& text) {
  std::vector<std::string> out;
  size_t start = 0;
  for (size_t i = 0; i <= text.size(); ++i) {
    if (i == text.size() || text[i] == ',') {
      out.push_back(text.substr(start, i - start));
      start = i + 1;
    }
  }
  return out;
}

Dataset read_csv_images(const std::string& path, int64_t channels, int64_t height, int64_t width,
                        int64_t num_classes, const std::string& name) {
  std::ifstream in(path);
  TORCH_CHECK(in, "read_csv(", path, "): cannot open file");
  const int64_t pixels = channels * height * width;
  std::vector<uint8_t> data;
  std::vector<int64_t> labels;
  std::string line;
  int64_t line_no = 0;
  while (std::getline(in, line)) {
    ++line_no;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.empty()) continue;
    auto fields = split_commas(line);
    long label = 0;
    if (line_no == 1 && !parse_int(fields[0], label)) continue;  // header
    TORCH_CHECK(static_cast<int64_t>(fields.size()) == pixels + 1, "read_csv(", path, "): line ", line_no,
                " has ", fields.size(), " columns, expected ", pixels + 1, " (label + ", channels, "x",
                height, "x", width, " pixels)");
    TORCH_CHECK(parse_int(fields[0], label) && label >= 0 && label < num_classes, "read_csv(", path,
                "): line ", line_no, " column 1: label '", fields[0], "' is not an integer in [0, ",
                num_classes, ")");
    labels.push_back(label);
    for (int64_t c = 1; c <= pixels; ++c) {
      long v = 0;
      TORCH_CHECK(parse_int(fields[c], v) && v >= 0 && v <= 255, "read_csv(", path, "): line ", line_no,
                  " column ", c + 1, ": pixel '", fields[c], "' is not an integer in [0, 255]");
      data.push_back(static_cast<uint8_t>(v));
    }
  }
  TORCH_CHECK(!labels.empty(), "read_csv(", path, "): no data rows");
  Dataset d;
  d.name = name;
  const auto n = static_cast<int64_t>(labels.size());
  d.images = torch::from_blob(data.data(), {n, channels, height, width}, torch::kUInt8).clone();
  d.labels = torch::tensor(labels, torch::kLong);
  d.num_classes = num_classes;
  return d;
}

}  // namespace lipkit::data
