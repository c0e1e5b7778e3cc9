// The direct float64 convolution against LibTorch's torch::conv2d (the plain reference), on every
// kernel body (AVX-512 where the CPU has it, AVX2, portable), at widths that leave column tails, channel
// counts that leave output-channel tails, kernel sides 1, 3, 5 and every padding; and where the
// dispatch uses it.

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <string>

#include "lipkit/kernels/conv2d.h"
#include "lipkit/kernels/dist.h"
#include "lipkit/linalg/conv_adjoint.h"
#include "support/expect_error.h"

namespace lipkit::testing {
namespace {

struct Case {
  int64_t n, ci, co, h, w, k;
};
// Widths 37 and 50: blocks of 4 vectors of 8, then of 2, then one, the last partial (AVX-512), or
// pairs of 4 and a tail (AVX2); 7, 8 and 30 output channels: blocks of 5 and a tail
const Case kCases[] = {{1, 1, 1, 1, 1, 1}, {2, 3, 5, 7, 9, 3}, {3, 30, 5, 32, 32, 3}, {2, 5, 30, 32, 32, 3},
                       {1, 7, 7, 13, 37, 5}, {2, 4, 8, 16, 16, 1}, {1, 3, 8, 5, 50, 3}};

enum class Body { avx512, avx2, portable };
const char* name(Body b) { return b == Body::avx512 ? "avx512" : b == Body::avx2 ? "avx2" : "portable"; }

// Selects a kernel body for the scope (AVX-512 runs the AVX2 body on a CPU without it).
class UseBody {
 public:
  explicit UseBody(Body b)
      : avx2_(kernels::set_avx2_enabled(b != Body::portable)), avx512_(kernels::set_avx512_enabled(b == Body::avx512)) {}
  ~UseBody() {
    kernels::set_avx2_enabled(avx2_);
    kernels::set_avx512_enabled(avx512_);
  }

 private:
  bool avx2_, avx512_;
};

// body(c, p, x, w, b, label) on every kernel body, for every case and every padding that leaves an
// output, with random float64 x, kernel and bias; label names them.
template <typename F>
void for_each_case(F body) {
  for (const Body kind : {Body::avx512, Body::avx2, Body::portable}) {
    UseBody use(kind);
    for (const auto& c : kCases)
      for (int64_t p = 0; p < c.k; ++p) {
        if (c.h + 2 * p < c.k || c.w + 2 * p < c.k) continue;
        auto x = torch::randn({c.n, c.ci, c.h, c.w}, torch::kDouble);
        auto w = torch::randn({c.co, c.ci, c.k, c.k}, torch::kDouble), b = torch::randn({c.co}, torch::kDouble);
        const std::string label = "ci " + std::to_string(c.ci) + " co " + std::to_string(c.co) + " " +
                                  std::to_string(c.h) + "x" + std::to_string(c.w) + " k " + std::to_string(c.k) +
                                  " p " + std::to_string(p) + " body " + name(kind);
        body(c, p, x, w, b, label);
      }
  }
}

TEST(ConvKernel, DirectEqualsLibTorchOnEveryBody) {
  torch::manual_seed(40);
  for_each_case([](const Case&, int64_t p, const torch::Tensor& x, const torch::Tensor& w, const torch::Tensor& b,
                   const std::string& label) {
    auto ref = torch::conv2d(x, w, b, 1, p);
    auto got = kernels::conv2d_direct(x, w, b, p);
    ASSERT_EQ(got.sizes(), ref.sizes()) << label;
    EXPECT_TRUE(torch::allclose(got, ref, 1e-12, 1e-12))
        << label << ": max diff " << (got - ref).abs().max().item<double>();
    EXPECT_TRUE(torch::allclose(kernels::conv2d_direct(x, w, {}, p), torch::conv2d(x, w, {}, 1, p), 1e-12, 1e-12))
        << label;
  });
}

// The AVX-512 and AVX2 bodies sum each output in the same order with FMA: a certificate computed on
// one CPU is the one computed on the other, bit for bit.
TEST(ConvKernel, Avx512BodyGivesTheAvx2BodysBits) {
  if (!kernels::avx512_available()) GTEST_SKIP() << "this CPU has no AVX-512F";
  torch::manual_seed(44);
  for (const auto& c : kCases) {
    auto x = torch::randn({c.n, c.ci, c.h, c.w}, torch::kDouble);
    auto w = torch::randn({c.co, c.ci, c.k, c.k}, torch::kDouble), b = torch::randn({c.co}, torch::kDouble);
    const int64_t p = c.k / 2;
    auto step = torch::full({}, 0.37, torch::kDouble);
    torch::Tensor direct[2], residual[2];
    for (const Body kind : {Body::avx512, Body::avx2}) {
      UseBody use(kind);
      direct[kind == Body::avx2] = kernels::conv2d_direct(x, w, b, p);
      residual[kind == Body::avx2] = kernels::conv2d_residual(x, w, b, p, step, 2.0);
    }
    EXPECT_TRUE(torch::equal(direct[0], direct[1])) << "ci " << c.ci << " co " << c.co << " w " << c.w;
    EXPECT_TRUE(torch::equal(residual[0], residual[1])) << "ci " << c.ci << " co " << c.co << " w " << c.w;
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

// The fused CPL/SLL map rounds exactly as the expression (relu, then the scale, then x - alpha update),
// on both bodies. Negative scales tell relu-then-scale from scale-then-relu.
TEST(ConvKernel, FusedResidualEqualsTheExpressionBitwise) {
  torch::manual_seed(42);
  for_each_case([](const Case& c, int64_t p, const torch::Tensor& x, const torch::Tensor& w, const torch::Tensor& b,
                   const std::string& label) {
    auto step = torch::full({}, 0.37, torch::kDouble), per_channel = torch::randn({c.co}, torch::kDouble);
    for (const double alpha : {1.0, 2.0}) {
      auto expect = [&](const torch::Tensor& bias, const torch::Tensor& scale) {
        auto r = torch::relu(kernels::conv2d_direct(x, w, bias, p)) * (scale.dim() ? scale.view({1, -1, 1, 1}) : scale);
        return x - alpha * kernels::conv2d_adjoint(r, w, p);
      };
      EXPECT_TRUE(torch::equal(kernels::conv2d_residual(x, w, b, p, step, alpha), expect(b, step)))
          << label << " alpha " << alpha;
      EXPECT_TRUE(torch::equal(kernels::conv2d_residual(x, w, {}, p, per_channel, alpha), expect({}, per_channel)))
          << label << " alpha " << alpha;
    }
    // and the LibTorch reference (transposed convolution for the adjoint)
    auto ref = x - torch::conv_transpose2d(torch::relu(torch::conv2d(x, w, b, 1, p)) * 0.37, w, {}, 1, p);
    EXPECT_TRUE(torch::allclose(kernels::conv2d_residual(x, w, b, p, step, 1.0), ref, 1e-12, 1e-12)) << label;
  });
}

TEST(ConvKernel, FusedResidualFallsBackWithGradientsAndRefusesBadArguments) {
  torch::manual_seed(43);
  auto x = torch::randn({2, 6, 10, 10}, torch::kDouble), w = torch::randn({3, 6, 3, 3}, torch::kDouble);
  auto step = torch::full({}, 0.5, torch::kDouble);
  // with a gradient recorded: the LibTorch expression, and the gradient flows through both passes
  auto wg = w.clone().requires_grad_(true);
  kernels::conv2d_residual(x, wg, {}, 1, step, 2.0).sum().backward();
  ASSERT_TRUE(wg.grad().defined());
  EXPECT_GT(wg.grad().abs().sum().item<double>(), 0.0);
  // float32 runs the expression too
  auto xf = x.to(torch::kFloat), wf = w.to(torch::kFloat);
  EXPECT_TRUE(torch::equal(kernels::conv2d_residual(xf, wf, {}, 1, step.to(torch::kFloat), 1.0),
                           xf - kernels::conv2d_adjoint(torch::relu(torch::conv2d(xf, wf, {}, 1, 1)) * 0.5f, wf, 1)));
  expect_error([&] { kernels::conv2d_residual(x, w, {}, 1, step, 3.0); }, {"alpha must be 1 or 2", "3"});
  expect_error([&] { kernels::conv2d_residual(x, w, {}, 1, torch::ones({4}, torch::kDouble), 1.0); },
               {"scale", "[4]", "[3, 6, 3, 3]"});
  expect_error([&] { kernels::conv2d_residual(x, w, torch::ones({4}, torch::kDouble), 1, step, 1.0); },
               {"bias", "[4]", "3 output channels"});
  expect_error([&] { kernels::conv2d_residual(x, w, {}, 3, step, 1.0); }, {"padding", "3"});
  expect_error([&] { kernels::conv2d_residual(x.narrow(2, 0, 1), w, {}, 0, step, 1.0); },
               {"leaves no output", "[2, 6, 1, 10]"});
  // an empty batch is an empty result
  EXPECT_EQ(kernels::conv2d_residual(x.narrow(0, 0, 0), w, {}, 1, step, 1.0).sizes(), x.narrow(0, 0, 0).sizes());
}

}  // namespace
}  // namespace lipkit::testing
