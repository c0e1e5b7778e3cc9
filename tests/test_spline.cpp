// LinearSpline: the map against a plain piecewise-linear reference, the slope projection, TV(2), and
// the negative control the Lipschitz checkers must catch. (The conformance zoo measures it too.)
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "lipkit/certify/attacks.h"
#include "lipkit/certify/interval.h"
#include "lipkit/data/dataset.h"
#include "lipkit/train/checkpoint.h"
#include "lipkit/train/config.h"
#include "lipkit/train/trainer.h"
#include "lipkit/kernels/dist.h"
#include "lipkit/kernels/spline.h"
#include "lipkit/layers/cpl.h"
#include "lipkit/layers/sll.h"
#include "lipkit/layers/spline.h"
#include "support/expect_error.h"
#include "support/lipschitz_check.h"
#include "support/lying_layer.h"
#include "support/synthetic_data.h"

using namespace lipkit;

namespace {

// Scalar reference: find the interval by scanning the knots, interpolate, extend with the end slopes.
double reference(double x, const std::vector<double>& a, double grid) {
  const int64_t k = static_cast<int64_t>(a.size());
  const double t0 = -(k - 1) / 2.0 * grid;
  int64_t i = 0;
  while (i + 2 < k && x >= t0 + (i + 1) * grid) ++i;
  const double slope = (a[i + 1] - a[i]) / grid;
  return a[i] + (x - (t0 + i * grid)) * slope;
}

TEST(LinearSpline, MatchesAPlainPiecewiseLinearReferenceEverywhere) {
  torch::manual_seed(70);
  const double grid = 0.25;
  auto a = torch::randn({3, 9}, torch::kDouble);
  const double t0 = -4 * grid;
  std::vector<double> points;
  for (int k = 0; k < 9; ++k) points.push_back(t0 + k * grid);             // at the knots
  for (int k = 0; k < 8; ++k) points.push_back(t0 + (k + 0.37) * grid);    // between them
  for (double far : {-5.0, -1.01, 1.01, 3.0}) points.push_back(far);       // outside the grid
  auto x = torch::tensor(points, torch::kDouble).unsqueeze(0).expand({3, -1}).t().contiguous();  // (P, 3)
  for (bool ops : {false, true}) {  // the CPU kernel, then the LibTorch-ops path of other devices
    const bool previous = kernels::set_chunked_fallback(ops);
    auto y = functional::linear_spline(x, a, grid);
    kernels::set_chunked_fallback(previous);
    for (int64_t c = 0; c < 3; ++c) {
      std::vector<double> ac(a[c].data_ptr<double>(), a[c].data_ptr<double>() + 9);
      for (size_t p = 0; p < points.size(); ++p)
        EXPECT_NEAR(y[p][c].item<double>(), reference(points[p], ac, grid), 1e-12)
            << (ops ? "ops" : "kernel") << " channel " << c << " x " << points[p];
    }
  }
}

// Value and the three gradients of the kernel against the LibTorch-ops form (autograd through gather),
// float64, on shapes no block divides (dense, conv, and one large enough for several accumulator
// blocks), with random inputs and tie-heavy ones (exactly on knots: grid a power of two).
TEST(LinearSplineKernel, EqualsTheOpsFormInValueAndGradient) {
  torch::manual_seed(74);
  const double grid = 0.125;
  const int64_t k = 13;
  for (auto shape : std::vector<std::vector<int64_t>>{{37, 5}, {3, 5, 7, 3}, {41, 5, 13, 11}}) {
    for (bool ties : {false, true}) {
      auto x = ties ? (torch::randint(-10, 11, shape, torch::kDouble) * grid)  // knots, and beyond the grid
                    : 1.5 * torch::randn(shape, torch::kDouble);
      auto a = torch::randn({5, k}, torch::kDouble), s = torch::rand({5}, torch::kDouble) + 0.5;
      if (ties) s.fill_(1.0);  // keeps s x on the knots
      auto g = torch::randn(shape, torch::kDouble);
      std::vector<torch::Tensor> out[3];  // AVX2 kernel, portable kernel, ops form
      for (int path : {0, 1, 2}) {
        const bool previous = kernels::set_chunked_fallback(path == 2);
        const bool avx2 = kernels::set_avx2_enabled(path == 0);
        auto xv = x.clone().requires_grad_(true), av = a.clone().requires_grad_(true), sv = s.clone().requires_grad_(true);
        auto y = kernels::linear_spline(xv, av, sv, grid);
        (y * g).sum().backward();
        kernels::set_chunked_fallback(previous);
        kernels::set_avx2_enabled(avx2);
        out[path] = {y.detach(), xv.grad(), av.grad(), sv.grad()};
      }
      const char* names[] = {"value", "grad x", "grad coefficients", "grad scale"};
      for (int path : {0, 1})
        for (int i = 0; i < 4; ++i)
          EXPECT_TRUE(torch::allclose(out[path][i], out[2][i], 1e-12, 1e-10))
              << (path ? "portable " : "avx2 ") << names[i] << " shape " << torch::IntArrayRef(shape)
              << (ties ? " ties" : " random") << " max diff " << (out[path][i] - out[2][i]).abs().max().item<double>();
    }
  }
}

// The kernel's gradients against central differences (the ops form could share a mistake with it in
// principle: this does not), and float32 against float64.
TEST(LinearSplineKernel, GradientsMatchFiniteDifferencesAndFloat32Agrees) {
  torch::manual_seed(75);
  auto x = 1.2 * torch::randn({6, 3, 4}, torch::kDouble), a = torch::randn({3, 9}, torch::kDouble);
  auto s = torch::rand({3}, torch::kDouble) + 0.5;
  auto g = torch::randn({6, 3, 4}, torch::kDouble);
  auto loss = [&](const torch::Tensor& xv, const torch::Tensor& av, const torch::Tensor& sv) {
    return (kernels::linear_spline(xv, av, sv, 0.3) * g).sum();
  };
  auto xv = x.clone().requires_grad_(true), av = a.clone().requires_grad_(true), sv = s.clone().requires_grad_(true);
  loss(xv, av, sv).backward();
  torch::NoGradGuard ng;
  const double h = 1e-6;
  auto fd = [&](const torch::Tensor& t, int which, int64_t i) {
    auto plus = t.clone(), minus = t.clone();
    plus.view(-1)[i] += h;
    minus.view(-1)[i] -= h;
    auto args = [&](const torch::Tensor& v) {
      return which == 0 ? loss(v, a, s) : which == 1 ? loss(x, v, s) : loss(x, a, v);
    };
    return (args(plus) - args(minus)).item<double>() / (2 * h);
  };
  for (int64_t i = 0; i < x.numel(); i += 5) EXPECT_NEAR(xv.grad().view(-1)[i].item<double>(), fd(x, 0, i), 1e-6);
  for (int64_t i = 0; i < a.numel(); ++i) EXPECT_NEAR(av.grad().view(-1)[i].item<double>(), fd(a, 1, i), 1e-6);
  for (int64_t i = 0; i < s.numel(); ++i) EXPECT_NEAR(sv.grad().view(-1)[i].item<double>(), fd(s, 2, i), 1e-6);
  auto y32 = kernels::linear_spline(x.to(torch::kFloat), a.to(torch::kFloat), s.to(torch::kFloat), 0.3);
  EXPECT_TRUE(torch::allclose(y32.to(torch::kDouble), kernels::linear_spline(x, a, s, 0.3), 1e-5, 1e-5));
}

TEST(LinearSplineKernel, BadArgumentsAreNamedAndNaNPropagates) {
  using lipkit::testing::expect_error;
  auto a = torch::randn({3, 5}), s = torch::ones({3});
  expect_error([&] { kernels::linear_spline(torch::randn({2, 4}), a, s, 0.1); }, {"linear_spline", "(N, 3, ...)", "[2, 4]"});
  expect_error([&] { kernels::linear_spline(torch::randn({2, 3}), a, torch::ones({4}), 0.1); }, {"scale", "(3)", "[4]"});
  expect_error([&] { kernels::linear_spline(torch::randn({2, 3}), torch::randn({3, 1}), s, 0.1); }, {"coefficients", "[3, 1]"});
  expect_error([&] { kernels::linear_spline(torch::randn({2, 3}, torch::kDouble), a, s, 0.1); }, {"dtype", "Double", "Float"});
  expect_error([&] { kernels::linear_spline(torch::randn({2, 3}), a, s, -1); }, {"grid", "-1"});
  auto x = torch::randn({2, 3});
  x[1][2] = std::nan("");
  auto y = kernels::linear_spline(x, a, s, 0.1);
  EXPECT_TRUE(std::isnan(y[1][2].item<float>()));
  EXPECT_TRUE(torch::isfinite(y[0]).all().item<bool>());
}

TEST(LinearSpline, ProjectionClampsEverySlopeAndKeepsTheMean) {
  torch::manual_seed(71);
  auto a = 5 * torch::randn({4, 15}, torch::kDouble);
  auto b = functional::spline_projection(a, 0.1, 0.7);
  auto slopes = (b.narrow(1, 1, 14) - b.narrow(1, 0, 14)) / 0.1;
  EXPECT_LE(slopes.abs().max().item<double>(), 0.7 + 1e-12);
  EXPECT_TRUE(torch::allclose(b.mean(1), a.mean(1)));
  // a spline already inside the constraint is left as it is
  auto ok = torch::cumsum(torch::full({2, 10}, 0.05, torch::kDouble), 1);
  EXPECT_TRUE(torch::allclose(functional::spline_projection(ok, 0.1, 1.0), ok));
}

TEST(LinearSpline, TotalVariationOfTheDerivative) {
  // ReLU on a grid of 0.5: one kink where the slope goes 0 -> 1: TV(2) = 1 per channel
  LinearSpline relu(LinearSplineOptions(3).num_knots(7).grid(0.5).scaling(false));
  EXPECT_NEAR(relu->tv2().item<double>(), 3.0, 1e-6);
  // |x|: the slope goes -1 -> 1: 2 per channel; identity: 0
  LinearSpline absolute(LinearSplineOptions(2).num_knots(7).grid(0.5).init("absolute_value"));
  EXPECT_NEAR(absolute->tv2().item<double>(), 4.0, 1e-6);
  LinearSpline identity(LinearSplineOptions(2).init("identity"));
  // 0 up to the float32 rounding of the 51 initial knots (about 49 x 2e-7 / 0.1)
  EXPECT_LT(identity->tv2().item<double>(), 1e-3);
  // hand-made: coefficients 0, 0.1, 0.4, 0.4 on grid 0.1: second differences 0.2, -0.3: (0.2 + 0.3) / 0.1
  EXPECT_NEAR(functional::spline_tv2(torch::tensor({{0.0, 0.1, 0.4, 0.4}}, torch::kDouble), 0.1).item<double>(), 5.0,
              1e-12);
  torch::nn::Sequential net(relu, torch::nn::Flatten(), absolute);
  EXPECT_NEAR(spline_tv2(*net).item<double>(), 7.0, 1e-6);
}

// Negative control: without the projection, training pushes slopes past 1; the checker catches it and
// the layer's stated bound says so honestly.
TEST(LinearSpline, CheckerCatchesAnUnprojectedSpline) {
  torch::manual_seed(72);
  for (bool project : {true, false}) {
    LinearSpline s(LinearSplineOptions(4).num_knots(11).grid(0.4).project(project));
    s->to(torch::kDouble);
    auto x = torch::randn({64, 4}, torch::kDouble);
    auto target = 4 * x.sign() * x.abs().sqrt() * 3;  // steeper than 1 almost everywhere
    torch::optim::Adam opt(s->parameters(), torch::optim::AdamOptions(1.0));
    for (int step = 0; step < 30; ++step) {
      opt.zero_grad();
      torch::mse_loss(s->forward(x), target).backward();
      opt.step();
    }
    auto f = [&](const torch::Tensor& t) { return s->forward(t); };
    auto r = lipkit::testing::measure_lipschitz(f, {4}, torch::kDouble, Norm::L2);
    if (project) {
      EXPECT_LE(r.max(), 1.0 + 1e-6);
      EXPECT_LE(s->lipschitz_bound(Norm::L2), 1.0 + 1e-9);
    } else {
      EXPECT_GT(r.max(), 1.5) << "the unprojected spline must be caught";
      EXPECT_GE(s->lipschitz_bound(Norm::L2), r.max() * (1 - 1e-6)) << "and its stated bound stays honest";
    }
  }
}

// IBP through a spline: every sampled output inside the bounds, and the bounds reached (the extremes
// sit at the interval's ends or at knots inside it).
TEST(LinearSpline, IntervalBoundsContainSamplesAndAreReached) {
  torch::manual_seed(73);
  LinearSpline s(LinearSplineOptions(3).num_knots(9).grid(0.5));
  s->to(torch::kDouble);
  {
    torch::NoGradGuard ng;
    s->coefficients.normal_();
    s->log_scale.normal_(0.0, 0.3);
  }
  auto centre = 2 * torch::randn({5, 3}, torch::kDouble), radius = torch::rand({5, 3}, torch::kDouble);
  auto lower = centre - radius, upper = centre + radius;
  auto [lo, hi] = s->interval_bounds(lower, upper);
  const int64_t n = 4001;
  auto t = torch::linspace(0, 1, n, torch::kDouble).view({n, 1, 1});
  auto samples = lower.unsqueeze(0) + t * (upper - lower).unsqueeze(0);  // (n, 5, 3)
  auto y = s->forward(samples.reshape({n * 5, 3})).reshape({n, 5, 3}).detach();
  EXPECT_TRUE((y >= lo.unsqueeze(0) - 1e-12).all().item<bool>());
  EXPECT_TRUE((y <= hi.unsqueeze(0) + 1e-12).all().item<bool>());
  // reached up to the sample spacing (slopes <= 1, spacing <= 2 / 4000)
  EXPECT_LE((y.amax(0) - hi).abs().max().item<double>(), 1e-3);
  EXPECT_LE((y.amin(0) - lo).abs().max().item<double>(), 1e-3);
  // and a network of splines and linear layers is certified through IBP by the same rule
  torch::nn::Sequential net(torch::nn::Linear(3, 3), s);
  net->to(torch::kDouble);
  EXPECT_EQ(certify::interval_unsupported(net), "");
}

TEST(LinearSpline, BadOptionsAndInputsAreNamed) {
  using lipkit::testing::expect_error;
  expect_error([] { LinearSpline(LinearSplineOptions(3).num_knots(2)); }, {"LinearSpline", "num_knots", "2"});
  expect_error([] { LinearSpline(LinearSplineOptions(3).grid(0)); }, {"LinearSpline", "grid", "0"});
  expect_error([] { LinearSpline(LinearSplineOptions(3).init("tanh")); }, {"LinearSpline", "init", "tanh"});
  expect_error([] { LinearSpline(LinearSplineOptions(3).lipschitz(1.5)); }, {"LinearSpline", "lipschitz", "1.5"});
  LinearSpline s(3);
  expect_error([&] { s->forward(torch::randn({2, 4})); }, {"LinearSpline", "(N, num_channels, ...)", "[2, 4]"});
}

// A trained AOL net with spline activations (raw coefficients free, trained at a high spline rate):
// its certificates survive PGD; negative control: the same net with a layer that triples its input
// while claiming 1, inserted before the head, is caught.

TEST(LinearSpline, TrainedSplineNetCertificatesSurvivePgd) {
  const auto dir = lipkit::testing::write_synthetic_mnist(lipkit::testing::fresh_dir("spline_net"), 600, 200);
  train::TrainConfig c;
  c.model = models::model_preset("aol-spline-fmnist");
  c.model.conv_layers = 1;
  c.model.dense_layers = 1;
  c.model.width = 4;
  c.model.conv_hidden = 4;
  c.model.pool = 2;
  c.model.spline_init = "maxmin";
  c.optimizer.spline_lr = 0.05;
  c.data = dir;
  c.epochs = 3;
  c.batch_size = 20;
  train::TrainOptions o;
  o.out_dir = dir + "/run";
  o.progress = false;
  train::train(c, o);
  auto model = train::load_model(o.out_dir + "/model.pt");
  auto test = data::load_dataset(dir, data::Split::Test);
  double raw_slope = 0;  // the projection must have had work to do
  for (auto& m : model->modules())
    if (auto* sp = m->as<LinearSplineImpl>()) {
      auto a = sp->coefficients.detach();
      raw_slope = std::max(raw_slope, ((a.narrow(1, 1, a.size(1) - 1) - a.narrow(1, 0, a.size(1) - 1)).abs() /
                                       sp->options.grid()).max().item<double>());
    }
  EXPECT_GT(raw_slope, 1.0);
  auto liar = lipkit::testing::with_liar_before_head(model);
  int64_t caught = 0;
  for (double eps : {0.3, 1.0, 2.0, 3.0}) {  // the synthetic classes are far apart: large radii matter
    certify::PgdOptions pgd;
    pgd.eps = eps;
    pgd.steps = 50;
    auto r = certify::attack_and_check(model, test, pgd);
    EXPECT_EQ(r.violations, 0) << "eps " << eps;
    if (eps == 0.3) EXPECT_GT(r.certified, 20) << "the check must not be vacuous";
    caught += certify::attack_and_check(liar, test, pgd).violations;
  }
  EXPECT_GT(caught, 0) << "the attack must catch a net that claims 1 and triples";
}

// CPL and SLL keep their proof with a monotone spline (the zoo measures CplLinear_spline and
// SllLinear_spline). Negative control: the same layers with the spline's slopes allowed to be
// negative (|x|) are measured above 1, and their stated bound says so (no bound), so certify refuses.
TEST(LinearSpline, ResidualLayersNeedAMonotoneSpline) {
  torch::manual_seed(76);
  auto break_monotone = [](LinearSpline& sp) {
    torch::NoGradGuard ng;
    sp->options.monotone(false);
    const int64_t k = sp->options.num_knots();
    auto t = (torch::arange(k, sp->coefficients.options()) - (k - 1) / 2.0) * sp->options.grid();
    sp->coefficients.copy_(t.abs().expand_as(sp->coefficients));
  };
  CplLinear cpl(CplLinearOptions(6, 8).activation("spline").spline_knots(11).spline_grid(0.3));
  SllLinear sll(SllLinearOptions(6, 8).activation("spline").spline_knots(11).spline_grid(0.3));
  std::vector<std::pair<std::string, std::pair<torch::nn::AnyModule, LinearSpline>>> layers = {
      {"CplLinear", {torch::nn::AnyModule(cpl), cpl->spline}}, {"SllLinear", {torch::nn::AnyModule(sll), sll->spline}}};
  for (auto& [name, layer] : layers) {
    auto& [module, spline] = layer;
    module.ptr()->to(torch::kDouble);
    module.ptr()->eval();
    auto f = [&](const torch::Tensor& t) { return module.forward(t); };
    auto* lip = dynamic_cast<LipschitzLayer*>(module.ptr().get());
    EXPECT_EQ(lip->lipschitz_bound(Norm::L2), 1.0) << name;
    EXPECT_LE(lipkit::testing::measure_lipschitz(f, {6}, torch::kDouble, Norm::L2).max(), 1.0 + 1e-6) << name;
    break_monotone(spline);
    EXPECT_GT(lipkit::testing::measure_lipschitz(f, {6}, torch::kDouble, Norm::L2).max(), 1.05)
        << name << ": a spline with slope -1 inside the residual must be caught";
    EXPECT_EQ(lip->lipschitz_bound(Norm::L2), kNoBound) << name << " must not claim 1 with that spline";
  }
  using lipkit::testing::expect_error;
  expect_error([] { CplLinear(CplLinearOptions(4, 4).activation("maxmin")); }, {"CplLinear", "activation", "maxmin"});
  expect_error([] { LinearSpline(LinearSplineOptions(4).monotone(true).init("absolute_value")); },
               {"LinearSpline", "absolute_value", "monotone"});
}

}  // namespace
