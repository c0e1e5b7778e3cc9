// The checkers must measure correctly and must catch violators: a test that cannot fail is a defect.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "lipkit/lipkit.h"
#include "support/lipschitz_check.h"

using namespace lipkit;
using namespace lipkit::testing;

namespace {

constexpr double kTol = 1e-4;  // the tolerance the layer tests use

torch::Tensor random_orthogonal(int64_t n) {
  // QR in float64 (torch::nn::init::orthogonal_ works in float32 precision)
  return std::get<0>(torch::linalg::qr(torch::randn({n, n}, torch::kDouble), "reduced"));
}

TEST(LipschitzChecker, JacobianNormIsExactForLinearMaps) {
  torch::manual_seed(3);
  auto w = torch::randn({5, 7}, torch::kDouble);
  auto f = [&](const torch::Tensor& x) { return torch::mm(x, w.t()); };
  EXPECT_NEAR(jacobian_norm(f, torch::randn({7}, torch::kDouble)), linalg::spectral_norm_exact(w),
              1e-10);
  EXPECT_NEAR(jacobian_norm(f, torch::randn({7}, torch::kDouble), Norm::Linf),
              w.abs().sum(1).max().item<double>(), 1e-10);
}

TEST(LipschitzChecker, IsometryMeasuresOne) {
  torch::manual_seed(4);
  auto q = random_orthogonal(6);
  auto f = [&](const torch::Tensor& x) { return torch::mm(x, q.t()); };
  auto r = measure_lipschitz(f, {6}, torch::kDouble);
  EXPECT_NEAR(r.jacobian, 1.0, 1e-10);
  EXPECT_NEAR(r.pairs, 1.0, 1e-10);
  EXPECT_NEAR(r.ascent, 1.0, 1e-10);
}

// Negative control for all three checkers: a uniform 1% stretch is a violation each must report.
TEST(LipschitzChecker, CatchesUniformOnePercentStretch) {
  torch::manual_seed(5);
  auto w = 1.01 * random_orthogonal(6);
  auto f = [&](const torch::Tensor& x) { return torch::mm(x, w.t()); };
  auto r = measure_lipschitz(f, {6}, torch::kDouble);
  EXPECT_GT(r.jacobian, 1.0 + kTol);
  EXPECT_GT(r.pairs, 1.0 + kTol);
  EXPECT_GT(r.ascent, 1.0 + kTol);
}

// Negative control: an unnormalized plain convolution with operator norm 1.05.
TEST(LipschitzChecker, CatchesPlainConvWithNormAboveOne) {
  torch::manual_seed(6);
  auto k = torch::randn({4, 3, 3, 3}, torch::kDouble);
  k = k * (1.05 / linalg::spectral_norm_exact(linalg::conv2d_matrix(k, 5, 5, 1)));
  auto f = [&](const torch::Tensor& x) { return torch::conv2d(x, k, {}, 1, 1); };
  EXPECT_NEAR(jacobian_norm(f, torch::randn({3, 5, 5}, torch::kDouble)), 1.05, 1e-9);
  EXPECT_GT(ascent_ratio(f, {3, 5, 5}, 8, 150, torch::kDouble), 1.0 + kTol);
}

// Negative control with a realistic bug: a CPL step 20% above 2/||W||^2 (Lipschitz about 1.4
// where the ReLUs are active). The Jacobian and the ascent must both find it.
TEST(LipschitzChecker, CatchesCplWithTooLargeStep) {
  torch::manual_seed(7);
  auto w = torch::randn({8, 6}, torch::kDouble);
  auto b = torch::full({8}, 3.0, torch::kDouble);
  const double sigma = linalg::spectral_norm_exact(w);
  auto step = torch::full({}, 2.4 / (sigma * sigma), torch::kDouble);
  auto f = [&](const torch::Tensor& x) { return functional::cpl_linear(x, w, b, step); };
  EXPECT_GT(jacobian_norm(f, torch::zeros({6}, torch::kDouble)), 1.3);
  EXPECT_GT(ascent_ratio(f, {6}, 8, 150, torch::kDouble), 1.0 + kTol);
  // The same layer with the correct step passes: the violation is the step, not the checker.
  auto ok_step = torch::full({}, 2.0 / (sigma * sigma), torch::kDouble);
  auto g = [&](const torch::Tensor& x) { return functional::cpl_linear(x, w, b, ok_step); };
  EXPECT_LE(measure_lipschitz(g, {6}, torch::kDouble).max(), 1.0 + kTol);
}

// Negative control for the l_inf measurements: sum pooling is 1-Lipschitz in l2 but 2-Lipschitz in l_inf.
TEST(LipschitzChecker, CatchesSumPoolInLinf) {
  torch::manual_seed(8);
  SumPool2d pool(2);
  auto f = [&](const torch::Tensor& x) { return pool->forward(x); };
  auto r = measure_lipschitz(f, {2, 4, 4}, torch::kDouble, Norm::Linf);
  EXPECT_NEAR(r.jacobian, 2.0, 1e-10);
  EXPECT_GT(r.pairs, 1.0 + kTol);
  EXPECT_GT(r.ascent, 1.0 + kTol);
  EXPECT_EQ(pool->lipschitz_bound(Norm::Linf), 2.0);  // and the layer says so
}

}  // namespace
