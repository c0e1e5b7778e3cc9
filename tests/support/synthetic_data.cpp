#include "synthetic_data.h"

#include <torch/torch.h>

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>

#include "lipkit/data/idx.h"

namespace lipkit::testing {

std::string fresh_dir(const std::string& name) {
  const std::string dir = ::testing::TempDir() + "lipkit_" + name + "_" + std::to_string(::getpid());
  std::system(("rm -rf '" + dir + "' && mkdir -p '" + dir + "'").c_str());
  return dir;
}

std::string write_synthetic_mnist(const std::string& folder, int64_t train_count, int64_t test_count,
                                  int64_t size, uint64_t seed) {
  auto gen = at::make_generator<at::CPUGeneratorImpl>(seed);
  auto prototypes = torch::rand({10, size, size}, gen) * 255.0;
  auto make = [&](int64_t n, const std::string& prefix) {
    auto labels = torch::randint(0, 10, {n}, gen, torch::kLong);
    auto noise = torch::randn({n, size, size}, gen) * 40.0;
    auto images = (prototypes.index_select(0, labels) + noise).clamp(0, 255).to(torch::kUInt8);
    data::write_idx(folder + "/" + prefix + "-images-idx3-ubyte.gz", images);
    data::write_idx(folder + "/" + prefix + "-labels-idx1-ubyte.gz", labels.to(torch::kUInt8));
  };
  make(train_count, "train");
  make(test_count, "t10k");
  return folder;
}

}  // namespace lipkit::testing
