// Norm computations: estimates from below, proven bounds from above, both against exact values.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "lipkit/certify/certify.h"
#include "lipkit/lipkit.h"
#include "lipkit/lipschitz/lower_bound.h"

using namespace lipkit;
using namespace lipkit::lipschitz;
using namespace lipkit::linalg;

namespace {

TEST(GramIteration, BoundsTheExactNormFromAboveAndConverges) {
  torch::manual_seed(20);
  for (auto shape : std::vector<std::pair<int64_t, int64_t>>{{30, 50}, {50, 30}, {1, 9}, {64, 64}}) {
    auto w = torch::randn({shape.first, shape.second}, torch::kDouble);
    const double exact = spectral_norm_exact(w);
    const double bound = gram_iteration_bound(w);
    EXPECT_GE(bound, exact) << shape.first << "x" << shape.second;
    EXPECT_LE(bound, exact * (1 + 1e-6)) << shape.first << "x" << shape.second;
  }
}

TEST(GramIteration, HardCaseOfRepeatedTopSingularValue) {
  // All singular values equal: the worst case for Gram iteration, bound -> n^(1/2^(t+1)).
  torch::manual_seed(21);
  auto q = std::get<0>(torch::linalg::qr(torch::randn({40, 40}, torch::kDouble), "reduced"));
  const double bound = gram_iteration_bound(3.0 * q);
  EXPECT_GE(bound, 3.0);
  EXPECT_LE(bound, 3.0 * (1 + 1e-4));
}

TEST(GramIteration, SurvivesHugeAndTinyScales) {
  torch::manual_seed(22);
  auto w = torch::randn({10, 12}, torch::kDouble);
  const double exact = spectral_norm_exact(w);
  EXPECT_NEAR(gram_iteration_bound(w * 1e150) / 1e150, exact, exact * 1e-6);
  EXPECT_NEAR(gram_iteration_bound(w * 1e-150) / 1e-150, exact, exact * 1e-6);
  EXPECT_EQ(gram_iteration_bound(torch::zeros({3, 4})), 0.0);
}

// The Cholesky-verified bound the dense CPL / spectral / LipschitzLinear layers certify with.
TEST(SpectralNormBound, AboveTheExactNormAndWithinItsLadderStep) {
  torch::manual_seed(24);
  for (auto shape : std::vector<std::pair<int64_t, int64_t>>{{30, 50}, {50, 30}, {1, 9}, {9, 1}, {64, 64}, {300, 120}}) {
    for (const auto dtype : {torch::kDouble, torch::kFloat}) {
      auto w = torch::randn({shape.first, shape.second}, dtype);
      const double exact = spectral_norm_exact(w.to(torch::kDouble));
      const double bound = spectral_norm_bound(w);
      EXPECT_GE(bound, exact) << shape.first << "x" << shape.second;
      EXPECT_LE(bound, exact * (1 + 1e-4)) << shape.first << "x" << shape.second;
    }
  }
  EXPECT_EQ(spectral_norm_bound(torch::zeros({3, 4})), 0.0);
  EXPECT_GE(spectral_norm_bound(torch::full({1, 1}, -2.5, torch::kDouble)), 2.5);
  EXPECT_LE(spectral_norm_bound(torch::full({1, 1}, -2.5, torch::kDouble)), 2.5 * (1 + 1e-5));
}

TEST(SpectralNormBound, HardSpectraAndScales) {
  torch::manual_seed(25);
  auto q1 = std::get<0>(torch::linalg::qr(torch::randn({80, 80}, torch::kDouble), "reduced"));
  auto q2 = std::get<0>(torch::linalg::qr(torch::randn({60, 60}, torch::kDouble), "reduced"));
  auto sv = torch::linspace(1.0, 0.1, 60, torch::kDouble);
  sv[1] = 1.0 - 1e-9;  // a top pair power iteration cannot separate
  sv[2] = 1.0 - 1e-4;
  auto w = q1.narrow(1, 0, 60).mm(torch::diag(sv)).mm(q2.t());
  const double exact = spectral_norm_exact(w);
  EXPECT_GE(spectral_norm_bound(w), exact);
  EXPECT_LE(spectral_norm_bound(w), exact * (1 + 1e-4));
  EXPECT_GE(spectral_norm_bound(3.0 * q1), 3.0);  // every singular value equal
  EXPECT_LE(spectral_norm_bound(3.0 * q1), 3.0 * (1 + 1e-5));
  for (const double scale : {1e150, 1e-150, 1e-300}) {
    const double b = spectral_norm_bound(w * scale) / scale;
    EXPECT_GE(b, exact * (1 - 1e-12)) << scale;  // (the division by scale rounds)
    EXPECT_LE(b, exact * (1 + 1e-4)) << scale;
  }
}

// Negative control: an estimate from below (a few power iterations, which is what the unverified
// Rayleigh quotient is) fails the ">= exact" check above, and the Cholesky verification refuses it.
TEST(SpectralNormBound, AnUnverifiedEstimateIsCaughtAndRefused) {
  torch::manual_seed(26);
  auto q = std::get<0>(torch::linalg::qr(torch::randn({50, 50}, torch::kDouble), "reduced"));
  auto w = q.mm(torch::diag(torch::linspace(1.0, 0.5, 50, torch::kDouble))).mm(q.t());
  auto v = torch::ones({50, 1}, torch::kDouble);
  auto g = w.t().mm(w);
  for (int i = 0; i < 3; ++i) v = g.mm(v) / g.mm(v).norm();
  const double estimate = std::sqrt(v.t().mm(g).mm(v).item<double>());
  EXPECT_LT(estimate, spectral_norm_exact(w));  // the check a bound must pass catches it
  auto a = -g;
  a.diagonal().add_(estimate * estimate);
  EXPECT_NE(std::get<1>(torch::linalg_cholesky_ex(a)).item<int64_t>(), 0);  // not positive definite: refused
  EXPECT_GE(spectral_norm_bound(w), spectral_norm_exact(w));
}

TEST(ConvNorm, CircularNormEqualsTheUnrolledCircularOperator) {
  torch::manual_seed(23);
  for (int64_t k : {1, 3, 5}) {
    auto kernel = torch::randn({3, 2, k, k}, torch::kDouble);
    const int64_t n = 6;
    // Circular convolution as a matrix: periodic padding, then a valid convolution.
    const int64_t p = k / 2;
    auto basis = torch::eye(2 * n * n, torch::kDouble).view({-1, 2, n, n});
    auto padded = torch::nn::functional::pad(
        basis, torch::nn::functional::PadFuncOptions({p, p, p, p}).mode(torch::kCircular));
    auto m = torch::conv2d(padded, kernel).reshape({2 * n * n, -1}).t();
    EXPECT_NEAR(circular_conv_norm(kernel, n, n), spectral_norm_exact(m), 1e-10) << "k=" << k;
  }
}

TEST(ConvNorm, ZeroPaddedBoundIsAtLeastTheExactNormAndClose) {
  torch::manual_seed(24);
  for (int64_t k : {1, 3, 5}) {
    for (int64_t pad = 0; pad < k; ++pad) {
      for (int64_t size : {1, 2, 5, 12}) {
        if (size + 2 * pad < k) continue;
        auto kernel = torch::randn({4, 3, k, k}, torch::kDouble);
        const double exact = spectral_norm_exact(conv2d_matrix(kernel, size, size, pad));
        const double bound = conv2d_norm_bound(kernel, size, size, pad);
        EXPECT_GE(bound, exact) << "k=" << k << " pad=" << pad << " size=" << size;
        // small operators are also bounded through the unrolled matrix: tight
        EXPECT_LE(bound, exact * (1 + 1e-6)) << "k=" << k << " pad=" << pad << " size=" << size;
        if (size == 12 && pad == k / 2) {  // the circular embedding alone is close too
          EXPECT_LE(circular_conv_norm(kernel, size + pad, size + pad), exact * 1.05) << "k=" << k;
        }
      }
    }
  }
}

TEST(PowerIteration, ConvergesToTheExactNormFromBelow) {
  torch::manual_seed(25);
  auto w = torch::randn({12, 9}, torch::kDouble);
  auto u = torch::randn({9}, torch::kDouble);
  const double exact = spectral_norm_exact(w);
  const double first = power_iteration_dense(w, u, 1).item<double>();
  const double converged = power_iteration_dense(w, u, 500).item<double>();
  EXPECT_LE(first, exact + 1e-12);
  EXPECT_LE(converged, exact + 1e-12);
  EXPECT_NEAR(converged, exact, 1e-8 * exact);

  auto kernel = torch::randn({4, 3, 3, 3}, torch::kDouble);
  auto uc = torch::randn({1, 3, 6, 6}, torch::kDouble);
  const double conv_exact = spectral_norm_exact(conv2d_matrix(kernel, 6, 6, 1));
  const double conv_est = power_iteration_conv(kernel, uc, 1, 2000).item<double>();
  EXPECT_LE(conv_est, conv_exact + 1e-12);
  EXPECT_NEAR(conv_est, conv_exact, 1e-6 * conv_exact);
}

TEST(PowerIteration, EstimateIsDifferentiableInTheWeight) {
  // d||W u|| / dW = (W u / ||W u||) u^T
  torch::manual_seed(26);
  auto w = torch::randn({5, 4}, torch::kDouble).requires_grad_(true);
  auto u = torch::randn({4}, torch::kDouble);
  auto sigma = power_iteration_dense(w, u, 3);
  sigma.backward();
  auto wu = torch::mv(w.detach(), u);
  auto expected = torch::outer(wu / wu.norm(), u);
  EXPECT_LE((w.grad() - expected).abs().max().item<double>(), 1e-12);
}

TEST(ModelBound, MultipliesTheLayersBoundsAndRefusesUnknownLayers) {
  torch::nn::Sequential body(PadChannels(1, 4), SllConv2d(4), SumPool2d(2), torch::nn::Flatten(),
                             SllLinear(16), FirstChannels(3));
  EXPECT_EQ(model_bound(*body, Norm::L2), 1.0);
  EXPECT_EQ(model_bound(*body, Norm::Linf), kNoBound);
  torch::nn::Sequential plain(torch::nn::Linear(4, 3));
  try {
    model_bound(*plain, Norm::L2);
    FAIL() << "a plain Linear has no bound";
  } catch (const c10::Error& e) {
    EXPECT_NE(std::string(e.what_without_backtrace()).find("torch::nn::Linear"), std::string::npos)
        << e.what_without_backtrace();
  }
}

}  // namespace

namespace {

using lipkit::lipschitz::BoundMethod;

TEST(GramIteration, ConvInTheFourierDomainBoundsTheCircularAndZeroPaddedNorms) {
  torch::manual_seed(40);
  for (int64_t k : {1, 3, 5}) {
    auto kernel = torch::randn({6, 4, k, k}, torch::kDouble);
    const int64_t n = 10, p = k / 2;
    const double circ = circular_conv_norm(kernel, n + p, n + p);
    const double gram = gram_iteration_conv_bound(kernel, n, n, p, 8);
    EXPECT_GE(gram, circ) << "k=" << k;
    EXPECT_LE(gram, circ * 1.01) << "k=" << k;
    EXPECT_GE(gram, spectral_norm_exact(conv2d_matrix(kernel, n, n, p))) << "k=" << k;
  }
}

// A small ordinary network: every method bounds it from above, the proven ones tightly per layer.
torch::nn::Sequential plain_net() {
  namespace nn = torch::nn;
  nn::Sequential net(nn::Conv2d(nn::Conv2dOptions(2, 4, 3).stride(2).padding(1)), nn::BatchNorm2d(4),
                     nn::ReLU(), nn::AvgPool2d(nn::AvgPool2dOptions(2)), nn::Flatten(), nn::Linear(4 * 2 * 2, 6),
                     nn::Tanh(), nn::Linear(6, 3));
  net->to(torch::kDouble);
  torch::NoGradGuard ng;
  auto* bn = net[1]->as<nn::BatchNorm2dImpl>();
  bn->running_var.uniform_(0.2, 2.0);
  bn->running_mean.normal_();
  bn->weight.normal_();
  return net;
}

TEST(UpperBound, OrdinaryNetworkBoundsAreAboveTheTrueConstantAndTight) {
  torch::manual_seed(41);
  auto net = plain_net();
  net->eval();
  auto f = [&](const torch::Tensor& x) { return net->forward(x); };
  const double lower = empirical_lower_bound(f, torch::randn({16, 2, 8, 8}, torch::kDouble), 200);
  // exact per-layer values for comparison
  auto* conv = net[0]->as<torch::nn::Conv2dImpl>();
  const double conv_exact = spectral_norm_exact(conv2d_matrix(conv->weight, 8, 8, 1, 2));
  auto* bn = net[1]->as<torch::nn::BatchNorm2dImpl>();
  const double bn_exact = (bn->weight / (bn->running_var + bn->options.eps()).sqrt()).abs().max().item<double>();
  for (auto method : {BoundMethod::Gram, BoundMethod::Exact, BoundMethod::Power}) {
    auto r = upper_bound(net, {2, 8, 8}, method);
    ASSERT_EQ(r.layers.size(), 8u);
    EXPECT_GE(r.product, lower) << to_string(method);
    EXPECT_GE(r.layers[0].bound, conv_exact) << to_string(method) << ": strided conv";
    EXPECT_LE(r.layers[0].bound, conv_exact * 1.01) << to_string(method);
    EXPECT_NEAR(r.layers[1].bound, bn_exact, 1e-6 * bn_exact);
    EXPECT_NEAR(r.layers[3].bound, 0.5, 1e-12);  // 2x2 average pooling: 1/2
    EXPECT_EQ(r.proven, method != BoundMethod::Power);
  }
}

TEST(UpperBound, LipkitLayersUseTheirOwnBounds) {
  torch::nn::Sequential net(PadChannels(1, 4), SllConv2d(4), SumPool2d(2), torch::nn::Flatten(), SllLinear(16),
                            NormalizedLinear(16, 3));
  auto r = upper_bound(net, {1, 4, 4}, BoundMethod::Gram);
  EXPECT_EQ(r.layers.size(), 6u);
  EXPECT_NEAR(r.product, net[5]->as<NormalizedLinearImpl>()->lipschitz_bound(Norm::L2), 1e-12);
}

TEST(UpperBound, RefusesUnsupportedLayersByName) {
  torch::nn::Sequential net(torch::nn::Flatten(), torch::nn::Softmax(1));
  try {
    upper_bound(net, {4}, BoundMethod::Gram);
    FAIL() << "softmax has no supported bound";
  } catch (const c10::Error& e) {
    EXPECT_NE(std::string(e.what_without_backtrace()).find("torch::nn::Softmax"), std::string::npos)
        << e.what_without_backtrace();
  }
  // a layer option without a proven bound is refused by name, not approximated
  torch::nn::Sequential even(torch::nn::Conv2d(torch::nn::Conv2dOptions(4, 4, 4).padding(torch::kSame)));
  EXPECT_THROW(upper_bound(even, {4, 30, 30}, BoundMethod::Gram), c10::Error);
}

TEST(UpperBound, WholeModelBoundCertifiesAPlainNetwork) {
  torch::manual_seed(42);
  auto net = plain_net();
  auto r = upper_bound(net, {2, 8, 8}, BoundMethod::Gram);
  auto x = torch::rand({5, 2, 8, 8}, torch::kDouble);
  net->eval();
  auto logits = net->forward(x).detach();
  auto y = logits.argmax(1);
  auto radius = lipkit::certify::certified_radius(net, x, y, Norm::L2, r.product);
  auto top2 = std::get<0>(logits.topk(2, 1));
  auto expected = ((top2.select(1, 0) - top2.select(1, 1)) -
                   lipkit::certify::margin_slack(torch::kDouble) * (1 + logits.abs().max().item<double>())) /
                  (std::sqrt(2.0) * r.product);
  EXPECT_LE((radius - expected.clamp_min(0)).abs().max().item<double>(), 1e-12);
  // and without a computed bound the plain network is refused
  EXPECT_THROW(lipkit::certify::certified_radius(net, x, y, Norm::L2), c10::Error);
}

}  // namespace

namespace {

TEST(UpperBound, ResidualBlocksCountOnePlusTheirBranch) {
  torch::manual_seed(43);
  namespace nn = torch::nn;
  nn::Sequential branch(nn::Linear(5, 5), nn::ReLU(), nn::Linear(5, 5));
  nn::Sequential net(Residual(branch), Residual(nn::Sequential(SllLinear(5))));
  net->to(torch::kDouble);
  auto r = upper_bound(net, {5}, lipkit::lipschitz::BoundMethod::Exact);
  ASSERT_EQ(r.layers.size(), 2u);
  const double w1 = spectral_norm_exact(branch[0]->as<nn::LinearImpl>()->weight);
  const double w2 = spectral_norm_exact(branch[2]->as<nn::LinearImpl>()->weight);
  EXPECT_NEAR(r.layers[0].bound, 1 + w1 * w2, 1e-6);
  EXPECT_NEAR(r.layers[1].bound, 2.0, 1e-12);  // 1 + a 1-Lipschitz branch
  EXPECT_GE(r.product, lipkit::lipschitz::lower_bound(net, torch::randn({16, 5}, torch::kDouble)));
  EXPECT_DOUBLE_EQ(model_bound(*nn::Sequential(Residual(nn::Sequential(SllLinear(5)))), Norm::L2), 2.0);
}

}  // namespace
