// Builds a small SLL network from the installed headers and library and checks its proven bound.
#include <lipkit/lipkit.h>
#include <torch/torch.h>

#include <cstdio>

int main() {
  lipkit::configure_threads(1);
  torch::manual_seed(0);
  torch::nn::Sequential net(lipkit::PadChannels(1, 4), lipkit::SllConv2d(4, 4), lipkit::SumPool2d(2),
                            torch::nn::Flatten(), lipkit::SllLinear(lipkit::SllLinearOptions(64).hidden(32)),
                            lipkit::FirstChannels(3));
  auto y = net->forward(torch::rand({2, 1, 8, 8}));
  net->eval();
  const double bound = lipkit::lipschitz::model_bound(*net, lipkit::Norm::L2);
  std::printf("consumer: output %ld x %ld, proven l2 bound %.6f\n", (long)y.size(0), (long)y.size(1), bound);
  return y.size(1) == 3 && bound <= 1.0 + 1e-6 ? 0 : 1;
}
