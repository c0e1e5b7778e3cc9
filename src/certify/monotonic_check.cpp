#include "lipkit/certify/monotonic_check.h"

#include <torch/torch.h>

#include <limits>

namespace lipkit::certify {

namespace {
constexpr double kInf = std::numeric_limits<double>::infinity();

struct Search {
  torch::nn::Sequential& net;
  const MonotonicCheckOptions& o;
  torch::Tensor lo, hi, span;  // (d)
  MonotonicCheckReport report;

  // Pairs along input i for output k with sign s: random, then ascent on the wrong-way change.
  void run(int64_t k, int64_t i, double s, torch::Generator& gen) {
    const int64_t d = lo.size(0);
    auto x = lo + torch::rand({o.pairs, d}, gen, torch::kDouble) * span;
    auto t = torch::rand({o.pairs}, gen, torch::kDouble) * (hi[i] - x.select(1, i));
    auto e = torch::zeros({1, d}, torch::kDouble);
    e[0][i] = 1;
    for (int64_t step = 0; step <= o.steps; ++step) {
      auto xv = x.clone().requires_grad_(true), tv = t.clone().requires_grad_(true);
      auto f0 = net->forward(xv).select(1, k);
      auto v = -s * (net->forward(xv + tv.unsqueeze(1) * e).select(1, k) - f0);  // > 0: wrong way
      auto grads = torch::autograd::grad({v.sum()}, {xv, tv}, {}, /*retain_graph=*/true);
      auto slope = torch::autograd::grad({f0.sum()}, {xv})[0].select(1, i) * -s;  // > 0: wrong-signed slope
      record(torch::where(t > 0, v.detach(), torch::full_like(t, -kInf)), x, t, k, i);  // t = 0 is no pair
      report.worst_slope = std::max(report.worst_slope, slope.max().item<double>());
      if (step == o.steps) break;
      x = torch::max(torch::min(x + o.step_fraction * span * grads[0].sign(), hi), lo);
      t = torch::min((t + o.step_fraction * span[i] * grads[1].sign()).clamp_min(0), hi[i] - x.select(1, i));
    }
  }

  void record(const torch::Tensor& v, const torch::Tensor& x, const torch::Tensor& t, int64_t k, int64_t i) {
    report.pairs += (v > -kInf).sum().item<int64_t>();
    report.violations += (v > o.tolerance).sum().item<int64_t>();
    const int64_t j = v.argmax().item<int64_t>();
    const double w = v[j].item<double>();
    if (w <= report.worst) return;
    report.worst = w;
    report.output = k;
    report.input = i;
    report.at = x[j].clone();
    report.step = t[j].item<double>();
  }
};
}  // namespace

MonotonicCheckReport check_monotonic(torch::nn::Sequential model, const torch::Tensor& constraints,
                                     const torch::Tensor& lo, const torch::Tensor& hi,
                                     const MonotonicCheckOptions& options) {
  TORCH_CHECK(constraints.dim() == 2 && lo.dim() == 1 && hi.sizes() == lo.sizes() && constraints.size(1) == lo.size(0),
              "check_monotonic: constraints must be (outputs, inputs) and lo, hi (inputs); got ", constraints.sizes(),
              ", ", lo.sizes(), ", ", hi.sizes());
  TORCH_CHECK(options.pairs >= 1 && options.steps >= 0 && options.step_fraction > 0,
              "check_monotonic: pairs >= 1, steps >= 0 and step_fraction > 0 required");
  // float64 in place and back (exact): a clone would re-validate, refusing the broken nets to be caught
  auto net = model;
  const auto dtype = net->parameters().empty() ? torch::kFloat : net->parameters().front().scalar_type();
  const bool training = net->is_training();
  struct Restore {
    torch::nn::Sequential net;
    torch::ScalarType dtype;
    bool training;
    ~Restore() {
      net->to(dtype);
      net->train(training);
    }
  } restore{net, dtype, training};
  net->to(torch::kDouble);
  net->eval();
  auto l = lo.to(torch::kDouble), h = hi.to(torch::kDouble);
  h = torch::where(h > l, h, l + 1);  // a constant column: search a unit interval above it
  Search search{net, options, l, h, h - l, {}};
  search.report.worst = search.report.worst_slope = -kInf;
  auto gen = at::make_generator<at::CPUGeneratorImpl>(options.seed);
  auto c = constraints.to(torch::kDouble);
  for (int64_t k = 0; k < c.size(0); ++k)
    for (int64_t i = 0; i < c.size(1); ++i)
      if (const double s = c[k][i].item<double>(); s != 0) search.run(k, i, s > 0 ? 1.0 : -1.0, gen);
  return search.report;
}

}  // namespace lipkit::certify
