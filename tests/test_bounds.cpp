// Norm computations: estimates from below, proven bounds from above, both against exact values.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "lipkit/lipkit.h"

using namespace lipkit;
using namespace lipkit::lipschitz;

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
