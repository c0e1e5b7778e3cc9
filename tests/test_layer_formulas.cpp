// Closed forms on hand-checkable inputs, and conv layers against their unrolled (Toeplitz) operators.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "lipkit/lipkit.h"
#include "support/expect_error.h"

using namespace lipkit;
namespace F = lipkit::functional;

namespace {

torch::Tensor t2(std::vector<double> v, int64_t rows, int64_t cols) {
  return torch::tensor(v, torch::kDouble).view({rows, cols});
}
torch::Tensor vec(std::vector<double> v) { return torch::tensor(v, torch::kDouble); }

void expect_close(const torch::Tensor& a, const torch::Tensor& b, double tol = 1e-12) {
  ASSERT_EQ(a.sizes(), b.sizes());
  EXPECT_LE((a - b).abs().max().item<double>(), tol) << "got\n" << a << "\nexpected\n" << b;
}

// ----------------------------------------------------------------------------- closed forms

TEST(CplFormula, HandComputedDense) {
  // W = diag(1, 2): ||W|| = 2, h = 2/4 = 1/2. x = (1, 1): W^T relu(Wx) = (1, 4), z = (0.5, -1).
  // x = (-1, 1): relu(Wx) = (0, 2), W^T . = (0, 4), z = (-1, -1).
  CplLinear layer(CplLinearOptions(2, 2).eps(0.0));
  layer->to(torch::kDouble);
  torch::NoGradGuard no_grad;
  layer->weight.copy_(t2({1, 0, 0, 2}, 2, 2));
  layer->bias.zero_();
  layer->eval();
  expect_close(layer->forward(t2({1, 1, -1, 1}, 2, 2)), t2({0.5, -1, -1, -1}, 2, 2), 1e-8);
}

TEST(CplFormula, TrainingStepUsesPowerIterationEstimate) {
  // One power iteration from u = e_2 on diag(1, 2) lands exactly on e_2: sigma = 2, same output.
  CplLinear layer(CplLinearOptions(2, 2).eps(0.0));
  layer->to(torch::kDouble);
  torch::NoGradGuard no_grad;
  layer->weight.copy_(t2({1, 0, 0, 2}, 2, 2));
  layer->bias.zero_();
  layer->u.copy_(vec({0, 1}));
  layer->train();
  expect_close(layer->forward(t2({1, 1}, 1, 2)), t2({0.5, -1}, 1, 2), 1e-10);
}

TEST(SllFormula, HandComputedDense) {
  // W = [[1, 1], [0, 1]], q = 0: W W^T = [[2, 1], [1, 1]], T = (3, 2).
  // x = (1, 1): relu(Wx) = (2, 1), t * . = (2/3, 1/2), W^T . = (2/3, 7/6), z = x - 2 . = (-1/3, -4/3).
  SllLinear layer(2, 2);
  layer->to(torch::kDouble);
  torch::NoGradGuard no_grad;
  layer->weight.copy_(t2({1, 1, 0, 1}, 2, 2));
  layer->bias.zero_();
  layer->q.zero_();
  expect_close(F::sll_linear_inverse_t(layer->weight, layer->q), vec({1.0 / 3, 1.0 / 2}));
  expect_close(layer->forward(t2({1, 1}, 1, 2)), t2({-1.0 / 3, -4.0 / 3}, 1, 2));
  layer->eval();  // the cached eval path gives the same numbers
  expect_close(layer->forward(t2({1, 1}, 1, 2)), t2({-1.0 / 3, -4.0 / 3}, 1, 2));
}

TEST(SllFormula, QWeightsTheGershgorinSums) {
  // q = exp((ln 2, 0)) = (2, 1): T_1 = (2*2 + 1*1)/2 = 5/2, T_2 = (1*2 + 1*1)/1 = 3.
  auto w = t2({1, 1, 0, 1}, 2, 2);
  expect_close(F::sll_linear_inverse_t(w, vec({std::log(2.0), 0})), vec({2.0 / 5, 1.0 / 3}));
}

TEST(SllFormula, ZeroRowContributesNothingAndGradientsStayFinite) {
  auto w = t2({0, 0, 1, 1}, 2, 2).requires_grad_(true);
  auto q = vec({0.3, -0.2}).requires_grad_(true);
  auto t = F::sll_linear_inverse_t(w, q);
  EXPECT_EQ(t[0].item<double>(), 0.0);
  auto z = F::sll_linear(t2({1, 2}, 1, 2), w, vec({1, 0}), t);
  z.sum().backward();
  EXPECT_TRUE(torch::isfinite(w.grad()).all().item<bool>());
  EXPECT_TRUE(torch::isfinite(q.grad()).all().item<bool>());
}

TEST(AolFormula, HandComputedDense) {
  // W = [[1, 1], [0, 1]]: W^T W = [[1, 1], [1, 2]], row sums (2, 3), d = (1/sqrt 2, 1/sqrt 3).
  auto w = t2({1, 1, 0, 1}, 2, 2);
  auto expected = t2({1 / std::sqrt(2.0), 1 / std::sqrt(3.0), 0, 1 / std::sqrt(3.0)}, 2, 2);
  expect_close(F::aol_rescale_linear(w, 0.0), expected);
}

TEST(GroupSortFormula, SortsConsecutiveGroups) {
  auto x = t2({1, 3, 2, -1, 5, 0}, 1, 6);
  expect_close(MaxMin()->forward(x), t2({3, 1, 2, -1, 5, 0}, 1, 6));
  expect_close(GroupSort(3)->forward(x), t2({3, 2, 1, 5, 0, -1}, 1, 6));
}

TEST(StructureFormula, SumPoolIsWindowSumOverSqrtArea) {
  auto x = torch::arange(16, torch::kDouble).view({1, 1, 4, 4});
  auto y = SumPool2d(2)->forward(x);
  expect_close(y, t2({(0 + 1 + 4 + 5) / 2.0, (2 + 3 + 6 + 7) / 2.0, (8 + 9 + 12 + 13) / 2.0,
                      (10 + 11 + 14 + 15) / 2.0},
                     2, 2)
                      .view({1, 1, 2, 2}));
}

TEST(StructureFormula, NormalizedLinearPairConstants) {
  NormalizedLinear lln(2, 3);
  lln->to(torch::kDouble);
  torch::NoGradGuard no_grad;
  lln->weight.copy_(t2({3, 0, 0, 5, -2, 0}, 3, 2));  // unit rows e1, e2, -e1
  auto pairs = lln->pairwise_lipschitz();
  expect_close(pairs, t2({0, std::sqrt(2.0), 2, std::sqrt(2.0), 0, std::sqrt(2.0), 2, std::sqrt(2.0), 0},
                         3, 3));
  EXPECT_NEAR(lln->lipschitz_bound(Norm::L2), std::sqrt(2.0), 1e-8);  // not 1-Lipschitz
}

// ------------------------------------------------------------- conv against the unrolled operator

struct ConvSetup {
  torch::Tensor kernel, bias, x, m, bias_rep, x_flat;
  int64_t h = 9, w = 10, pad = 1;
};

ConvSetup conv_setup(int64_t hidden, int64_t channels, int64_t k) {
  ConvSetup s;
  s.pad = k / 2;
  s.kernel = torch::randn({hidden, channels, k, k}, torch::kDouble);
  s.bias = torch::randn({hidden}, torch::kDouble);
  s.x = torch::randn({1, channels, s.h, s.w}, torch::kDouble);
  s.m = linalg::conv2d_matrix(s.kernel, s.h, s.w, s.pad);
  s.bias_rep = s.bias.repeat_interleave(s.h * s.w);  // channel-major, as the flattened output
  s.x_flat = s.x.reshape({1, -1});
  return s;
}

TEST(ConvAdjoint, EqualsConvTransposeAndMatrixTranspose) {
  torch::manual_seed(10);
  for (int64_t k : {1, 3, 5}) {
    for (int64_t pad = 0; pad < k; ++pad) {
      auto kernel = torch::randn({4, 3, k, k}, torch::kDouble);
      auto y = torch::randn({2, 4, 7 + 2 * pad - k + 1, 6 + 2 * pad - k + 1}, torch::kDouble);
      auto ours = linalg::conv2d_adjoint(y, kernel, pad);
      expect_close(ours, torch::conv_transpose2d(y, kernel, {}, 1, pad), 1e-10);
      auto m = linalg::conv2d_matrix(kernel, 7, 6, pad);
      expect_close(ours.reshape({2, -1}), torch::mm(y.reshape({2, -1}), m), 1e-10);
    }
  }
}

TEST(CplFormula, ConvEqualsDenseOnUnrolledOperator) {
  torch::manual_seed(11);
  for (int64_t k : {3, 5}) {
    auto s = conv_setup(3, 2, k);
    auto step = torch::full({}, 0.37, torch::kDouble);
    auto conv = F::cpl_conv2d(s.x, s.kernel, s.bias, step, s.pad).reshape({1, -1});
    auto dense = F::cpl_linear(s.x_flat, s.m, s.bias_rep, step);
    expect_close(conv, dense, 1e-10);
  }
}

TEST(SllFormula, ConvEqualsDenseOnUnrolledOperatorAndDominatesItsGershgorinSums) {
  torch::manual_seed(12);
  for (int64_t k : {3, 5}) {
    auto s = conv_setup(3, 2, k);
    auto q = torch::randn({3}, torch::kDouble);
    auto t_conv = F::sll_conv2d_inverse_t(s.kernel, q);
    auto t_rep = t_conv.repeat_interleave(s.h * s.w);
    auto conv = F::sll_conv2d(s.x, s.kernel, s.bias, t_conv, s.pad).reshape({1, -1});
    expect_close(conv, F::sll_linear(s.x_flat, s.m, s.bias_rep, t_rep), 1e-10);

    // Gershgorin sums of the unrolled operator (q repeated per pixel) never exceed the conv's T,
    // which is why the conv layer is 1-Lipschitz; they are equal at interior pixels.
    auto t_dense = F::sll_linear_inverse_t(s.m, q.repeat_interleave(s.h * s.w));
    EXPECT_TRUE((t_dense >= t_rep - 1e-12).all().item<bool>());
    auto interior = t_dense.view({3, s.h, s.w}).slice(1, k - 1, s.h - k + 1).slice(2, k - 1, s.w - k + 1);
    auto expected = t_conv.view({3, 1, 1}).expand_as(interior);
    expect_close(interior, expected, 1e-10);
  }
}

TEST(SllFormula, CancelQReproducesTheOfficialConvBehaviour) {
  torch::manual_seed(13);
  auto kernel = torch::randn({4, 3, 3, 3}, torch::kDouble);
  auto q1 = torch::randn({4}, torch::kDouble), q2 = torch::randn({4}, torch::kDouble);
  // q has no effect when cancelled, and equals the q = 0 (q = 1) weighting.
  expect_close(F::sll_conv2d_inverse_t(kernel, q1, true), F::sll_conv2d_inverse_t(kernel, q2, true));
  expect_close(F::sll_conv2d_inverse_t(kernel, q1, true),
               F::sll_conv2d_inverse_t(kernel, torch::zeros({4}, torch::kDouble), false));
  EXPECT_GT((F::sll_conv2d_inverse_t(kernel, q1) - F::sll_conv2d_inverse_t(kernel, q2)).abs().max().item<double>(),
            1e-3);
}

TEST(AolFormula, ConvScalingIsAtMostTheUnrolledOperatorsAndNormAtMostOne) {
  torch::manual_seed(14);
  for (int64_t k : {1, 3, 5}) {
    auto kernel = torch::randn({4, 3, k, k}, torch::kDouble);
    auto scaled = F::aol_rescale_conv2d(kernel, 0.0);
    EXPECT_LE(linalg::spectral_norm_exact(linalg::conv2d_matrix(scaled, 6, 6, k / 2)), 1.0 + 1e-12);
    // d from the unrolled operator's columns is at least the conv's d (fewer terms at the borders).
    auto m = linalg::conv2d_matrix(kernel, 6, 6, k / 2);
    auto d_dense = torch::rsqrt(torch::mm(m.t(), m).abs().sum(1));
    auto d_conv = (scaled / kernel).select(2, 0).select(2, 0)[0].repeat_interleave(36);
    EXPECT_TRUE((d_dense >= d_conv - 1e-12).all().item<bool>());
  }
}

TEST(CplFormula, EvalStepUsesAProvenBoundCloseToTheExactNorm) {
  torch::manual_seed(15);
  CplLinear dense(CplLinearOptions(7, 9).eps(0.0));
  dense->to(torch::kDouble);
  const double exact = linalg::spectral_norm_exact(dense->weight);
  const double bound = dense->weight_norm_bound();
  EXPECT_GE(bound, exact);
  EXPECT_LE(bound, exact * (1 + 1e-6));
  dense->eval();
  auto x = torch::randn({3, 7}, torch::kDouble);
  auto step = torch::full({}, 2.0 / (bound * bound), torch::kDouble);
  expect_close(dense->forward(x), F::cpl_linear(x, dense->weight, dense->bias, step), 1e-12);

  CplConv2d conv(CplConv2dOptions(3, 4).eps(0.0));
  conv->to(torch::kDouble);
  const double conv_exact = linalg::spectral_norm_exact(linalg::conv2d_matrix(conv->weight, 8, 8, 1));
  const double conv_bound = conv->weight_norm_bound(8, 8);
  EXPECT_GE(conv_bound, conv_exact);
  EXPECT_LE(conv_bound, conv_exact * (1 + 1e-6));
}

}  // namespace

namespace {

// The one-GEMM Gram op against the plain autograd reference, in value and gradient.
TEST(GramOp, MatchesPlainMatmulInValueAndGradient) {
  torch::manual_seed(16);
  for (auto shape : std::vector<std::pair<int64_t, int64_t>>{{5, 8}, {8, 5}, {1, 3}}) {
    for (bool transposed : {false, true}) {
      auto base = torch::randn({shape.first, shape.second}, torch::kDouble);
      auto w1 = base.clone().requires_grad_(true), w2 = base.clone().requires_grad_(true);
      auto a1 = transposed ? w1.t() : w1, a2 = transposed ? w2.t() : w2;
      auto upstream = torch::randn({a1.size(0), a1.size(0)}, torch::kDouble);  // not symmetric
      auto ours = lipkit::linalg::gram(a1), reference = torch::mm(a2, a2.t());
      expect_close(ours, reference, 1e-12);
      (ours * upstream).sum().backward();
      (reference * upstream).sum().backward();
      expect_close(w1.grad(), w2.grad(), 1e-12);
    }
  }
}

}  // namespace

namespace {

// Large enough for the Gram's triangle of blocks (>= 1024 rows, a partial last block) and small.
const std::vector<std::pair<int64_t, int64_t>> kGramShapes{{5, 8}, {8, 5}, {1, 3}, {1300, 40}};

TEST(GramOp, IsExactlySymmetricAndMatchesMatmulOnBothPaths) {
  torch::manual_seed(17);
  for (int64_t rows : {300, 1300}) {  // one GEMM; the triangle of blocks
    auto w = torch::randn({rows, 40}, torch::kDouble);
    auto g = lipkit::linalg::gram(w);
    EXPECT_TRUE(torch::equal(g, g.t())) << rows;
    expect_close(g, torch::mm(w, w.t()), 1e-10);
  }
}

// |W W^T| v against plain autograd through mm, abs and mv, in value and in both gradients: the fused
// CPU loops (float, double; plain, transposed and strided views) and the generic ATen path that
// other devices and dtypes take (bfloat16 here, against a float64 reference).
TEST(AbsGramMvOp, MatchesTheAutogradReferenceInValueAndGradients) {
  torch::manual_seed(18);
  for (auto dtype : {torch::kDouble, torch::kFloat}) {
    const double tol = dtype == torch::kDouble ? 1e-10 : 2e-3;
    for (auto shape : kGramShapes) {
      for (bool transposed : {false, true}) {
        auto base = torch::randn({shape.first, shape.second}, dtype);
        base.index_put_({0}, 0.0);  // zero Gram entries: sign 0, as torch's |x|' at 0
        auto w1 = base.clone().requires_grad_(true), w2 = base.clone().requires_grad_(true);
        auto a1 = transposed ? w1.t() : w1, a2 = transposed ? w2.t() : w2;
        auto vb = torch::rand({a1.size(0)}, dtype) + 0.5;
        auto v1 = vb.clone().requires_grad_(true), v2 = vb.clone().requires_grad_(true);
        auto ours = lipkit::linalg::abs_gram_mv(a1, v1);
        auto reference = torch::mv(torch::mm(a2, a2.t()).abs(), v2);
        const double scale = 1 + reference.abs().max().item<double>();
        expect_close(ours / scale, reference / scale, tol);
        auto upstream = torch::randn_like(reference);
        (ours * upstream).sum().backward();
        (reference * upstream).sum().backward();
        const double gs = 1 + w2.grad().abs().max().item<double>(), vs = 1 + v2.grad().abs().max().item<double>();
        expect_close(w1.grad() / gs, w2.grad() / gs, tol);
        expect_close(v1.grad() / vs, v2.grad() / vs, tol);
      }
    }
  }
  auto strided = torch::randn({6, 10}, torch::kDouble).slice(1, 0, 10, 2).requires_grad_(false);
  auto v = torch::rand({6}, torch::kDouble);
  expect_close(lipkit::linalg::abs_gram_mv(strided, v), torch::mv(torch::mm(strided, strided.t()).abs(), v), 1e-12);
  {
    auto base = torch::randn({7, 5}, torch::kDouble);
    auto vb = torch::rand({7}, torch::kDouble) + 0.5;
    auto w1 = base.to(torch::kBFloat16).requires_grad_(true), v1 = vb.to(torch::kBFloat16).requires_grad_(true);
    auto w2 = w1.detach().to(torch::kDouble).requires_grad_(true), v2 = v1.detach().to(torch::kDouble).requires_grad_(true);
    auto ours = lipkit::linalg::abs_gram_mv(w1, v1);
    auto reference = torch::mv(torch::mm(w2, w2.t()).abs(), v2);
    ours.sum().backward();
    reference.sum().backward();
    auto rel = [](const torch::Tensor& a, const torch::Tensor& b) {
      return ((a.to(torch::kDouble) - b).abs().max() / b.abs().max()).item<double>();
    };
    EXPECT_LE(rel(ours, reference), 3e-2);
    EXPECT_LE(rel(w1.grad(), w2.grad()), 3e-2);
    EXPECT_LE(rel(v1.grad(), v2.grad()), 3e-2);
  }
  lipkit::testing::expect_error([&] { lipkit::linalg::abs_gram_mv(torch::randn({3, 4}), torch::rand({4})); }, {"abs_gram_mv", "v must have shape (3)"});
}

// The tiled kernel against the ATen expression: sizes around the 32-wide tile, both dtypes, a
// transposed (non-contiguous) input; with autograd recording, the expression and its gradient.
TEST(AddTranspose, MatchesTheExpressionInValueAndGradient) {
  torch::manual_seed(23);
  for (auto dtype : {torch::kFloat, torch::kDouble}) {
    for (int64_t n : {1, 31, 32, 33, 100}) {
      auto m = torch::randn({n, n}, dtype);
      for (auto coef : std::vector<std::array<double, 3>>{{1, 1, 0}, {-1, 1, 1}, {-2, 2, 0}, {0.5, -3, 2}}) {
        auto expected = coef[0] * m + coef[1] * m.t() + coef[2] * torch::eye(n, m.options());
        const double tol = dtype == torch::kFloat ? 1e-5 : 1e-12;
        expect_close(linalg::add_transpose(m, coef[0], coef[1], coef[2]), expected, tol);
        expect_close(linalg::add_transpose(m.t(), coef[1], coef[0], coef[2]), expected, tol);
      }
    }
  }
  auto m = torch::randn({5, 5}, torch::kDouble).requires_grad_(true);
  auto upstream = torch::randn({5, 5}, torch::kDouble);
  auto g = torch::autograd::grad({(linalg::add_transpose(m, 2.0, -1.0, 1.0) * upstream).sum()}, {m})[0];
  expect_close(g, 2.0 * upstream - upstream.t());
  lipkit::testing::expect_error([] { linalg::add_transpose(torch::randn({3, 4}), 1, 1); }, {"add_transpose", "square", "[3, 4]"});
}

// Training applies Q through the batch solve; it must equal the folded weight used in eval, in value
// and in the gradients with respect to v and x, for square and both rectangular shapes, small and
// larger, with A far from 0 (Q far from I).
TEST(OrthogonalFormula, BatchSolveEqualsTheFoldedWeight) {
  torch::manual_seed(19);
  for (auto shape : std::vector<std::pair<int64_t, int64_t>>{{6, 6}, {9, 4}, {4, 9}, {70, 70}, {40, 101}}) {
    OrthogonalLinear layer(shape.first, shape.second);
    layer->to(torch::kDouble);
    {
      torch::NoGradGuard no_grad;
      layer->bias.uniform_(-1, 1);
      layer->v.mul_(4);
    }
    auto x = torch::randn({7, shape.first}, torch::kDouble).requires_grad_(true);
    layer->train();
    auto y = layer->forward(x);
    auto upstream = torch::randn_like(y);
    auto g = torch::autograd::grad({(y * upstream).sum()}, {layer->v, x});
    auto folded = torch::nn::functional::linear(x, layer->effective_weight(), layer->bias);
    auto gref = torch::autograd::grad({(folded * upstream).sum()}, {layer->v, x});
    expect_close(y, folded, 1e-12);
    expect_close(g[0], gref[0], 1e-12);
    expect_close(g[1], gref[1], 1e-12);
    layer->eval();
    expect_close(layer->forward(x), folded, 1e-12);
  }
}

TEST(OrthogonalFormula, CayleyLinearRefusesBadShapesAndDoubleBackward) {
  using lipkit::testing::expect_error;
  auto v = torch::randn({6, 6}, torch::kDouble).requires_grad_(true);
  expect_error([&] { functional::cayley_linear(torch::randn({2, 7}, torch::kDouble), v, 6); }, {"cayley_linear", "in <= 6", "[2, 7]"});
  expect_error([&] { functional::cayley_linear(torch::randn({2, 6}, torch::kDouble), v, 7); }, {"cayley_linear", "out_features", "7"});
  expect_error([&] { functional::cayley_linear(torch::randn({2, 6}), v, 6); }, {"cayley_linear", "same dtype"});
  expect_error([&] { functional::cayley_linear(torch::randn({2, 6}, torch::kDouble), torch::randn({6, 5}, torch::kDouble), 6); },
               {"cayley_linear", "square", "[6, 5]"});
  auto x = torch::randn({2, 6}, torch::kDouble).requires_grad_(true);
  auto y = functional::cayley_linear(x, v, 6).sum();
  expect_error([&] { torch::autograd::grad({y}, {v}, {}, /*retain_graph=*/true, /*create_graph=*/true); },
               {"cayley_linear", "double backward"});
}

}  // namespace
