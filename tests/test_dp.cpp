// Private training without clipping (Bethune et al., ICLR 2024): the accountant against an independent
// numerical integration and published values; sensitivities against exact per-example gradients (and
// an understated bound caught); Poisson sampling; the noise really added; private runs end to end.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <fstream>
#include <set>

#include "lipkit/data/loader.h"
#include "lipkit/dp/accountant.h"
#include "lipkit/dp/mechanism.h"
#include "lipkit/dp/sensitivity.h"
#include "lipkit/lipkit.h"
#include "lipkit/models/presets.h"
#include "lipkit/train/checkpoint.h"
#include "lipkit/train/losses.h"
#include "lipkit/train/trainer.h"
#include "support/expect_error.h"
#include "support/synthetic_data.h"

namespace {

using namespace lipkit;

// log A_alpha = log E_{z ~ N(0, s^2)} [((1 - q) + q exp((2z - 1) / (2 s^2)))^alpha] by Simpson's rule on a
// fine grid, summed in log space: the definition of the subsampled Gaussian's Renyi divergence,
// computed without the series of the implementation.
double rdp_by_integration(double q, double s, double alpha) {
  const double lo = -40 * s, hi = 40 * s + alpha + 2;
  const int64_t n = 2000000;  // even
  const double h = (hi - lo) / n;
  std::vector<double> logs(n + 1);
  double top = -1e300;
  for (int64_t i = 0; i <= n; ++i) {
    const double z = lo + i * h;
    const double log_phi = -z * z / (2 * s * s) - std::log(s * std::sqrt(2 * M_PI));
    const double log_ratio = std::log1p(q * std::expm1((2 * z - 1) / (2 * s * s)));
    logs[i] = log_phi + alpha * log_ratio;
    top = std::max(top, logs[i]);
  }
  long double sum = 0;
  for (int64_t i = 0; i <= n; ++i) {
    const double w = (i == 0 || i == n) ? 1 : (i % 2 ? 4 : 2);
    sum += w * std::exp(logs[i] - top);
  }
  return (top + std::log(double(sum * h / 3))) / (alpha - 1);
}

TEST(Accountant, MatchesNumericalIntegrationAtIntegerAndFractionalOrders) {
  struct Case {
    double q, sigma, alpha;
  };
  for (auto c : {Case{0.01, 1.1, 2.5}, Case{0.05, 0.9, 7.75}, Case{0.2, 2.0, 16}, Case{0.004, 1.12, 32},
                 Case{0.5, 3.0, 1.5}, Case{0.01, 0.7, 3}}) {
    const double ours = dp::rdp_subsampled_gaussian(c.q, c.sigma, c.alpha);
    const double ref = rdp_by_integration(c.q, c.sigma, c.alpha);
    EXPECT_NEAR(ours, ref, 1e-6 * ref) << "q " << c.q << " sigma " << c.sigma << " alpha " << c.alpha;
  }
  // q = 1: the Gaussian mechanism alpha / (2 sigma^2); q = 0: nothing
  EXPECT_DOUBLE_EQ(dp::rdp_subsampled_gaussian(1.0, 2.0, 5), 5.0 / 8);
  EXPECT_EQ(dp::rdp_subsampled_gaussian(0.0, 2.0, 5), 0);
  lipkit::testing::expect_error([] { dp::rdp_subsampled_gaussian(1.5, 1, 2); }, {"q must be in [0, 1]", "1.5"});
  lipkit::testing::expect_error([] { dp::rdp_subsampled_gaussian(0.1, 1, 1); }, {"alpha must be > 1"});
}

// Opacus's first accountant script (pytorch/opacus, torchdp/compute_dp-sdg_privacy.py, commit c294d92):
// "--dataset-size=60000 --batch-size=256 --sigma=1.12 --epochs=60 --delta=1e-5 ... satisfies (2.92,
// 1e-5)-DP", with q = 256 / 60000, ceil(60 x 60000 / 256) steps, orders 1.25, 1.5, 1.75, 2, 2.25, 2.5, 3,
// 3.5, 4, 4.5, 5..63, 128, 256, 512, and the classic conversion eps = rdp - log(delta) / (alpha - 1).
TEST(Accountant, ReproducesPublishedValues) {
  const double q = 256.0 / 60000;
  std::vector<double> orders = {1.25, 1.5, 1.75, 2.0, 2.25, 2.5, 3.0, 3.5, 4.0, 4.5};
  for (int a = 5; a < 64; ++a) orders.push_back(a);
  for (double a : {128.0, 256.0, 512.0}) orders.push_back(a);
  dp::RdpAccountant opacus(orders);
  opacus.step(q, 1.12, static_cast<int64_t>(std::ceil(60 * 60000 / 256.0)));
  EXPECT_NEAR(opacus.epsilon(1e-5, dp::Conversion::Classic).epsilon, 2.92, 0.005);
  // Dong, Roth, Su, "Gaussian differential privacy" (JRSS-B 2022; Harvard Data Science Review figure 4):
  // MNIST DP-SGD with p = 256/60000, sigma = 0.7, 70 epochs: the moments accountant gives (8.68, 1e-5).
  dp::RdpAccountant moments;
  moments.step(q, 0.7, static_cast<int64_t>(std::llround(70 / q)));
  const double eps = moments.epsilon(1e-5, dp::Conversion::Classic).epsilon;
  EXPECT_NEAR(eps, 8.68, 0.1) << "classic conversion over lipkit's orders";
  EXPECT_LT(moments.epsilon(1e-5).epsilon, eps) << "the improved conversion is tighter";
}

TEST(Accountant, MonotoneInStepsRateAndNoiseAndCalibrationInvertsIt) {
  auto eps = [](double q, double sigma, int64_t steps) {
    dp::RdpAccountant a;
    a.step(q, sigma, steps);
    return a.epsilon(1e-5).epsilon;
  };
  EXPECT_LT(eps(0.01, 1.0, 100), eps(0.01, 1.0, 1000));
  EXPECT_LT(eps(0.01, 1.0, 1000), eps(0.02, 1.0, 1000));
  EXPECT_GT(eps(0.01, 1.0, 1000), eps(0.01, 1.5, 1000));
  const double sigma = dp::calibrate_sigma(0.017, 590, 3.0, 1e-5);
  EXPECT_LE(eps(0.017, sigma, 590), 3.0);
  EXPECT_GT(eps(0.017, sigma * (1 - 1e-4), 590), 3.0 * (1 - 1e-3)) << "the smallest sigma, not just any";
  const int64_t t = dp::max_steps(0.017, sigma, 3.0, 1e-5);
  EXPECT_GE(t, 590);
  EXPECT_GT(eps(0.017, sigma, t + 1), 3.0);
  auto json = [] {
    dp::RdpAccountant a;
    a.step(0.01, 1.0, 17);
    return a.to_json();
  }();
  EXPECT_EQ(dp::RdpAccountant::from_json(json).steps(), 17);
  EXPECT_DOUBLE_EQ(dp::RdpAccountant::from_json(json).epsilon(1e-5).epsilon, eps(0.01, 1.0, 17));
}

// Per-example gradient norms of every parametrised layer, by one backward pass per example.
std::vector<std::vector<double>> per_example_norms(torch::nn::Sequential& net, const std::vector<dp::LayerSensitivity>& layers,
                                                   const torch::Tensor& x, const torch::Tensor& y,
                                                   const std::string& loss) {
  std::vector<std::vector<double>> out(layers.size());
  train::LossSpec spec;
  spec.name = loss;
  for (int64_t i = 0; i < x.size(0); ++i) {
    net->zero_grad();
    train::compute_loss(spec, net->forward(x.narrow(0, i, 1)), y.narrow(0, i, 1)).backward();
    for (size_t l = 0; l < layers.size(); ++l) {
      double sq = 0;
      for (const auto& p : layers[l].parameters) sq += p.grad().to(torch::kDouble).pow(2).sum().item<double>();
      out[l].push_back(std::sqrt(sq));
    }
  }
  return out;
}

torch::nn::Sequential small_dp_net(bool trained_bias) {
  models::ModelSpec s = models::model_preset("dp-fmnist");
  s.in_channels = 1;
  s.image_size = 6;
  s.width = 16;
  s.input_norm = 3.0;
  s.num_classes = 5;
  auto net = models::build_model(s);
  if (trained_bias) {
    torch::NoGradGuard ng;
    for (auto& p : net->named_parameters())
      if (p.key().find("bias") != std::string::npos) p.value().normal_(0, 0.5);
      else p.value().add_(torch::randn_like(p.value()) * 0.3);
    dp::project(*net);
  }
  return net;
}

TEST(Sensitivity, EveryPerExampleGradientIsWithinItsLayersBound) {
  torch::manual_seed(7);
  for (const std::string loss : {"ce", "offset_ce", "multi_margin"}) {
    for (bool trained : {false, true}) {
      auto net = small_dp_net(trained);
      net->to(torch::kDouble);
      const auto layers = dp::sensitivities(net, dp::loss_lipschitz(loss, 5));
      ASSERT_EQ(layers.size(), 3u);
      // inputs of norm up to 3x the clip, a large logit scale so the loss gradients are near their bound
      auto x = torch::randn({64, 1, 6, 6}, torch::kDouble) * torch::rand({64, 1, 1, 1}, torch::kDouble) * 3;
      auto y = torch::randint(0, 5, {64}, torch::kLong);
      const auto norms = per_example_norms(net, layers, x, y, loss);
      for (size_t l = 0; l < layers.size(); ++l) {
        const double worst = *std::max_element(norms[l].begin(), norms[l].end());
        EXPECT_LE(worst, layers[l].bound) << loss << " " << layers[l].layer << (trained ? " trained" : " init");
        EXPECT_GT(worst, 0) << layers[l].layer;
      }
    }
  }
}

// One DpLinear with cross-entropy, on inputs chosen to make the bound nearly tight: x along a weight
// row (norm X), so that logit dominates, and a label elsewhere; ||p - e_y|| -> sqrt(2). The measured
// maximum must exceed 0.9 x the bound, so a bound understated by 10% is caught.
TEST(Sensitivity, AnUnderstatedBoundIsCaught) {
  torch::manual_seed(8);
  const double X = 40;
  torch::nn::Sequential net(DpBoundedInput(X), DpLinear(8, 4));
  net->to(torch::kDouble);
  auto layers = dp::sensitivities(net, dp::loss_lipschitz("ce", 4));
  auto w = net->ptr(1)->as<DpLinearImpl>()->weight.detach();
  auto x = torch::stack({w[0], w[1], w[2], w[3]}) / torch::stack({w[0], w[1], w[2], w[3]}).norm(2, 1, true) * X;
  auto y = torch::tensor({1, 2, 3, 0}, torch::kLong);
  const auto norms = per_example_norms(net, layers, x, y, "ce");
  const double worst = *std::max_element(norms[0].begin(), norms[0].end());
  EXPECT_LE(worst, layers[0].bound);
  EXPECT_GT(worst, 0.9 * layers[0].bound) << "a 10% understated bound (" << 0.9 * layers[0].bound
                                          << ") would be exceeded by " << worst;
}

TEST(Sensitivity, UnboundedLayersLossesAndOrderAreRefusedByName) {
  using lipkit::testing::expect_error;
  torch::nn::Sequential conv(DpBoundedInput(1.0), torch::nn::Conv2d(1, 2, 3));
  expect_error([&] { dp::sensitivities(conv, 1.0); }, {"no per-example gradient bound", "Conv2d", "supported"});
  torch::nn::Sequential sll(DpBoundedInput(1.0), SllLinear(4, 8));
  expect_error([&] { dp::sensitivities(sll, 1.0); }, {"SllLinear", "no per-example gradient bound"});
  torch::nn::Sequential unclipped(DpLinear(4, 4), DpBoundedInput(1.0));
  expect_error([&] { dp::sensitivities(unclipped, 1.0); }, {"DpLinear", "put a DpBoundedInput before it"});
  expect_error([] { dp::loss_lipschitz("mixture", 10); }, {"mixture", "ce, offset_ce and multi_margin"});
  expect_error([] { dp::parse_noise_mode("layerwise"); }, {"dp.mode", "'layerwise'"});
}

TEST(Mechanism, NoiseHasTheStatedVarianceInBothModes) {
  torch::manual_seed(9);
  auto net = small_dp_net(true);
  const auto layers = dp::sensitivities(net, std::sqrt(2.0));
  auto gen = at::make_generator<at::CPUGeneratorImpl>(3);
  const double sigma = 0.8;
  for (auto mode : {dp::NoiseMode::Global, dp::NoiseMode::PerLayer}) {
    std::vector<torch::Tensor> sums(layers.size());
    const int trials = 200;
    for (auto& p : net->parameters()) p.mutable_grad() = torch::Tensor();
    std::vector<torch::Tensor> sq(layers.size());
    for (int t = 0; t < trials; ++t) {
      for (auto& p : net->parameters()) p.mutable_grad() = torch::zeros_like(p);
      dp::add_noise(layers, sigma, mode, gen);
      for (size_t l = 0; l < layers.size(); ++l) {
        auto g = layers[l].parameters[0].grad().to(torch::kDouble);
        sq[l] = sq[l].defined() ? sq[l] + g.pow(2) : g.pow(2);
      }
    }
    for (size_t l = 0; l < layers.size(); ++l) {
      const double measured = (sq[l] / trials).mean().item<double>();
      const double expected = std::pow(sigma * (mode == dp::NoiseMode::Global ? dp::global_sensitivity(layers)
                                                                               : std::sqrt(3.0) * layers[l].bound),
                                       2);
      EXPECT_NEAR(measured, expected, 0.05 * expected) << layers[l].layer;
    }
  }
}

TEST(PoissonLoader, InclusionRateMatchesAndBatchesVary) {
  data::Dataset data;
  data.name = "random";
  data.images = torch::randint(0, 256, {2000, 1, 4, 4}, torch::kByte);
  data.labels = torch::randint(0, 3, {2000}, torch::kLong);
  data.num_classes = 3;
  data::LoaderOptions o;
  o.poisson_rate = 0.01;
  o.seed = 5;
  data::BatchLoader loader(data, o);
  EXPECT_EQ(loader.batches_per_epoch(), 100);
  int64_t total = 0, empty = 0, batches = 0;
  std::set<int64_t> sizes;
  for (int64_t e = 0; e < 20; ++e) {
    loader.start_epoch(e);
    data::Batch b;
    while (loader.next(b)) {
      total += b.y.size(0);
      sizes.insert(b.y.size(0));
      empty += b.y.size(0) == 0;
      ++batches;
      EXPECT_EQ(b.x.size(0), b.y.size(0));
    }
  }
  const double rate = double(total) / (double(batches) * 2000);
  EXPECT_NEAR(rate, 0.01, 4 * std::sqrt(0.01 * 0.99 / (batches * 2000.0)));
  EXPECT_GT(sizes.size(), 10u) << "sizes vary";
  data::LoaderOptions tiny = o;
  tiny.poisson_rate = 0.0002;  // expected 0.4 per batch: most batches are empty
  data::BatchLoader sparse(data, tiny);
  sparse.start_epoch(0);
  data::Batch b;
  int64_t empties = 0;
  while (sparse.next(b)) empties += b.y.size(0) == 0;
  EXPECT_GT(empties, 0);
}

train::TrainConfig private_config(const std::string& data) {
  train::TrainConfig c;
  c.model = models::model_preset("dp-fmnist");
  c.model.width = 32;
  c.data = data;
  c.epochs = 3;
  c.batch_size = 50;
  c.optimizer.lr = 0.01;
  c.dp.enabled = true;
  c.dp.epsilon = 4;
  c.dp.input_norm = 5;
  c.radii = {36.0 / 255};
  return c;
}

TEST(PrivateTraining, RunsSpendsTheBudgetAndRecordsIt) {
  const auto data = lipkit::testing::write_synthetic_mnist(lipkit::testing::fresh_dir("dp_data"), 500, 200, 12);
  const auto dir = lipkit::testing::fresh_dir("dp_run");
  auto c = private_config(data);
  train::TrainOptions o;
  o.out_dir = dir + "/a";
  o.progress = false;
  auto s = train::train(c, o);
  EXPECT_EQ(s.epochs_done, 3);
  EXPECT_LE(s.epsilon, 4.0);
  EXPECT_GT(s.epsilon, 3.9) << "sigma calibrated to spend the budget in the configured epochs";
  EXPECT_GT(s.clean_accuracy, 0.3) << "the synthetic classes are learnable";
  auto meta = train::read_checkpoint_meta(o.out_dir + "/model.pt");
  ASSERT_TRUE(meta.contains("dp"));
  EXPECT_TRUE(meta["dp"]["private"].get<bool>());
  EXPECT_EQ(meta["dp"]["steps"].get<int64_t>(), 30);  // q = 50 / 500: 10 Poisson batches per epoch
  std::ifstream metrics(o.out_dir + "/metrics.jsonl");
  std::string line;
  double last = 0;
  int lines = 0;
  while (std::getline(metrics, line)) {
    const double e = nlohmann::json::parse(line).at("epsilon").get<double>();
    EXPECT_GT(e, last) << "epsilon grows every epoch";
    last = e;
    ++lines;
  }
  EXPECT_EQ(lines, 3);
  // a fixed sigma too small for the epochs: the run stops at the budget
  auto small = c;
  small.dp.noise_multiplier = 0.6;
  small.epochs = 50;
  o.out_dir = dir + "/b";
  auto b = train::train(small, o);
  EXPECT_TRUE(b.budget_spent);
  EXPECT_LT(b.epochs_done, 50);
  EXPECT_LE(b.epsilon, 4.0);
  // sigma 0 is not private: refused unless asked for
  auto none = c;
  none.dp.noise_multiplier = 0;
  o.out_dir = dir + "/c";
  lipkit::testing::expect_error([&] { train::train(none, o); }, {"noise_multiplier 0", "--no-privacy"});
  o.no_privacy = true;
  none.epochs = 1;
  auto n = train::train(none, o);
  EXPECT_TRUE(std::isinf(n.epsilon));
  EXPECT_FALSE(train::read_checkpoint_meta(o.out_dir + "/model.pt")["dp"]["private"].get<bool>());
  // a model without sensitivity bounds is refused before training
  auto sll = c;
  sll.model = models::model_preset("sll-fmnist");
  o.out_dir = dir + "/d";
  lipkit::testing::expect_error([&] { train::train(sll, o); }, {"no per-example gradient bound"});
}

}  // namespace
