#include "lipkit/data/dataset.h"

#include <torch/torch.h>

#include <sys/stat.h>

#include "lipkit/data/cifar.h"
#include "lipkit/data/csv.h"
#include "lipkit/data/idx.h"

namespace lipkit::data {

namespace {

bool exists(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0;
}
bool is_dir(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}
// path or path.gz, whichever exists ("" if neither).
std::string find_file(const std::string& folder, const std::string& base) {
  for (const auto& cand : {folder + "/" + base, folder + "/" + base + ".gz"})
    if (exists(cand)) return cand;
  return "";
}

std::string canonical(std::string name) {
  for (auto& c : name) c = static_cast<char>(std::tolower(c));
  if (name == "fmnist" || name == "fashion_mnist" || name == "fashionmnist") return "fashion-mnist";
  if (name == "cifar-10") return "cifar10";
  if (name == "cifar-100") return "cifar100";
  return name;
}

bool is_known(const std::string& name) {
  return name == "fashion-mnist" || name == "mnist" || name == "cifar10" || name == "cifar100";
}

// CSV tables as shared for MNIST-style data sets: <name>_train.csv / <name>_test.csv.
std::string csv_file(const std::string& folder, const std::string& name, bool train) {
  const std::string path = folder + "/" + name + (train ? "_train.csv" : "_test.csv");
  return exists(path) ? path : "";
}

// Which data set a folder holds, from its files ("" when none).
std::string detect(const std::string& folder) {
  if (!csv_file(folder, "fashion-mnist", true).empty() || !csv_file(folder, "fashion-mnist", false).empty())
    return "fashion-mnist";
  if (!csv_file(folder, "mnist", true).empty() || !csv_file(folder, "mnist", false).empty()) return "mnist";
  if (!find_file(folder, "train-images-idx3-ubyte").empty() ||
      !find_file(folder, "t10k-images-idx3-ubyte").empty())
    return folder.find("fashion") != std::string::npos ? "fashion-mnist" : "mnist";
  if (exists(folder + "/data_batch_1.bin") || exists(folder + "/test_batch.bin")) return "cifar10";
  if (exists(folder + "/train.bin") || exists(folder + "/test.bin")) return "cifar100";
  return "";
}

}  // namespace

Dataset Dataset::head(int64_t n) const {
  if (n <= 0 || n >= size()) return *this;
  Dataset d = *this;
  d.images = images.narrow(0, 0, n);
  d.labels = labels.narrow(0, 0, n);
  return d;
}

Dataset Dataset::shard(int64_t k, int64_t n) const {
  TORCH_CHECK(n >= 1 && k >= 0 && k < n, "Dataset::shard: part ", k, " of ", n, " does not exist");
  const int64_t begin = k * size() / n, end = (k + 1) * size() / n;
  Dataset d = *this;
  d.images = images.narrow(0, begin, end - begin);
  d.labels = labels.narrow(0, begin, end - begin);
  return d;
}

std::vector<double> channel_mean(const Dataset& d) {
  auto m = d.images.to(torch::kDouble).mean({0, 2, 3}) / 255.0;
  return std::vector<double>(m.data_ptr<double>(), m.data_ptr<double>() + m.numel());
}

double pixel_std(const Dataset& d) { return (d.images.to(torch::kDouble) / 255.0).std().item<double>(); }

std::string default_folder(const std::string& name) {
  const auto n = canonical(name);
  if (n == "fashion-mnist") return "/usr/share/datasets/fashion-mnist";
  if (n == "mnist") return "/usr/share/datasets/mnist";
  return "";
}

std::string dataset_name(const std::string& spec) {
  const auto n = canonical(spec);
  if (is_known(n)) return n;
  if (is_dir(spec)) {
    const auto d = detect(spec);
    TORCH_CHECK(!d.empty(), "data folder ", spec,
                " holds no known data set (expected MNIST/Fashion-MNIST IDX files "
                "train-images-idx3-ubyte[.gz] ... or mnist_train.csv / fashion-mnist_train.csv ..., "
                "CIFAR-10 data_batch_1.bin ..., or CIFAR-100 train.bin/test.bin)");
    return d;
  }
  TORCH_CHECK(false, "unknown data set '", spec,
              "': use fashion-mnist, mnist, cifar10, cifar100, or a folder holding one of them");
}

Dataset load_dataset(const std::string& spec, Split split) {
  const std::string name = dataset_name(spec);
  std::string folder = is_dir(spec) ? spec : default_folder(name);
  TORCH_CHECK(!folder.empty() && is_dir(folder), "data set ", name, " not found",
              folder.empty() ? std::string(" (no default folder)") : " in " + folder,
              ": pass --data /path/to/its/folder",
              name == "fashion-mnist" ? " or install Debian's dataset-fashion-mnist" : "");
  const bool train = split == Split::Train;
  if (name == "fashion-mnist" || name == "mnist") {
    const auto csv = csv_file(folder, name, train);
    if (!csv.empty()) return read_csv_images(csv, 1, 28, 28, 10, name);
    const std::string prefix = train ? "train" : "t10k";
    auto images = find_file(folder, prefix + "-images-idx3-ubyte");
    auto labels = find_file(folder, prefix + "-labels-idx1-ubyte");
    TORCH_CHECK(!images.empty() && !labels.empty(), "data folder ", folder, " lacks ", prefix,
                "-images-idx3-ubyte[.gz] or ", prefix, "-labels-idx1-ubyte[.gz]");
    return read_idx_dataset(images, labels, 10, name);
  }
  std::vector<std::string> files;
  if (name == "cifar10") {
    if (train)
      for (int i = 1; i <= 5; ++i) files.push_back(folder + "/data_batch_" + std::to_string(i) + ".bin");
    else
      files.push_back(folder + "/test_batch.bin");
  } else {
    files.push_back(folder + (train ? "/train.bin" : "/test.bin"));
  }
  for (const auto& f : files) TORCH_CHECK(exists(f), "data folder ", folder, " lacks ", f);
  return read_cifar(files, name == "cifar100", name);
}

}  // namespace lipkit::data
