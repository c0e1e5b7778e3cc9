#include "lipkit/data/cifar.h"

#include <torch/torch.h>

#include <fstream>

namespace lipkit::data {

Dataset read_cifar(const std::vector<std::string>& files, bool cifar100, const std::string& name) {
  const int64_t label_bytes = cifar100 ? 2 : 1, pixels = 3 * 32 * 32;
  const int64_t record = label_bytes + pixels;
  const int64_t num_classes = cifar100 ? 100 : 10;
  std::vector<torch::Tensor> images, labels;
  for (const auto& path : files) {
    std::ifstream in(path, std::ios::binary | std::ios::ate);
    TORCH_CHECK(in, "read_cifar(", path, "): cannot open file");
    const int64_t size = in.tellg();
    TORCH_CHECK(size > 0 && size % record == 0, "read_cifar(", path, "): size ", size,
                " bytes is not a positive multiple of the ", record, "-byte ",
                cifar100 ? "CIFAR-100" : "CIFAR-10", " record (truncated file, or the other CIFAR?)");
    in.seekg(0);
    auto raw = torch::empty({size / record, record}, torch::kUInt8);
    in.read(reinterpret_cast<char*>(raw.data_ptr<uint8_t>()), size);
    TORCH_CHECK(in.gcount() == size, "read_cifar(", path, "): read ", in.gcount(), " of ", size,
                " bytes");
    auto lab = raw.select(1, label_bytes - 1).to(torch::kLong);  // fine label for CIFAR-100
    const int64_t max_label = lab.max().item<int64_t>();
    TORCH_CHECK(max_label < num_classes, "read_cifar(", path, "): label ", max_label,
                " out of range for ", num_classes, " classes in record ", lab.argmax().item<int64_t>());
    images.push_back(raw.narrow(1, label_bytes, pixels).reshape({-1, 3, 32, 32}));
    labels.push_back(lab);
  }
  TORCH_CHECK(!files.empty(), "read_cifar: no files given");
  Dataset d;
  d.name = name;
  d.images = torch::cat(images).contiguous();
  d.labels = torch::cat(labels);
  d.num_classes = num_classes;
  return d;
}

}  // namespace lipkit::data
