// The kernels as registered operators (torch.ops.lipkit.*): the same values and gradients through the
// dispatcher as through the C++ functions, a finite-difference check, TorchScript calling them, and
// errors that name the problem.
#include <gtest/gtest.h>
#include <torch/jit.h>
#include <torch/torch.h>

#include <ATen/core/dispatch/Dispatcher.h>
#include <torch/csrc/jit/api/compilation_unit.h>
#include <torch/csrc/jit/frontend/resolver.h>
#include <torch/csrc/jit/frontend/sugared_value.h>

#include "lipkit/kernels/dist.h"
#include "lipkit/kernels/operators.h"
#include "lipkit/kernels/spline.h"
#include "support/expect_error.h"

namespace {

using namespace lipkit;

torch::Tensor call_lp_dist(const torch::Tensor& x, const torch::Tensor& w, double p) {
  static auto op = c10::Dispatcher::singleton()
                       .findSchemaOrThrow("lipkit::lp_dist", "")
                       .typed<torch::Tensor(const torch::Tensor&, const torch::Tensor&, double)>();
  return op.call(x, w, p);
}

TEST(Operators, AreRegisteredAndEqualTheFunctionsInValueAndGradient) {
  const auto names = kernels::register_operators();
  for (const auto& n : names)
    EXPECT_TRUE(c10::Dispatcher::singleton().findSchema({n, ""}).has_value()) << n << " is not registered";
  torch::manual_seed(11);
  for (double p : {2.0, kernels::kInf}) {
    auto x = torch::randn({5, 7}, torch::kDouble).requires_grad_(true);
    auto w = torch::randn({3, 7}, torch::kDouble).requires_grad_(true);
    auto a = call_lp_dist(x, w, p), b = kernels::lp_dist(x, w, p);
    EXPECT_TRUE(torch::equal(a, b)) << "p " << p;
    auto ga = torch::autograd::grad({a.sum()}, {x, w}), gb = torch::autograd::grad({b.sum()}, {x, w});
    EXPECT_TRUE(torch::equal(ga[0], gb[0]) && torch::equal(ga[1], gb[1])) << "p " << p;
  }
  auto sort = c10::Dispatcher::singleton()
                  .findSchemaOrThrow("lipkit::sort_neuron", "")
                  .typed<torch::Tensor(const torch::Tensor&, const torch::Tensor&, double, int64_t)>();
  auto x = torch::randn({4, 9}, torch::kDouble), w = torch::randn({6, 9}, torch::kDouble);
  EXPECT_TRUE(torch::equal(sort.call(x, w, 0.7, 3), kernels::sort_neuron(x, w, 0.7, 3)));
  auto spline = c10::Dispatcher::singleton()
                    .findSchemaOrThrow("lipkit::linear_spline", "")
                    .typed<torch::Tensor(const torch::Tensor&, const torch::Tensor&, const torch::Tensor&, double)>();
  auto xs = torch::randn({3, 4, 2}, torch::kDouble), c = torch::randn({4, 11}, torch::kDouble);
  auto s = torch::ones({4}, torch::kDouble);
  EXPECT_TRUE(torch::equal(spline.call(xs, c, s, 0.2), kernels::linear_spline(xs, c, s, 0.2)));
}

// Central differences of sum(lp_dist(x, w, 2)) against the operator's gradient (float64).
TEST(Operators, GradientMatchesFiniteDifferences) {
  torch::manual_seed(12);
  auto x = torch::randn({3, 5}, torch::kDouble).requires_grad_(true);
  auto w = torch::randn({4, 5}, torch::kDouble);
  auto g = torch::autograd::grad({call_lp_dist(x, w, 2.0).sum()}, {x})[0];
  const double h = 1e-6;
  for (int64_t i = 0; i < 3; ++i)
    for (int64_t j = 0; j < 5; ++j) {
      auto xp = x.detach().clone(), xm = x.detach().clone();
      xp[i][j] += h;
      xm[i][j] -= h;
      const double fd = (call_lp_dist(xp, w, 2.0).sum() - call_lp_dist(xm, w, 2.0).sum()).item<double>() / (2 * h);
      EXPECT_NEAR(g[i][j].item<double>(), fd, 1e-7) << i << "," << j;
    }
}

// TorchScript compiled from C++: kernels::script_resolver() makes `lipkit.op` the graph op lipkit::op.
TEST(Operators, WorkInTorchScript) {
  kernels::register_operators();
  torch::jit::CompilationUnit cu;
  cu.define(c10::nullopt, R"JIT(
def distances(x: Tensor, w: Tensor, p: float):
    return lipkit.lp_dist(x, w, p)

def bounds(lo: Tensor, hi: Tensor, w: Tensor):
    a, b = lipkit.sort_neuron_bounds(lo, hi, w, 0.7, 2)
    return b - a
)JIT", kernels::script_resolver(), nullptr);
  auto& f = cu.get_function("distances");
  EXPECT_NE(toGraphFunction(f).graph()->toString().find("lipkit::lp_dist"), std::string::npos)
      << "the graph calls the registered operator";
  torch::manual_seed(13);
  auto x = torch::randn({4, 6}), w = torch::randn({5, 6});
  auto y = f({x, w, 3.0}).toTensor();
  EXPECT_TRUE(torch::equal(y, kernels::lp_dist(x, w, 3.0)));
  auto width = cu.get_function("bounds")({x - 0.1, x + 0.1, w}).toTensor();
  EXPECT_GE(width.min().item<double>(), 0.0);
}

TEST(Operators, BadInputsRaiseNamedErrors) {
  lipkit::testing::expect_error([] { call_lp_dist(torch::randn({2, 3}), torch::randn({4, 5}), 2.0); },
                                {"lp_dist", "[2, 3]", "[4, 5]"});
}

}  // namespace
