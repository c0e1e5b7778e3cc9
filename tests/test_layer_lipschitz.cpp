// Every module stays within its own stated bound in its norm, measured three ways, at init and far
// from init (the conformance check over the whole zoo).
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "lipkit/lipschitz/bounds.h"
#include "support/layer_zoo.h"
#include "support/lipschitz_check.h"

using lipkit::testing::LayerCase;

namespace {

constexpr double kTol = 1e-4;  // float64: the guarantees hold up to rounding

torch::Tensor flat_params(torch::nn::Module& m) {
  std::vector<torch::Tensor> ps;
  for (auto& p : m.parameters()) ps.push_back(p.detach().reshape({-1}).clone());
  return ps.empty() ? torch::zeros({0}, torch::kDouble) : torch::cat(ps);
}

// 50 Adam steps at lr 0.1 towards large random targets: weights end far from their init.
void train_far_from_init(torch::nn::Sequential& model, const LayerCase& c) {
  if (model->parameters().empty()) return;
  std::vector<int64_t> shape{16};
  shape.insert(shape.end(), c.sample_shape.begin(), c.sample_shape.end());
  auto x = torch::randn(shape, torch::kDouble);
  model->train();
  auto target = 3.0 * torch::randn_like(model->forward(x).detach());
  torch::optim::Adam opt(model->parameters(), torch::optim::AdamOptions(0.1));
  auto before = flat_params(*model);
  for (int step = 0; step < 50; ++step) {
    opt.zero_grad();
    auto loss = torch::mse_loss(model->forward(x), target);
    ASSERT_TRUE(std::isfinite(loss.item<double>())) << c << ": loss diverged at step " << step;
    loss.backward();
    opt.step();
  }
  auto after = flat_params(*model);
  // Not a vacuous test: the parameters moved by a sizeable fraction of their norm.
  EXPECT_GT((after - before).norm().item<double>(), 0.3 * before.norm().item<double>() + 1e-3) << c;
}

// Measured against the layer's own stated bound (lipschitz_bound), which is 1 for most layers.
void expect_within_bound(torch::nn::Sequential& model, const LayerCase& c) {
  model->eval();
  const double bound = lipkit::lipschitz::model_bound(*model, c.norm);
  ASSERT_TRUE(std::isfinite(bound)) << c;
  auto f = [&](const torch::Tensor& x) { return model->forward(x); };
  auto r = lipkit::testing::measure_lipschitz(f, c.sample_shape, torch::kDouble, c.norm);
  EXPECT_LE(r.jacobian, bound * (1.0 + kTol)) << c << ": exact Jacobian norm";
  EXPECT_LE(r.pairs, bound * (1.0 + kTol)) << c << ": random pairs";
  EXPECT_LE(r.ascent, bound * (1.0 + kTol)) << c << ": gradient ascent";
  // Sanity of the measurement itself: every layer here reaches a constant near its bound somewhere.
  EXPECT_GT(r.max(), 0.5 * bound) << c;

  // The guarantees hold for every bias. Shifting the biases far up makes every ReLU active, the
  // worst case of the residual layers (Jacobian I - h W^T W), which random inputs rarely reach.
  bool shifted = false;
  {
    torch::NoGradGuard no_grad;
    for (auto& p : model->named_parameters()) {
      if (p.key().size() >= 4 && p.key().substr(p.key().size() - 4) == "bias") {
        p.value().add_(100.0);
        shifted = true;
      }
    }
  }
  if (shifted) {
    for (int i = 0; i < 2; ++i) {
      auto x = torch::randn(c.sample_shape, torch::kDouble);
      EXPECT_LE(lipkit::testing::jacobian_norm(f, x, c.norm), bound * (1.0 + kTol)) << c << ": all units active";
    }
  }
}

class LayerLipschitz : public ::testing::TestWithParam<LayerCase> {};

TEST_P(LayerLipschitz, AtInit) {
  torch::manual_seed(1);
  auto model = GetParam().make();
  model->to(torch::kDouble);
  expect_within_bound(model, GetParam());
}

TEST_P(LayerLipschitz, AfterFiftyLargeSteps) {
  torch::manual_seed(2);
  auto model = GetParam().make();
  model->to(torch::kDouble);
  train_far_from_init(model, GetParam());
  expect_within_bound(model, GetParam());
}

INSTANTIATE_TEST_SUITE_P(AllLayers, LayerLipschitz,
                         ::testing::ValuesIn(lipkit::testing::layer_cases()),
                         [](const ::testing::TestParamInfo<LayerCase>& info) {
                           return info.param.name + "_" + lipkit::to_string(info.param.norm);
                         });

}  // namespace
