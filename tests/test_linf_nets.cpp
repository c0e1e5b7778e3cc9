// l_inf-distance nets and SortNet: every layer is 1-Lipschitz in l_inf (measured, with negative
// controls), the random-subset training neuron averages to the sort neuron, mean-shift
// re-estimation is the exact average, interval bounds contain every output, the schedules and the
// mixture loss follow their formulas, and certificates (margin / 2 and IBP) survive PGD.

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>

#include "lipkit/certify/attacks.h"
#include "lipkit/certify/certify.h"
#include "lipkit/certify/interval.h"
#include "lipkit/data/dataset.h"
#include "lipkit/data/transforms.h"
#include "lipkit/lipkit.h"
#include "lipkit/train/checkpoint.h"
#include "lipkit/train/losses.h"
#include "lipkit/certify/reestimate.h"
#include "lipkit/train/schedule.h"
#include "lipkit/train/trainer.h"
#include "support/lipschitz_check.h"
#include "support/synthetic_data.h"

using namespace lipkit;
using lipkit::testing::measure_lipschitz;

namespace {

const auto kF64 = torch::TensorOptions().dtype(torch::kDouble);
constexpr double kTol = 1e-6;

template <typename Layer>
lipkit::testing::BatchFn as_fn(Layer& layer) {
  return [&layer](const torch::Tensor& x) { return layer->forward(x); };
}

template <typename Layer>
void train_a_little(Layer& layer, int64_t in) {
  layer->train();
  torch::optim::Adam opt(layer->parameters(), torch::optim::AdamOptions(0.05));
  auto before = layer->weight.detach().clone();
  for (int s = 0; s < 20; ++s) {
    opt.zero_grad();
    auto out = layer->forward(torch::randn({16, in}, kF64));
    (out.pow(2).mean() - out.mean()).backward();
    opt.step();
  }
  ASSERT_GT((layer->weight.detach() - before).abs().max().template item<double>(), 1e-3);  // weights moved
  layer->eval();
}

TEST(LinfLayers, LinfDistLinearIsOneLipschitzInLinf) {
  torch::manual_seed(0);
  LinfDistLinear layer(LinfDistLinearOptions(12, 9).bias(true).identity_init(3.0));
  layer->to(torch::kDouble);
  train_a_little(layer, 12);
  EXPECT_EQ(layer->lipschitz_bound(Norm::Linf), 1.0);
  auto r = measure_lipschitz(as_fn(layer), {12}, kF64, Norm::Linf);
  EXPECT_LE(r.max(), 1 + kTol);
  EXPECT_GT(r.max(), 0.9);  // a distance layer attains its constant: the check is not vacuous
}

TEST(LinfLayers, SortNetLinearIsOneLipschitzInLinf) {
  torch::manual_seed(1);
  for (int64_t k : {3, 10}) {
    SortNetLinear layer(SortNetLinearOptions(16, 8).q(0.6).k(k).bias(true));
    layer->to(torch::kDouble);
    train_a_little(layer, 16);
    EXPECT_EQ(layer->lipschitz_bound(Norm::Linf), 1.0);
    auto r = measure_lipschitz(as_fn(layer), {16}, kF64, Norm::Linf);
    EXPECT_LE(r.max(), 1 + kTol) << "k " << k;
    EXPECT_GT(r.max(), 0.9) << "k " << k;
  }
}

TEST(LinfLayers, WholeSortNetModelIsWithinItsBound) {
  torch::manual_seed(2);
  models::ModelSpec s = models::model_preset("sortnet-fmnist");
  s.in_channels = 1, s.image_size = 4, s.width = 12, s.dense_layers = 4, s.num_classes = 5;
  s.mean = {0.5};
  s.std = {0.5};
  auto model = models::build_model(s);
  model->to(torch::kDouble);
  model->train();
  {  // some training steps with the random-subset neuron, then mean-shift statistics
    torch::optim::Adam opt(model->parameters(), torch::optim::AdamOptions(0.05));
    for (int i = 0; i < 20; ++i) {
      opt.zero_grad();
      model->forward(torch::rand({32, 1, 4, 4}, kF64)).logsumexp(1).mean().backward();
      opt.step();
    }
  }
  model->eval();
  const double bound = certify::body_bound(model, Norm::Linf);
  EXPECT_DOUBLE_EQ(bound, 2.0);  // 1 / std
  auto f = [&](const torch::Tensor& x) { return model->forward(x); };
  auto r = measure_lipschitz(f, {1, 4, 4}, kF64, Norm::Linf);
  EXPECT_LE(r.max(), bound * (1 + kTol));
}

// Negative controls: the l_inf checker must catch an l2 distance (sqrt(n)-Lipschitz in l_inf) and
// a sort neuron whose weights sum to 1.05.
TEST(LinfLayers, CheckerCatchesLayersAboveOne) {
  torch::manual_seed(3);
  LinfDistLinear l2(LinfDistLinearOptions(16, 4));
  l2->set_p(2.0);
  l2->to(torch::kDouble);
  l2->eval();
  EXPECT_DOUBLE_EQ(l2->lipschitz_bound(Norm::Linf), 4.0);  // 16^(1/2)
  auto r = measure_lipschitz(as_fn(l2), {16}, kF64, Norm::Linf);
  EXPECT_GT(r.max(), 1.5);
  EXPECT_LE(r.max(), 4.0 * (1 + kTol));  // and within its stated bound

  SortNetLinear sort(SortNetLinearOptions(16, 4).q(0.7));
  sort->to(torch::kDouble);
  sort->eval();
  auto too_big = [&](const torch::Tensor& x) { return 1.05 * sort->forward(x); };
  auto r2 = measure_lipschitz(too_big, {16}, kF64, Norm::Linf);
  EXPECT_GT(r2.max(), 1 + 1e-3);
}

// E_S[max_{i in S} |x_i - w_i|] over random subsets = the sort neuron (untruncated: k = n).
TEST(LinfLayers, TrainingSubsetsAverageToTheSortNeuron) {
  torch::manual_seed(4);
  const int64_t n = 8;
  SortNetLinear layer(SortNetLinearOptions(n, 3).q(0.6).k(n));
  layer->to(torch::kDouble);
  auto x = torch::randn({2, n}, kF64);
  layer->eval();
  auto exact = layer->forward(x) * (1 - std::pow(0.4, double(n)));  // undo the renormalization
  layer->train();
  const int64_t draws = 20000;
  auto sum = torch::zeros_like(exact), sq = torch::zeros_like(exact);
  for (int64_t t = 0; t < draws; ++t) {
    auto y = layer->forward(x.clone().requires_grad_(true)).detach();
    sum += y, sq += y * y;
  }
  auto mean = sum / draws;
  auto se = ((sq / draws - mean * mean).clamp_min(0) / draws).sqrt();
  EXPECT_TRUE(((mean - exact).abs() <= 5 * se + 1e-9).all().item<bool>())
      << "mean " << mean << "\nexact " << exact;
  EXPECT_EQ(layer->step.item<int64_t>(), draws);  // masks advance a saved counter (resumable)
}

TEST(LinfLayers, PIsABufferAndChangesTheBound) {
  LinfDistLinear layer(LinfDistLinearOptions(81, 4));
  layer->set_p(4.0);
  EXPECT_NEAR(layer->lipschitz_bound(Norm::Linf), 3.0, 1e-12);  // 81^(1/4)
  auto buffers = layer->named_buffers();
  ASSERT_TRUE(buffers.contains("p"));
  EXPECT_EQ(buffers["p"].item<double>(), 4.0);
  torch::nn::Sequential model(layer, SortNetLinear(4, 2));
  EXPECT_EQ(set_distance_p(*model, std::numeric_limits<double>::infinity()), 2);
  EXPECT_EQ(layer->lipschitz_bound(Norm::Linf), 1.0);
}

TEST(LinfLayers, MeanShiftTrainEvalAndExactAverage) {
  MeanShift shift(3);
  shift->train();
  auto x = torch::randn({10, 3});
  auto y = shift->forward(x);
  EXPECT_TRUE(torch::allclose(y.mean(0), torch::zeros(3), 0, 1e-6));
  EXPECT_TRUE(torch::allclose(shift->running_mean, 0.1 * x.mean(0), 0, 1e-6));  // momentum 0.1
  shift->begin_average();
  auto a = torch::randn({7, 3}), b = torch::randn({5, 3});
  shift->forward(a);
  shift->forward(b);
  shift->end_average();
  EXPECT_TRUE(torch::allclose(shift->running_mean, torch::cat({a, b}).mean(0), 0, 1e-6));
  shift->eval();
  EXPECT_TRUE(torch::allclose(shift->forward(a), a - torch::cat({a, b}).mean(0), 0, 1e-6));
}

TEST(LinfLayers, ReestimationAveragesOverTheWholeDataSet) {
  auto dir = lipkit::testing::write_synthetic_mnist(lipkit::testing::fresh_dir("reestimate"), 130, 10);
  auto train_set = data::load_dataset(dir, data::Split::Train);
  models::ModelSpec s = models::model_preset("sortnet-fmnist");
  s.in_channels = 1, s.image_size = 8, s.width = 10, s.dense_layers = 3;
  auto model = models::build_model(s);
  set_distance_p(*model, 8.0);
  model->eval();
  EXPECT_EQ(certify::reestimate_mean_shift(model, train_set, 50), 2);
  // the first MeanShift follows Flatten + LinfDistLinear: its mean is the features' exact average
  torch::NoGradGuard ng;
  set_distance_p(*model, std::numeric_limits<double>::infinity());
  auto x = data::to_float(train_set.images);
  auto features = model->ptr(2)->as<LinfDistLinearImpl>()->forward(
      model->ptr(1)->as<torch::nn::FlattenImpl>()->forward(model->ptr(0)->as<InputNormalizationImpl>()->forward(x)));
  EXPECT_TRUE(torch::allclose(model->ptr(3)->as<MeanShiftImpl>()->running_mean, features.mean(0), 1e-5, 1e-5));
  EXPECT_FALSE(model->is_training());  // mode restored
}

TEST(Interval, BoundsContainEveryOutputAndAreExactForOneLayer) {
  torch::manual_seed(5);
  models::ModelSpec s = models::model_preset("sortnet-fmnist");
  s.in_channels = 1, s.image_size = 5, s.width = 16, s.dense_layers = 4, s.num_classes = 6;
  s.mean = {0.4};
  auto model = models::build_model(s);
  model->to(torch::kDouble);
  model->eval();
  auto x = torch::rand({4, 1, 5, 5}, kF64);
  const double eps = 0.05;
  auto lo = (x - eps).clamp(0, 1), hi = (x + eps).clamp(0, 1);
  auto [blo, bhi] = certify::interval_bounds(model, lo, hi);
  torch::NoGradGuard ng;
  for (int t = 0; t < 200; ++t) {
    auto p = lo + (hi - lo) * torch::rand_like(x);
    auto y = model->forward(p);
    ASSERT_TRUE((y >= blo).all().item<bool>() && (y <= bhi).all().item<bool>());
  }
  // no looser than the Lipschitz box of this 1-Lipschitz net (no std): width <= 2 eps
  EXPECT_LE((bhi - blo).max().item<double>(), 2 * eps + 1e-12);
  // unsupported modules are named
  torch::nn::Sequential other(torch::nn::Flatten(), CplLinear(25));
  EXPECT_NE(certify::interval_unsupported(other).find("CplLinear"), std::string::npos);
}

TEST(Schedules, PAndEpsFollowTheirFormulas) {
  train::DistanceScheduleSpec d;
  d.p_epochs_begin = 1, d.p_epochs_end = 3;
  EXPECT_EQ(train::phase_progress(1, 3, 0, 10), 0.0);
  EXPECT_DOUBLE_EQ(train::phase_progress(1, 3, 20, 10), 0.5);
  EXPECT_EQ(train::phase_progress(0, 0, 0, 10), 1.0);  // empty phase: done
  EXPECT_EQ(train::distance_p(d, 0.0), 8.0);
  EXPECT_EQ(train::distance_p(d, 0.5), std::round(std::sqrt(8.0 * 1000.0)));  // geometric midpoint, integer
  EXPECT_TRUE(std::isinf(train::distance_p(d, 1.0)));
  d.p_end = 50;  // below 100: stays finite
  EXPECT_EQ(train::distance_p(d, 1.0), 50.0);
  EXPECT_DOUBLE_EQ(train::eps_fraction(0.3, 0.0), 0.3);
  for (double r : {0.25, 0.4}) {  // smooth: 0 -> 1, continuous with a continuous slope at r
    EXPECT_DOUBLE_EQ(train::eps_fraction(0.0, r), 0.0);
    EXPECT_NEAR(train::eps_fraction(1.0, r), 1.0, 1e-12);
    const double h = 1e-6;
    EXPECT_NEAR(train::eps_fraction(r - h, r), train::eps_fraction(r + h, r), 1e-5);
    const double left = (train::eps_fraction(r, r) - train::eps_fraction(r - h, r)) / h;
    const double right = (train::eps_fraction(r + h, r) - train::eps_fraction(r, r)) / h;
    EXPECT_NEAR(left, right, 1e-3);
  }
}

TEST(Losses, MixtureIsTheClippedHingePlusScaledCrossEntropy) {
  // logits (-1, -1.5, -3), label 0, eps 0.5: worst_j = (f_j - f_0 + 1) / 1 -> (0.5, -1): hinge 0.5
  auto f = torch::tensor({{-1.0, -1.5, -3.0}}, kF64);
  auto y = torch::tensor({0}, torch::kLong);
  EXPECT_NEAR(train::mixture_loss(f, y, 0.5, 0.0, {}).item<double>(), 0.5, 1e-12);
  auto s = torch::tensor({2.0}, kF64);
  const double ce = torch::cross_entropy_loss(f * 2.0, y).item<double>();
  EXPECT_NEAR(train::mixture_loss(f, y, 0.5, 0.3, s).item<double>(), 0.5 + 0.3 * ce, 1e-12);
  // clipped at 1 for a wrong prediction, 0 beyond the margin
  EXPECT_NEAR(train::mixture_loss(torch::tensor({{-5.0, -1.0}}, kF64), y, 0.5, 0, {}).item<double>(), 1.0, 1e-12);
  EXPECT_NEAR(train::mixture_loss(torch::tensor({{-1.0, -5.0}}, kF64), y, 0.5, 0, {}).item<double>(), 0.0, 1e-12);
}

// A small SortNet trained on synthetic data: certificates by both rules survive PGD l_inf; a model
// whose IBP is fed a smaller box than it claims gets caught.
class TrainedSortNet : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = lipkit::testing::write_synthetic_mnist(lipkit::testing::fresh_dir("sortnet_model"), 800, 200);
    train::TrainConfig c;
    c.model = models::model_preset("sortnet-fmnist");
    c.model.width = 64;
    c.model.dense_layers = 3;  // a deeper stack needs more than 250 steps to leave its start
    c.data = dir_;
    c.epochs = 10;
    c.batch_size = 32;
    c.optimizer.lr = 0.02;
    c.optimizer.beta1 = 0.9, c.optimizer.beta2 = 0.99;
    c.schedule.name = "cosine";
    c.loss.name = "mixture";
    c.loss.eps = 0.15;
    c.loss.lam0 = 1.0, c.loss.lam_end = 0.02;
    c.distance.p_epochs_begin = 0, c.distance.p_epochs_end = 6;
    c.norm = Norm::Linf;
    c.radii = {0.05};
    train::TrainOptions o;
    o.out_dir = dir_ + "/run";
    o.progress = false;
    summary_ = train::train(c, o);
  }
  static std::string dir_;
  static train::TrainSummary summary_;
};
std::string TrainedSortNet::dir_;
train::TrainSummary TrainedSortNet::summary_;

TEST_F(TrainedSortNet, LearnsAndCertifies) {
  EXPECT_GT(summary_.clean_accuracy, 0.7);  // 10 classes
  EXPECT_GT(summary_.certified_accuracy.at(0), 0.5);
  auto meta = train::read_checkpoint_meta(dir_ + "/run/model.pt");
  auto model = train::load_model(dir_ + "/run/model.pt");
  for (auto& m : model->modules(false))
    if (auto* d = m->as<SortNetLinearImpl>()) EXPECT_TRUE(std::isinf(d->p()));  // schedule reached inf
}

TEST_F(TrainedSortNet, CertificatesSurvivePgdLinf) {
  auto model = train::load_model(dir_ + "/run/model.pt");
  auto test = data::load_dataset(dir_, data::Split::Test);
  certify::CertifyOptions co;
  co.norm = Norm::Linf;
  co.radii = {0.03, 0.08};
  auto cert = certify::certify(model, test, co);
  ASSERT_TRUE(cert.interval);
  for (size_t i = 0; i < 2; ++i) {
    certify::PgdOptions o;
    o.norm = Norm::Linf;
    o.eps = co.radii[i];
    o.steps = 100;
    auto r = certify::attack_and_check(model, test, o, co);
    EXPECT_EQ(r.violations, 0) << "eps " << o.eps;
    EXPECT_GT(r.certified, 20) << "eps " << o.eps << ": the check must not be vacuous";
    EXPECT_EQ(r.certified, cert.certified[i]) << "the attack checks exactly the certificates certify issues";
    EXPECT_LE(r.max_perturbation, o.eps * (1 + 1e-6));
    EXPECT_GE(cert.certified[i], std::max(cert.certified_margin[i], cert.certified_interval[i]));
    EXPECT_LE(cert.certified[i], cert.certified_margin[i] + cert.certified_interval[i]);
  }
}

TEST_F(TrainedSortNet, AttackCatchesCertificatesFromTooSmallABox) {
  // Negative control: claiming IBP certificates at 4 eps from the box of radius eps must be broken.
  auto model = train::load_model(dir_ + "/run/model.pt");
  auto test = data::load_dataset(dir_, data::Split::Test);
  auto x = data::to_float(test.images);
  const double eps = 0.05;
  auto claimed = certify::interval_certified(model, x, test.labels, eps);
  certify::PgdOptions o;
  o.norm = Norm::Linf;
  o.eps = 4 * eps;
  o.steps = 100;
  auto adv = certify::pgd_attack(model, x, test.labels, o);
  torch::NoGradGuard ng;
  auto flipped = model->forward(adv).argmax(1) != test.labels;
  EXPECT_GT((claimed & flipped).sum().item<int64_t>(), 0);
}

}  // namespace
