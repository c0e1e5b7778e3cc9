// The hand-written distance kernels against the plain LibTorch reference, in value and gradient,
// on both kernel bodies (AVX2 and portable), at sizes that do not divide the vector, chunk or
// cache-block sizes, with ties, and for p in {1, 2, 2.5, 8, 200, inf}.

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>

#include "lipkit/kernels/dist.h"
#include "support/dist_reference.h"
#include "support/expect_error.h"

namespace lipkit::testing {
namespace {

using kernels::kInf;

struct Shape {
  int64_t B, M, N;
};
// 1031 > one 128-float chunk and not a multiple of any block; 70 rows = two 64-row blocks
const Shape kShapes[] = {{1, 1, 1}, {3, 5, 7}, {5, 7, 37}, {70, 45, 300}, {9, 13, 1031}};

std::string name(const Shape& s) {
  return std::to_string(s.B) + "x" + std::to_string(s.M) + "x" + std::to_string(s.N);
}

// Values and gradients (for a random upstream gradient) of both implementations.
void expect_same(const std::function<torch::Tensor(const torch::Tensor&, const torch::Tensor&)>& op,
                 const std::function<torch::Tensor(const torch::Tensor&, const torch::Tensor&)>& ref,
                 torch::Tensor x, torch::Tensor w, double tol, const std::string& what) {
  auto x1 = x.clone().requires_grad_(true), w1 = w.clone().requires_grad_(true);
  auto x2 = x.clone().requires_grad_(true), w2 = w.clone().requires_grad_(true);
  auto y1 = op(x1, w1), y2 = ref(x2, w2);
  ASSERT_EQ(y1.sizes(), y2.sizes()) << what;
  auto g = torch::randn_like(y1);
  (y1 * g).sum().backward();
  (y2 * g).sum().backward();
  const double scale = 1 + y2.abs().max().item<double>();
  EXPECT_LE((y1 - y2).abs().max().item<double>(), tol * scale) << what << " value";
  EXPECT_LE((x1.grad() - x2.grad()).abs().max().item<double>(), tol * (1 + x2.grad().abs().max().item<double>()))
      << what << " grad x";
  EXPECT_LE((w1.grad() - w2.grad()).abs().max().item<double>(), tol * (1 + w2.grad().abs().max().item<double>()))
      << what << " grad w";
}

// param: AVX2 body allowed (on a CPU without AVX2 both instances run the portable body)
class DistKernels : public ::testing::TestWithParam<bool> {
 protected:
  void SetUp() override { previous_ = kernels::set_avx2_enabled(GetParam()); }
  void TearDown() override { kernels::set_avx2_enabled(previous_); }
  bool previous_ = true;
};

TEST_P(DistKernels, LinfMatchesReferenceFloat64) {
  torch::manual_seed(1);
  for (const auto& s : kShapes) {
    auto x = torch::randn({s.B, s.N}, torch::kDouble), w = torch::randn({s.M, s.N}, torch::kDouble);
    expect_same(kernels::linf_dist, linf_dist_reference, x, w, 1e-12, "linf " + name(s));
  }
}

TEST_P(DistKernels, LinfTiesGoToTheFirstArgMax) {
  torch::manual_seed(2);
  for (const auto& s : kShapes) {
    // small integers: many equal distances and many x_i == w_i (zero subgradient)
    auto x = torch::randint(0, 3, {s.B, s.N}, torch::kDouble);
    auto w = torch::randint(0, 3, {s.M, s.N}, torch::kDouble);
    expect_same(kernels::linf_dist, linf_dist_reference, x, w, 1e-12, "linf ties " + name(s));
  }
}

TEST_P(DistKernels, LpMatchesReferenceFloat64) {
  torch::manual_seed(3);
  for (double p : {1.0, 2.0, 2.5, 8.0, 200.0, 1000.0}) {
    for (const auto& s : kShapes) {
      auto x = torch::randn({s.B, s.N}, torch::kDouble), w = torch::randn({s.M, s.N}, torch::kDouble);
      auto op = [p](const torch::Tensor& a, const torch::Tensor& b) { return kernels::lp_dist(a, b, p); };
      auto ref = [p](const torch::Tensor& a, const torch::Tensor& b) { return lp_dist_reference(a, b, p); };
      expect_same(op, ref, x, w, 1e-10, "p=" + std::to_string(p) + " " + name(s));
    }
  }
}

TEST_P(DistKernels, LpWithTiesAndZeros) {
  torch::manual_seed(4);
  for (double p : {2.0, 8.0}) {
    auto x = torch::randint(0, 3, {6, 77}, torch::kDouble), w = torch::randint(0, 3, {9, 77}, torch::kDouble);
    w[0].copy_(x[0]);  // one pair at distance 0: value 0, gradient 0
    auto op = [p](const torch::Tensor& a, const torch::Tensor& b) { return kernels::lp_dist(a, b, p); };
    auto ref = [p](const torch::Tensor& a, const torch::Tensor& b) { return lp_dist_reference(a, b, p); };
    expect_same(op, ref, x, w, 1e-10, "ties p=" + std::to_string(p));
  }
}

TEST_P(DistKernels, Float32AgreesWithFloat64Reference) {
  torch::manual_seed(5);
  for (double p : {8.0, kInf}) {
    auto x = torch::randn({33, 517}), w = torch::randn({21, 517});
    auto y = kernels::lp_dist(x, w, p).to(torch::kDouble);
    auto r = lp_dist_reference(x.to(torch::kDouble), w.to(torch::kDouble), std::isinf(p) ? 1e6 : p);
    if (std::isinf(p)) r = linf_dist_reference(x.to(torch::kDouble), w.to(torch::kDouble));
    EXPECT_LE((y - r).abs().max().item<double>(), 1e-5 * (1 + r.abs().max().item<double>())) << p;
  }
}

// At large p most terms (|d_i| / max)^p fall below the smallest normal float; the kernel drops them
// (subnormal arithmetic is 20x slower on some CPUs). Value and gradients must still match float64.
TEST_P(DistKernels, LargePFloat32MatchesFloat64InValueAndGradient) {
  torch::manual_seed(6);
  for (double p : {200.0, 999.0, 1000.0}) {
    auto x = torch::rand({37, 300}), w = torch::rand({19, 300});
    x[0].copy_(w[0]);  // a zero distance
    x[1].copy_(w[1]);
    x[1][7] += 0.5;  // one nonzero coordinate: every other term is exactly 0
    auto gy = torch::randn({37, 19});
    auto x1 = x.clone().requires_grad_(true), w1 = w.clone().requires_grad_(true);
    auto x2 = x.to(torch::kDouble).requires_grad_(true), w2 = w.to(torch::kDouble).requires_grad_(true);
    auto y1 = kernels::lp_dist(x1, w1, p), y2 = lp_dist_reference(x2, w2, p);
    (y1 * gy).sum().backward();
    (y2 * gy.to(torch::kDouble)).sum().backward();
    const std::string at = "p=" + std::to_string(p);
    EXPECT_LE((y1.to(torch::kDouble) - y2).abs().max().item<double>(), 1e-5 * (1 + y2.abs().max().item<double>())) << at;
    for (auto [g1, g2] : {std::pair{x1.grad(), x2.grad()}, std::pair{w1.grad(), w2.grad()}})
      EXPECT_LE((g1.to(torch::kDouble) - g2).abs().max().item<double>(), 1e-4 * (1 + g2.abs().max().item<double>())) << at;
  }
}

TEST_P(DistKernels, SortNeuronMatchesReference) {
  torch::manual_seed(6);
  for (int64_t k : {1, 3, 10}) {
    for (const auto& s : kShapes) {
      if (s.N < k) continue;
      for (bool ties : {false, true}) {
        auto x = ties ? torch::randint(0, 3, {s.B, s.N}, torch::kDouble) : torch::randn({s.B, s.N}, torch::kDouble);
        auto w = ties ? torch::randint(0, 3, {s.M, s.N}, torch::kDouble) : torch::randn({s.M, s.N}, torch::kDouble);
        auto op = [k](const torch::Tensor& a, const torch::Tensor& b) { return kernels::sort_neuron(a, b, 0.7, k); };
        auto ref = [k](const torch::Tensor& a, const torch::Tensor& b) { return sort_neuron_reference(a, b, 0.7, k); };
        expect_same(op, ref, x, w, 1e-12, "sort k=" + std::to_string(k) + " " + name(s) + (ties ? " ties" : ""));
      }
    }
  }
}

// Float32 on the blocked path (top k of 1031 and 2000 wide rows, ties included) against the
// reference in float32: the same selected values summed in the same order, so equal to rounding.
TEST_P(DistKernels, SortNeuronFloat32MatchesReference) {
  torch::manual_seed(12);
  for (int64_t n : {1031, 2000}) {
    for (bool ties : {false, true}) {
      auto x = ties ? torch::randint(0, 4, {11, n}, torch::kFloat) : torch::randn({11, n});
      auto w = ties ? torch::randint(0, 4, {9, n}, torch::kFloat) : torch::randn({9, n});
      auto op = [](const torch::Tensor& a, const torch::Tensor& b) { return kernels::sort_neuron(a, b, 0.7, 10); };
      auto ref = [](const torch::Tensor& a, const torch::Tensor& b) { return sort_neuron_reference(a, b, 0.7, 10); };
      expect_same(op, ref, x, w, 1e-5, "sort float32 n=" + std::to_string(n) + (ties ? " ties" : ""));
    }
  }
}

// The tiled evaluation path at its edges: k = 1 and k = 64 (the largest), few and many candidates
// above the floor (many ties at the k-th value: over 256 of them take the sorted insertion), a
// batch that does not fill the 4-row tile, and widths that leave partial blocks and vectors.
TEST_P(DistKernels, SortNeuronTiledPathEdgeCases) {
  torch::manual_seed(13);
  struct Case {
    int64_t B, M, N, k, levels;  // levels > 0: integer data in [0, levels), so many ties
  };
  for (const auto& c : {Case{5, 17, 64, 1, 0}, Case{3, 33, 2000, 64, 0}, Case{6, 9, 1031, 20, 0},
                        Case{7, 19, 2000, 10, 2}, Case{2, 21, 999, 10, 3}}) {
    for (auto dtype : {torch::kFloat, torch::kDouble}) {
      auto make = [&](int64_t rows) {
        return c.levels ? torch::randint(0, c.levels, {rows, c.N}, dtype) : torch::randn({rows, c.N}, dtype);
      };
      auto x = make(c.B), w = make(c.M);
      auto op = [&](const torch::Tensor& a, const torch::Tensor& b) { return kernels::sort_neuron(a, b, 0.7, c.k); };
      auto ref = [&](const torch::Tensor& a, const torch::Tensor& b) { return sort_neuron_reference(a, b, 0.7, c.k); };
      expect_same(op, ref, x, w, dtype == torch::kFloat ? 1e-5 : 1e-12,
                  "sort " + std::to_string(c.N) + " k=" + std::to_string(c.k) + " levels=" + std::to_string(c.levels));
    }
  }
}

// Box bounds on the tiled path (wide rows), in float and double, with and without ties: the upper
// bound is the neuron at the per-coordinate farthest corner, the lower one at clamp(w, l, u).
TEST_P(DistKernels, BoxBoundsOnTheTiledPathAreExact) {
  torch::manual_seed(14);
  for (int64_t k : {1, 10, 64}) {
    for (bool ties : {false, true}) {
      for (auto dtype : {torch::kFloat, torch::kDouble}) {
        const int64_t N = 1031;
        auto c = ties ? torch::randint(0, 4, {5, N}, dtype) : torch::randn({5, N}, dtype);
        auto r = ties ? torch::full({5, N}, 0.5, dtype) : torch::rand({5, N}, dtype) * 0.1;
        auto lo = c - r, hi = c + r;
        auto w = ties ? torch::randint(0, 4, {11, N}, dtype) : torch::randn({11, N}, dtype);
        auto [ylo, yhi] = kernels::sort_neuron_bounds(lo, hi, w, 0.7, k);
        const double tol = dtype == torch::kFloat ? 1e-5 : 1e-12;
        const std::string at = "k=" + std::to_string(k) + (ties ? " ties" : "") + (dtype == torch::kFloat ? " float" : "");
        for (int64_t m = 0; m < 11; ++m) {
          auto far = torch::where((hi - w[m]).abs() >= (lo - w[m]).abs(), hi, lo);
          auto near = torch::max(torch::min(w[m].expand_as(lo), hi), lo);
          auto wm = w.narrow(0, m, 1);
          EXPECT_TRUE(torch::allclose(kernels::sort_neuron(far, wm, 0.7, k).squeeze(1), yhi.select(1, m), tol, tol)) << at;
          EXPECT_TRUE(torch::allclose(kernels::sort_neuron(near, wm, 0.7, k).squeeze(1), ylo.select(1, m), tol, tol)) << at;
        }
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Bodies, DistKernels, ::testing::Values(true, false),
                         [](const auto& info) { return info.param ? "avx2" : "portable"; });

TEST(DistKernels, SortNeuronWithQOneIsTheLinfNeuron) {
  torch::manual_seed(7);
  auto x = torch::randn({8, 50}, torch::kDouble), w = torch::randn({6, 50}, torch::kDouble);
  EXPECT_TRUE(torch::allclose(kernels::sort_neuron(x, w, 1.0, 10), kernels::linf_dist(x, w)));
}

// The random-subset identity behind SortNet training: E_S[max_{i in S} z_i] with each i kept
// independently with probability q equals sum_k q (1-q)^(k-1) z_(k).
TEST(DistKernels, RandomSubsetMaxEqualsGeometricSortNeuron) {
  torch::manual_seed(8);
  const double q = 0.7;
  const int64_t n = 12;
  auto x = torch::randn({1, n}, torch::kDouble), w = torch::zeros({1, n}, torch::kDouble);
  const double exact = kernels::sort_neuron(x, w, q, n).item<double>() * (1 - std::pow(1 - q, double(n)));
  const int64_t draws = 200000;
  auto keep = torch::rand({draws, n}, torch::kDouble) < q;
  auto z = x.abs().expand({draws, n}).masked_fill(~keep, 0.0);  // an empty subset contributes 0
  const double mc = z.amax(1).mean().item<double>();
  const double se = z.amax(1).std().item<double>() / std::sqrt(double(draws));
  EXPECT_NEAR(mc, exact, 5 * se);
}

// Bounds over a box are exact: the upper one is reached at the per-coordinate farthest corner, the
// lower one at clamp(w, l, u); and random points inside stay within them.
TEST(DistKernels, BoxBoundsAreExactAndContainSamples) {
  torch::manual_seed(9);
  for (int64_t k : {1, 5}) {
    const double q = k == 1 ? 1.0 : 0.6;
    auto c = torch::rand({4, 40}, torch::kDouble), r = torch::rand({4, 40}, torch::kDouble) * 0.2;
    auto lo = c - r, hi = c + r;
    auto w = torch::rand({7, 40}, torch::kDouble);
    auto [ylo, yhi] = kernels::sort_neuron_bounds(lo, hi, w, q, k);
    for (int64_t m = 0; m < 7; ++m) {
      auto far = torch::where((hi - w[m]).abs() >= (lo - w[m]).abs(), hi, lo);
      auto near = torch::max(torch::min(w[m].expand_as(lo), hi), lo);
      auto wm = w.narrow(0, m, 1);
      EXPECT_TRUE(torch::allclose(kernels::sort_neuron(far, wm, q, k).squeeze(1), yhi.select(1, m), 0, 1e-12));
      EXPECT_TRUE(torch::allclose(kernels::sort_neuron(near, wm, q, k).squeeze(1), ylo.select(1, m), 0, 1e-12));
    }
    for (int t = 0; t < 20; ++t) {
      auto x = lo + (hi - lo) * torch::rand_like(lo);
      auto y = kernels::sort_neuron(x, w, q, k);
      EXPECT_TRUE((y >= ylo).all().item<bool>() && (y <= yhi).all().item<bool>());
    }
  }
}

// Transposed and strided views give the same values and gradients as contiguous copies.
TEST(DistKernels, NonContiguousInputsMatchTheReference) {
  torch::manual_seed(10);
  auto x = torch::randn({40, 9}, torch::kDouble).t();            // (9, 40), transposed
  auto w = torch::randn({7, 80}, torch::kDouble).slice(1, 0, 80, 2);  // (7, 40), every other column
  ASSERT_FALSE(x.is_contiguous());
  ASSERT_FALSE(w.is_contiguous());
  expect_same(kernels::linf_dist, linf_dist_reference, x, w, 1e-12, "linf non-contiguous");
  auto lp = [](const torch::Tensor& a, const torch::Tensor& b) { return kernels::lp_dist(a, b, 3.0); };
  auto lp_ref = [](const torch::Tensor& a, const torch::Tensor& b) { return lp_dist_reference(a, b, 3.0); };
  expect_same(lp, lp_ref, x, w, 1e-10, "lp non-contiguous");
  auto sort = [](const torch::Tensor& a, const torch::Tensor& b) { return kernels::sort_neuron(a, b, 0.7, 5); };
  auto sort_ref = [](const torch::Tensor& a, const torch::Tensor& b) { return sort_neuron_reference(a, b, 0.7, 5); };
  expect_same(sort, sort_ref, x, w, 1e-12, "sort non-contiguous");
}

// The chunked LibTorch path of other devices, forced on the CPU, against the reference.
TEST(DistKernels, ChunkedFallbackMatchesTheReference) {
  torch::manual_seed(11);
  const bool previous = kernels::set_chunked_fallback(true);
  auto x = torch::randn({33, 300}, torch::kDouble), w = torch::randn({70, 300}, torch::kDouble);
  expect_same(kernels::linf_dist, linf_dist_reference, x, w, 1e-12, "linf chunked");
  for (double p : {1.0, 2.5, 8.0}) {
    auto lp = [p](const torch::Tensor& a, const torch::Tensor& b) { return kernels::lp_dist(a, b, p); };
    auto lp_ref = [p](const torch::Tensor& a, const torch::Tensor& b) { return lp_dist_reference(a, b, p); };
    expect_same(lp, lp_ref, x, w, 1e-10, "lp chunked p=" + std::to_string(p));
  }
  auto sort = [](const torch::Tensor& a, const torch::Tensor& b) { return kernels::sort_neuron(a, b, 0.7, 10); };
  auto sort_ref = [](const torch::Tensor& a, const torch::Tensor& b) { return sort_neuron_reference(a, b, 0.7, 10); };
  expect_same(sort, sort_ref, x, w, 1e-12, "sort chunked");
  kernels::set_chunked_fallback(previous);
}

TEST(DistKernels, DoubleBackwardIsRefusedByName) {
  auto x = torch::randn({3, 6}, torch::kDouble).requires_grad_(true);
  auto w = torch::randn({4, 6}, torch::kDouble).requires_grad_(true);
  for (double p : {kInf, 4.0}) {
    auto y = kernels::lp_dist(x, w, p).sum();
    expect_error([&] { torch::autograd::grad({y}, {x}, {}, /*retain_graph=*/true, /*create_graph=*/true); },
                 {"dist", "double backward", "not implemented"});
    EXPECT_TRUE(torch::autograd::grad({y}, {x})[0].defined()) << "first derivatives still work";
  }
  auto y = kernels::sort_neuron(x, w, 0.7, 3).sum();
  expect_error([&] { torch::autograd::grad({y}, {x}, {}, true, true); }, {"sort_neuron", "double backward"});
}

TEST(DistKernels, BadInputsNameTheProblem) {
  auto w = torch::randn({4, 10});
  expect_error([&] { kernels::linf_dist(torch::randn({3, 9}), w); }, {"linf_dist", "9 features", "expects 10"});
  expect_error([&] { kernels::linf_dist(torch::randn({3, 2, 5}), w); }, {"(batch, in_features)"});
  expect_error([&] { kernels::linf_dist(torch::randn({3, 10}, torch::kDouble), w); }, {"dtype"});
  auto nan = torch::randn({3, 10});
  nan[1][2] = std::nan("");
  expect_error([&] { kernels::lp_dist(nan, w, 8.0, "LinfDistLinear"); }, {"LinfDistLinear", "NaN"});
  expect_error([&] { kernels::lp_dist(torch::randn({3, 10}), w, 0.5); }, {"p must be >= 1"});
  expect_error([&] { kernels::sort_neuron(torch::randn({3, 10}), w, 0.0, 3); }, {"q"});
  expect_error([&] { kernels::sort_neuron(torch::randn({3, 10}), w, 0.5, 11); }, {"k must be"});
}

}  // namespace
}  // namespace lipkit::testing
