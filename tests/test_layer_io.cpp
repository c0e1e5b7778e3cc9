// Module plumbing: save/load, clone, dtypes, devices, no-grad, Sequential, printing, input errors.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cstdio>
#include <set>
#include <sstream>

#include "lipkit/lipkit.h"
#include "support/expect_error.h"
#include "support/layer_zoo.h"

using namespace lipkit;
using lipkit::testing::LayerCase;

namespace {

std::vector<int64_t> batch_shape(int64_t b, const std::vector<int64_t>& s) {
  std::vector<int64_t> out{b};
  out.insert(out.end(), s.begin(), s.end());
  return out;
}

// Each module of the zoo once (the zoo lists some in two norms under one name).
std::vector<LayerCase> unique_cases() {
  std::vector<LayerCase> out;
  std::set<std::string> seen;
  for (auto& c : lipkit::testing::layer_cases())
    if (seen.insert(c.name).second) out.push_back(c);
  return out;
}

std::string printed(const torch::nn::Module& m) {
  std::ostringstream s;
  m.pretty_print(s);
  return s.str();
}

// sum(f(x) * r) and its directional derivative along v by central differences.
double directional_fd(const std::function<torch::Tensor()>& loss, torch::Tensor& t, const torch::Tensor& v, double h) {
  torch::NoGradGuard ng;
  t.add_(v, h);
  const double up = loss().item<double>();
  t.add_(v, -2 * h);
  const double down = loss().item<double>();
  t.add_(v, h);
  return (up - down) / (2 * h);
}

class LayerIo : public ::testing::TestWithParam<LayerCase> {};

// A few training steps (so power-iteration buffers move), then save/load into a differently
// initialized copy: every parameter, buffer and output must be bit-identical.
TEST_P(LayerIo, SaveLoadRoundTripIsBitIdentical) {
  const auto& c = GetParam();
  torch::manual_seed(30);
  auto model = c.make();
  auto x = torch::randn(batch_shape(4, c.sample_shape));
  if (!model->parameters().empty()) {
    torch::optim::SGD opt(model->parameters(), 0.05);
    for (int i = 0; i < 3; ++i) {
      opt.zero_grad();
      model->forward(x).pow(2).sum().backward();
      opt.step();
    }
  }
  const std::string path = ::testing::TempDir() + "lipkit_io_" + c.name + ".pt";
  torch::save(model, path);
  torch::manual_seed(31);
  auto loaded = c.make();
  torch::load(loaded, path);
  std::remove(path.c_str());

  auto a = model->named_parameters(), b = loaded->named_parameters();
  for (const auto& p : a) EXPECT_TRUE(torch::equal(p.value(), b[p.key()])) << p.key();
  auto ab = model->named_buffers(), bb = loaded->named_buffers();
  for (const auto& p : ab) EXPECT_TRUE(torch::equal(p.value(), bb[p.key()])) << p.key();

  model->eval();
  loaded->eval();
  torch::NoGradGuard no_grad;
  EXPECT_TRUE(torch::equal(model->forward(x), loaded->forward(x)));
  model->train();
  loaded->train();
  EXPECT_TRUE(torch::equal(model->forward(x), loaded->forward(x)));
}

TEST_P(LayerIo, CloneKeepsOutputs) {
  const auto& c = GetParam();
  torch::manual_seed(32);
  auto model = c.make();
  model->eval();
  auto copy = std::dynamic_pointer_cast<torch::nn::SequentialImpl>(model->clone());
  ASSERT_TRUE(copy);
  copy->eval();
  auto x = torch::randn(batch_shape(3, c.sample_shape));
  torch::NoGradGuard no_grad;
  EXPECT_TRUE(torch::equal(model->forward(x), copy->forward(x)));
}

// The clone is deep: casting it leaves every parameter and buffer of the original as it was.
TEST_P(LayerIo, CloneCastToFloat64LeavesTheOriginalUntouched) {
  const auto& c = GetParam();
  torch::manual_seed(35);
  auto model = c.make();
  std::vector<torch::Tensor> before;
  for (auto& t : model->parameters()) before.push_back(t.detach().clone());
  for (auto& t : model->buffers()) before.push_back(t.clone());
  auto copy = std::dynamic_pointer_cast<torch::nn::SequentialImpl>(model->clone());
  copy->to(torch::kDouble);
  size_t i = 0;
  for (auto& t : model->parameters()) EXPECT_TRUE(torch::equal(t, before[i++])) << c.name << " parameter";
  for (auto& t : model->buffers()) EXPECT_TRUE(torch::equal(t, before[i++])) << c.name << " buffer";
}

TEST_P(LayerIo, PrettyPrintNamesTheLayerAndItsOptions) {
  auto model = GetParam().make();
  const auto text = printed(*model->ptr(0));
  EXPECT_EQ(text.rfind("lipkit::", 0), 0u) << text;
  EXPECT_NE(text.find('('), std::string::npos) << text;
  if (text.find("()") == std::string::npos) EXPECT_NE(text.find('='), std::string::npos) << text << ": options by name";
}

// Autograd against central differences: the input gradient in eval mode, the parameter gradients in
// train mode (for layers whose training forward is deterministic).
TEST_P(LayerIo, GradientsMatchFiniteDifferences) {
  const auto& c = GetParam();
  torch::manual_seed(36);
  auto model = c.make();
  model->to(torch::kDouble);
  {
    // away from the kinks of the structured inits (|.| of exact zeros in AOL's Gram at an orthogonal init)
    torch::NoGradGuard ng;
    for (auto& p : model->parameters()) p.add_(0.05 * torch::randn_like(p));
  }
  auto x = torch::randn(batch_shape(3, c.sample_shape), torch::kDouble);
  auto r = torch::randn_like(model->forward(x));
  for (bool training : {false, true}) {
    model->train(training);
    auto loss = [&] { return (model->forward(x) * r).sum(); };
    torch::Tensor again;
    {
      torch::NoGradGuard ng;
      again = loss();
    }
    const bool deterministic = torch::equal(again, loss().detach());
    if (training && !deterministic) continue;  // random subsets or a power-iteration update per forward
    std::vector<torch::Tensor> targets{x};
    if (training)
      for (auto& p : model->parameters())
        if (p.requires_grad()) targets.push_back(p);  // fixed ones (a spline's unused scale) have no gradient
    x.requires_grad_(true);
    for (auto& t : targets) {
      auto grads = torch::autograd::grad({loss()}, {t}, {}, false, false, /*allow_unused=*/true);
      if (!grads[0].defined()) continue;
      auto v = torch::randn_like(t);
      const double fd = directional_fd(loss, t, v, 1e-6);
      const double ad = (grads[0] * v).sum().item<double>();
      EXPECT_NEAR(ad, fd, 1e-4 * (1 + std::abs(fd))) << c.name << (training ? " train" : " eval");
    }
    x.requires_grad_(false);
  }
}

TEST_P(LayerIo, Float32AgreesWithFloat64AndNoGradWorks) {
  const auto& c = GetParam();
  torch::manual_seed(33);
  auto model = c.make();
  auto x = torch::randn(batch_shape(3, c.sample_shape), torch::kDouble);
  model->eval();
  torch::NoGradGuard no_grad;
  auto y32 = model->forward(x.to(torch::kFloat));
  EXPECT_EQ(y32.scalar_type(), torch::kFloat);
  model->to(torch::kDouble);
  auto y64 = model->forward(x);
  EXPECT_EQ(y64.scalar_type(), torch::kDouble);
  EXPECT_LE((y32.to(torch::kDouble) - y64).abs().max().item<double>(), 1e-4);
  model->train();  // the training path (power iteration) also runs without autograd
  EXPECT_TRUE(torch::isfinite(model->forward(x)).all().item<bool>());
}

TEST_P(LayerIo, FollowsTheModulesDevice) {
  const auto& c = GetParam();
  std::vector<torch::Device> devices{torch::kCPU};
  if (torch::cuda::is_available()) devices.emplace_back(torch::kCUDA);
  for (const auto& device : devices) {
    torch::manual_seed(34);
    auto model = c.make();
    model->to(device);
    auto x = torch::randn(batch_shape(2, c.sample_shape), torch::TensorOptions().device(device));
    for (bool training : {true, false}) {
      model->train(training);
      auto y = model->forward(x);
      EXPECT_EQ(y.device(), device);
      EXPECT_TRUE(torch::isfinite(y).all().item<bool>());
    }
    for (const auto& b : model->buffers()) EXPECT_EQ(b.device(), device);
  }
}

INSTANTIATE_TEST_SUITE_P(AllLayers, LayerIo, ::testing::ValuesIn(unique_cases()),
                         [](const ::testing::TestParamInfo<LayerCase>& info) { return info.param.name; });

// --------------------------------------------------------------------------------- input errors

using lipkit::testing::expect_error;

TEST(LayerErrors, WrongRankChannelsOrDtypeNameTheLayerAndExpectedShape) {
  auto img = [](int64_t c) { return torch::randn({2, c, 6, 6}); };
  CplConv2d cpl(4, 5);
  expect_error([&] { cpl->forward(img(3)); }, {"CplConv2d", "(N, channels, H, W)", "[2, 3, 6, 6]"});
  expect_error([&] { cpl->forward(torch::randn({4, 6, 6})); }, {"CplConv2d", "expected input of shape"});
  expect_error([&] { cpl->forward(img(4).to(torch::kDouble)); }, {"CplConv2d", "dtype", "Double"});
  SllConv2d sll(4);
  expect_error([&] { sll->forward(img(5)); }, {"SllConv2d", "(N, channels, H, W)"});
  AolConv2d aol(4, 4);
  expect_error([&] { aol->forward(img(2)); }, {"AolConv2d", "(N, in_channels, H, W)"});
  SpectralConv2d spec(4, 4);
  expect_error([&] { spec->forward(img(2)); }, {"SpectralConv2d", "(N, in_channels, H, W)"});
  CplLinear cl(8);
  expect_error([&] { cl->forward(torch::randn({2, 7})); }, {"CplLinear", "(N, features)", "[2, 7]"});
  SllLinear sl(8);
  expect_error([&] { sl->forward(torch::randn({2, 8, 1})); }, {"SllLinear", "(N, features)"});
  AolLinear al(8, 3);
  expect_error([&] { al->forward(torch::randn({2, 8}, torch::kDouble)); }, {"AolLinear", "dtype"});
  SpectralLinear spl(8, 3);
  expect_error([&] { spl->forward(torch::randn({2, 9})); }, {"SpectralLinear", "(N, in_features)"});
  OrthogonalLinear ol(8, 3);
  expect_error([&] { ol->forward(torch::randn({2, 9})); }, {"OrthogonalLinear", "(N, in_features)"});
  NormalizedLinear nl(8, 3);
  expect_error([&] { nl->forward(torch::randn({2, 9})); }, {"NormalizedLinear", "(N, in_features)"});
  expect_error([&] { MaxMin()->forward(torch::randn({2, 5})); }, {"MaxMin", "divisible by group_size 2"});
  expect_error([&] { SumPool2d(4)->forward(img(3)); }, {"SumPool2d", "multiples of kernel_size 4"});
  expect_error([&] { PadChannels(3, 8)->forward(img(4)); }, {"PadChannels", "(N, in_channels, ...)"});
  expect_error([&] { FirstChannels(10)->forward(torch::randn({2, 5})); }, {"FirstChannels", "C >= 10"});
  expect_error([&] { CplConv2d(CplConv2dOptions(4).kernel_size(4)); }, {"CplConv2d", "kernel_size must be odd"});
}

// ----------------------------------------------------------------------------------- printing

TEST(LayerPrint, PrettyPrintShowsTheOptions) {
  EXPECT_EQ(printed(*CplLinear(64, 128)), "lipkit::CplLinear(features=64, hidden=128)");
  EXPECT_EQ(printed(*CplConv2d(30, 5)), "lipkit::CplConv2d(channels=30, hidden=5, kernel_size=3)");
  EXPECT_EQ(printed(*SllLinear(32)), "lipkit::SllLinear(features=32, hidden=32)");
  EXPECT_EQ(printed(*SllConv2d(SllConv2dOptions(45, 5).cancel_q(true))),
            "lipkit::SllConv2d(channels=45, hidden=5, kernel_size=3, cancel_q=true)");
  EXPECT_EQ(printed(*AolConv2d(3, 8)),
            "lipkit::AolConv2d(in_channels=3, out_channels=8, kernel_size=3, bias=true)");
  EXPECT_EQ(printed(*SpectralLinear(4, 2)), "lipkit::SpectralLinear(in_features=4, out_features=2, bias=true)");
  EXPECT_EQ(printed(*GroupSort(4)), "lipkit::GroupSort(group_size=4)");
  EXPECT_EQ(printed(*SumPool2d(4)), "lipkit::SumPool2d(kernel_size=4)");
}

// The issue's example, at its own sizes: builds, runs, and the body's bound is 1.
TEST(Sequential, IssueExampleNetworkRuns) {
  auto net = torch::nn::Sequential(PadChannels(3, 32), SllConv2d(SllConv2dOptions(32).kernel_size(3)),
                                   SllConv2d(SllConv2dOptions(32).kernel_size(3)), SumPool2d(2),
                                   torch::nn::Flatten(), SllLinear(SllLinearOptions(32 * 16 * 16)),
                                   FirstChannels(10));
  auto y = net->forward(torch::rand({2, 3, 32, 32}));
  EXPECT_EQ(y.sizes(), torch::IntArrayRef({2, 10}));
  EXPECT_EQ(lipschitz::model_bound(*net, Norm::L2), 1.0);
}

}  // namespace
