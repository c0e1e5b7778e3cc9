#include <gtest/gtest.h>
#include <torch/torch.h>

#include "lipkit/runtime.h"

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  // ctest runs tests in parallel processes: one thread each keeps the machine from oversubscribing.
  lipkit::configure_threads(1);
  torch::manual_seed(0);
  return RUN_ALL_TESTS();
}
