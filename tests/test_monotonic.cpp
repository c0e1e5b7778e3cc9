// LipschitzLinear's norm kinds (the normalised weight's exact operator norm <= the bound, weights
// inside left alone, the unnormalised weight caught) and MonotonicResidual's guarantee (no violation
// found on a trained net by pairs along each monotone input and by gradient search; a residual weight
// below the body's bound is caught by the same search).
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "lipkit/certify/monotonic_check.h"
#include "lipkit/layers/activations.h"
#include "lipkit/layers/lipschitz_linear.h"
#include "lipkit/layers/monotonic.h"
#include "support/expect_error.h"

using namespace lipkit;

namespace {

// ||W x||_q / ||x||_p over random x and the extremal inputs of each pair: a lower bound of the
// operator norm that reaches it for these pairs (basis vectors for 1 -> q, sign vectors for inf -> inf,
// the top right singular vector or row for 2 -> q).
double measured_norm(const torch::Tensor& w, PNorm p, PNorm q) {
  auto norm = [](const torch::Tensor& v, PNorm n) {
    return n == PNorm::One ? v.abs().sum(-1) : n == PNorm::Two ? v.norm(2, -1) : std::get<0>(v.abs().max(-1));
  };
  const int64_t in = w.size(1);
  std::vector<torch::Tensor> xs = {torch::randn({2000, in}, w.options()), torch::eye(in, w.options()),
                                   w.sign(), w / w.norm(2, 1, true).clamp_min(1e-30)};
  xs.push_back(std::get<2>(torch::linalg::svd(w, false, c10::nullopt)).narrow(0, 0, 1));
  double best = 0;
  for (const auto& x : xs) best = std::max(best, (norm(x.matmul(w.t()), q) / norm(x, p)).max().item<double>());
  return best;
}

TEST(LipschitzLinear, EveryKindBoundsItsOperatorNormAndLeavesSmallWeightsAlone) {
  torch::manual_seed(80);
  const std::vector<std::pair<std::string, std::pair<PNorm, PNorm>>> kinds = {
      {"one", {PNorm::One, PNorm::One}}, {"inf", {PNorm::Inf, PNorm::Inf}}, {"one-inf", {PNorm::One, PNorm::Inf}},
      {"two-inf", {PNorm::Two, PNorm::Inf}}, {"two", {PNorm::Two, PNorm::Two}}};
  for (const auto& [kind, pair] : kinds) {
    for (bool vectorwise : {true, false}) {
      LipschitzLinear layer(LipschitzLinearOptions(7, 5).kind(kind).lipschitz(0.8).vectorwise(vectorwise));
      layer->to(torch::kDouble);
      layer->eval();
      {
        torch::NoGradGuard ng;
        layer->weight.normal_().mul_(5);  // far outside the bound
      }
      auto w = layer->effective_weight().detach();
      const double measured = measured_norm(w, pair.first, pair.second);
      EXPECT_LE(measured, 0.8 * (1 + 1e-9)) << kind << (vectorwise ? " vectorwise" : " whole");
      EXPECT_GE(layer->pair_bound(), measured * (1 - 1e-9)) << kind << ": the stated bound must hold";
      EXPECT_LE(layer->pair_bound(), 0.8 * (1 + 1e-6)) << kind;
      EXPECT_GT(measured, 0.5 * 0.8) << kind << ": the check must not be vacuous";
      // negative control: the raw weight is caught by the same measurement
      EXPECT_GT(measured_norm(layer->weight.detach(), pair.first, pair.second), 0.8) << kind;
      // a weight well inside the bound is used as it is
      {
        torch::NoGradGuard ng;
        layer->weight.normal_().mul_(1e-3);
      }
      EXPECT_TRUE(torch::equal(layer->effective_weight(), layer->weight)) << kind;
    }
  }
}

TEST(LipschitzLinear, StatesL2AndLinfOnlyForItsOwnPairAndNamesBadOptions) {
  EXPECT_LE(LipschitzLinear(LipschitzLinearOptions(4, 3).kind("two"))->lipschitz_bound(Norm::L2), 1.0);
  EXPECT_EQ(LipschitzLinear(LipschitzLinearOptions(4, 3).kind("two"))->lipschitz_bound(Norm::Linf), kNoBound);
  EXPECT_LE(LipschitzLinear(LipschitzLinearOptions(4, 3).kind("inf"))->lipschitz_bound(Norm::Linf), 1.0);
  EXPECT_EQ(LipschitzLinear(LipschitzLinearOptions(4, 3).kind("one-inf"))->lipschitz_bound(Norm::L2), kNoBound);
  using lipkit::testing::expect_error;
  expect_error([] { LipschitzLinear(LipschitzLinearOptions(4, 3).kind("three")); }, {"LipschitzLinear", "kind", "three"});
  expect_error([] { LipschitzLinear(LipschitzLinearOptions(4, 3).lipschitz(0)); }, {"LipschitzLinear", "lipschitz", "0"});
  LipschitzLinear ok(4, 3);
  expect_error([&] { ok->forward(torch::randn({2, 5})); }, {"LipschitzLinear", "(N, in_features)", "[2, 5]"});
}

// The monotonic net of the paper: LipschitzLinear one-inf, then inf, GroupSort between; lambda spread
// as lambda^(1/depth) per layer.
MonotonicResidual monotonic_net(int64_t inputs, const std::vector<int64_t>& c, double lambda) {
  const double per = std::pow(lambda, 1.0 / 3);
  torch::nn::Sequential body(LipschitzLinear(LipschitzLinearOptions(inputs, 16).kind("one-inf").lipschitz(per)),
                             GroupSort(GroupSortOptions(2)),
                             LipschitzLinear(LipschitzLinearOptions(16, 16).kind("inf").lipschitz(per)),
                             GroupSort(GroupSortOptions(2)),
                             LipschitzLinear(LipschitzLinearOptions(16, 1).kind("inf").lipschitz(per)));
  return MonotonicResidual(body, MonotonicResidualOptions(torch::tensor(c)).lipschitz(lambda));
}

// The largest violation the library's search finds in the box [-1, 1]^d (> 0: a violation).
double worst_violation(MonotonicResidual& net, const std::vector<int64_t>& c) {
  const auto d = static_cast<int64_t>(c.size());
  auto constraints = torch::tensor(c, torch::kDouble).view({1, -1});
  certify::MonotonicCheckOptions o;
  o.pairs = 4000;
  o.steps = 30;
  return certify::check_monotonic(torch::nn::Sequential(net), constraints, -torch::ones({d}, torch::kDouble),
                                  torch::ones({d}, torch::kDouble), o)
      .worst;
}

TEST(MonotonicResidual, TrainedNetHasNoViolationAndATooSmallResidualIsCaught) {
  torch::manual_seed(82);
  const std::vector<int64_t> c = {1, -1, 0};
  auto net = monotonic_net(3, c, 1.0);
  net->to(torch::kDouble);
  auto x = torch::rand({512, 3}, torch::kDouble) * 2 - 1;
  auto y = (0.6 * x.select(1, 0) + 0.3 * torch::sin(4 * x.select(1, 0)) / 4 - 0.5 * x.select(1, 1).pow(3) +
            0.4 * torch::cos(3 * x.select(1, 2)))
               .unsqueeze(1);  // increasing in x0, decreasing in x1, free in x2
  torch::optim::Adam opt(net->parameters(), torch::optim::AdamOptions(0.01));
  for (int step = 0; step < 300; ++step) {
    opt.zero_grad();
    torch::mse_loss(net->forward(x), y).backward();
    opt.step();
  }
  net->eval();
  EXPECT_LT(torch::mse_loss(net->forward(x), y).item<double>(), 0.02) << "the net must have learned";
  EXPECT_TRUE(net->monotone_proven());
  EXPECT_LE(net->body_bound(), 1.0);
  EXPECT_LT(worst_violation(net, c), 0);
  // every partial derivative is within the whole map's l1 -> l_inf bound
  auto xv = (torch::rand({256, 3}, torch::kDouble) * 2 - 1).requires_grad_(true);
  auto grad = torch::autograd::grad({net->forward(xv).sum()}, {xv})[0];
  EXPECT_LE(grad.abs().max().item<double>(), net->pair_bound() * (1 + 1e-9));
  // negative control: the residual's weight below the body's bound
  net->options.lipschitz(0.05);
  EXPECT_FALSE(net->monotone_proven());
  EXPECT_GT(worst_violation(net, c), 1e-4) << "a residual too weak for its body must be caught";
}

TEST(MonotonicResidual, RefusesBodiesWithoutAProvenBoundAndBadConstraints) {
  using lipkit::testing::expect_error;
  auto c = torch::tensor({1, 0});
  expect_error([&] { MonotonicResidual(torch::nn::Sequential(torch::nn::Linear(2, 1)), MonotonicResidualOptions(c)); },
               {"MonotonicResidual", "not provably", "Linear"});
  // an inf -> inf layer first cannot take l1 inputs... it can (||x||_inf <= ||x||_1); a 1 -> 1 layer
  // after an l_inf output cannot
  expect_error([&] {
    MonotonicResidual(torch::nn::Sequential(LipschitzLinear(LipschitzLinearOptions(2, 4).kind("one-inf")),
                                            LipschitzLinear(LipschitzLinearOptions(4, 1).kind("one"))),
                      MonotonicResidualOptions(c));
  }, {"MonotonicResidual", "kind one", "l_inf"});
  expect_error([&] {
    MonotonicResidual(torch::nn::Sequential(LipschitzLinear(LipschitzLinearOptions(2, 1).kind("one-inf").lipschitz(2))),
                      MonotonicResidualOptions(c).lipschitz(1));
  }, {"MonotonicResidual", "more than lambda"});
  expect_error([&] {
    MonotonicResidual(torch::nn::Sequential(LipschitzLinear(LipschitzLinearOptions(2, 1).kind("one-inf"))),
                      MonotonicResidualOptions(torch::tensor({2, 0})));
  }, {"MonotonicResidual", "+1", "decreasing"});
}

TEST(MonotonicResidual, CloneIsDeep) {
  auto net = monotonic_net(3, {1, 0, -1}, 2.0);
  auto copy = std::dynamic_pointer_cast<MonotonicResidualImpl>(net->clone());
  ASSERT_TRUE(copy);
  copy->to(torch::kDouble);
  for (const auto& p : net->parameters()) EXPECT_EQ(p.scalar_type(), torch::kFloat);
  EXPECT_EQ(copy->constraints.scalar_type(), torch::kDouble);
  auto x = torch::randn({4, 3});
  EXPECT_TRUE(torch::allclose(copy->forward(x.to(torch::kDouble)).to(torch::kFloat), net->forward(x), 1e-5, 1e-5));
}

}  // namespace
