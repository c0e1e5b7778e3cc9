// The direct float64 convolution against LibTorch's torch::conv2d (the plain reference), on both
// kernel bodies (AVX2 and portable), at widths that leave column tails, channel counts that leave
// output-channel tails, kernel sides 1, 3, 5 and every padding; and where the dispatch uses it.

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "lipkit/kernels/conv2d.h"
#include "lipkit/kernels/dist.h"
#include "lipkit/linalg/conv_adjoint.h"
#include "support/expect_error.h"

namespace lipkit::testing {
namespace {

struct Case {
  int64_t n, ci, co, h, w, k;
};
// 37: 4 vector pairs of 8 and a tail of 5; 5, 7 and 30 output channels: blocks of 4 and a tail
const Case kCases[] = {{1, 1, 1, 1, 1, 1}, {2, 3, 5, 7, 9, 3}, {3, 30, 5, 32, 32, 3}, {2, 5, 30, 32, 32, 3},
                       {1, 7, 7, 13, 37, 5}, {2, 4, 8, 16, 16, 1}};

TEST(ConvKernel, DirectEqualsLibTorchOnBothBodies) {
  torch::manual_seed(40);
  for (const bool avx2 : {true, false}) {
    const bool before = kernels::set_avx2_enabled(avx2);
    for (const auto& c : kCases)
      for (int64_t p = 0; p < c.k; ++p) {
        auto x = torch::randn({c.n, c.ci, c.h, c.w}, torch::kDouble);
        auto w = torch::randn({c.co, c.ci, c.k, c.k}, torch::kDouble);
        auto b = torch::randn({c.co}, torch::kDouble);
        if (c.h + 2 * p < c.k || c.w + 2 * p < c.k) continue;
        auto ref = torch::conv2d(x, w, b, 1, p);
        auto got = kernels::conv2d_direct(x, w, b, p);
        ASSERT_EQ(got.sizes(), ref.sizes());
        EXPECT_TRUE(torch::allclose(got, ref, 1e-12, 1e-12))
            << "ci " << c.ci << " co " << c.co << " " << c.h << "x" << c.w << " k " << c.k << " p " << p << " avx2 " << avx2
            << ": max diff " << (got - ref).abs().max().item<double>();
        EXPECT_TRUE(torch::allclose(kernels::conv2d_direct(x, w, {}, p), torch::conv2d(x, w, {}, 1, p), 1e-12, 1e-12));
      }
    kernels::set_avx2_enabled(before);
  }
}

TEST(ConvKernel, DispatchUsesTheKernelOnlyWithoutGradientsAndKeepsTheAdjoint) {
  torch::manual_seed(41);
  auto x = torch::randn({2, 6, 10, 10}, torch::kDouble), w = torch::randn({3, 6, 3, 3}, torch::kDouble);
  auto y = torch::randn({2, 3, 10, 10}, torch::kDouble);
  EXPECT_TRUE(torch::allclose(kernels::conv2d_adjoint(y, w, 1), torch::conv_transpose2d(y, w, {}, 1, 1), 1e-12, 1e-12));
  // with a gradient recorded: LibTorch's convolution, and the gradient flows
  auto wg = w.clone().requires_grad_(true);
  kernels::conv2d(x, wg, {}, 1).sum().backward();
  EXPECT_TRUE(wg.grad().defined());
  expect_error([&] { kernels::conv2d_direct(x, wg, {}, 1); }, {"forward only"});
  expect_error([&] { kernels::conv2d_direct(x.to(torch::kFloat), w, {}, 1); }, {"float64"});
  expect_error([&] { kernels::conv2d_direct(x, w.narrow(1, 0, 5), {}, 1); }, {"square kernel", "[3, 5, 3, 3]"});
  expect_error([&] { kernels::conv2d_direct(x, w, torch::zeros({4}, torch::kDouble), 1); }, {"bias", "3 output channels"});
  // float32 stays on LibTorch (oneDNN): same values as torch::conv2d exactly
  auto xf = x.to(torch::kFloat), wf = w.to(torch::kFloat);
  EXPECT_TRUE(torch::equal(kernels::conv2d(xf, wf, {}, 1), torch::conv2d(xf, wf, {}, 1, 1)));
}

}  // namespace
}  // namespace lipkit::testing
