// Forward+backward time of every l2 layer at CIFAR-like shapes, next to a plain (unconstrained)
// layer of the same shapes measured in the same run; prints the overhead ratios at the end.
//
//   build/bench/bench_layers                       # all, batch 64 and 256
//   build/bench/bench_layers --benchmark_filter=Cpl
//
// Baselines: a residual layer (CPL, SLL: conv C->hidden, ReLU, adjoint conv hidden->C) is compared
// with the same two convolutions (or matmuls) without normalization; a stand-alone layer (AOL,
// spectral, orthogonal) with a plain Conv2d/Linear + ReLU of the same shape; LipschitzLinear with a
// torch::nn::Linear; MaxMin with ReLU.
#include <benchmark/benchmark.h>
#include <torch/torch.h>

#include <cstdio>
#include <map>

#include "lipkit/lipkit.h"

using namespace lipkit;

namespace {

using Factory = std::function<torch::nn::Sequential()>;

void run_train_step(benchmark::State& state, const Factory& make, std::vector<int64_t> sample) {
  torch::manual_seed(0);
  auto model = make();
  model->train();
  std::vector<int64_t> shape{state.range(0)};
  shape.insert(shape.end(), sample.begin(), sample.end());
  auto x = torch::randn(shape);
  try {
    for (auto _ : state) {
      model->zero_grad();
      auto y = model->forward(x);
      y.sum().backward();
      benchmark::DoNotOptimize(y.data_ptr());
    }
  } catch (const c10::Error& e) {
    state.SkipWithError(e.what_without_backtrace());
    return;
  }
  state.SetItemsProcessed(state.iterations() * state.range(0));
}

// A plain residual block with the shapes of CPL/SLL conv: conv C->h, ReLU, conv h->C.
torch::nn::Sequential plain_conv_residual(int64_t c, int64_t h) {
  return torch::nn::Sequential(torch::nn::Conv2d(torch::nn::Conv2dOptions(c, h, 3).padding(1)),
                               torch::nn::ReLU(),
                               torch::nn::Conv2d(torch::nn::Conv2dOptions(h, c, 3).padding(1)));
}
torch::nn::Sequential plain_dense_residual(int64_t n, int64_t h) {
  return torch::nn::Sequential(torch::nn::Linear(n, h), torch::nn::ReLU(),
                               torch::nn::Linear(torch::nn::LinearOptions(h, n).bias(false)));
}
torch::nn::Sequential plain_conv(int64_t c) {
  return torch::nn::Sequential(torch::nn::Conv2d(torch::nn::Conv2dOptions(c, c, 3).padding(1)),
                               torch::nn::ReLU());
}
torch::nn::Sequential plain_dense(int64_t n) {
  return torch::nn::Sequential(torch::nn::Linear(n, n), torch::nn::ReLU());
}

// The monotonic networks' layer (Kitouni et al.) against a torch::nn::Linear of the same shape.
torch::nn::Sequential lipschitz_linear(int64_t n, const char* kind) {
  return torch::nn::Sequential(LipschitzLinear(LipschitzLinearOptions(n, n).kind(kind)));
}
torch::nn::Sequential linear(int64_t n) { return torch::nn::Sequential(torch::nn::Linear(n, n)); }

struct Pair {
  std::string name;
  Factory layer, plain;
  std::vector<int64_t> sample;
};

std::vector<Pair> pairs() {
  // Widths of the DESIGN.md presets: CPL-S stream 30 (dense 30*64 = 1920), SLL-S 45 (2880),
  // conv hidden 5, dense hidden 2048.
  return {
      {"CplConv2d(30,5)@32x32", [] { return torch::nn::Sequential(CplConv2d(30, 5)); },
       [] { return plain_conv_residual(30, 5); }, {30, 32, 32}},
      {"SllConv2d(45,5)@32x32", [] { return torch::nn::Sequential(SllConv2d(45, 5)); },
       [] { return plain_conv_residual(45, 5); }, {45, 32, 32}},
      {"CplLinear(1920,2048)", [] { return torch::nn::Sequential(CplLinear(1920, 2048)); },
       [] { return plain_dense_residual(1920, 2048); }, {1920}},
      {"SllLinear(2880,2048)", [] { return torch::nn::Sequential(SllLinear(2880, 2048)); },
       [] { return plain_dense_residual(2880, 2048); }, {2880}},
      {"AolConv2d(45,45)@32x32", [] { return torch::nn::Sequential(AolConv2d(45, 45)); },
       [] { return plain_conv(45); }, {45, 32, 32}},
      {"SpectralConv2d(45,45)@32x32", [] { return torch::nn::Sequential(SpectralConv2d(45, 45)); },
       [] { return plain_conv(45); }, {45, 32, 32}},
      {"AolLinear(2048,2048)", [] { return torch::nn::Sequential(AolLinear(2048, 2048)); },
       [] { return plain_dense(2048); }, {2048}},
      {"SpectralLinear(2048,2048)", [] { return torch::nn::Sequential(SpectralLinear(2048, 2048)); },
       [] { return plain_dense(2048); }, {2048}},
      {"OrthogonalLinear(1024,1024)",
       [] { return torch::nn::Sequential(OrthogonalLinear(1024, 1024)); },
       [] { return plain_dense(1024); }, {1024}},
      {"LipschitzLinear-inf(2048,2048)", [] { return lipschitz_linear(2048, "inf"); }, [] { return linear(2048); },
       {2048}},
      {"LipschitzLinear-one-inf(2048,2048)", [] { return lipschitz_linear(2048, "one-inf"); },
       [] { return linear(2048); }, {2048}},
      {"LipschitzLinear-two(1024,1024)", [] { return lipschitz_linear(1024, "two"); }, [] { return linear(1024); },
       {1024}},
      {"LipschitzLinear-inf(32,32)", [] { return lipschitz_linear(32, "inf"); }, [] { return linear(32); }, {32}},
      {"MaxMin(46)@32x32", [] { return torch::nn::Sequential(MaxMin()); },
       [] { return torch::nn::Sequential(torch::nn::ReLU()); }, {46, 32, 32}},
  };
}

// The adjoint convolution of CPL/SLL: lipkit's conv2d_adjoint against LibTorch's conv_transpose2d.
void run_adjoint(benchmark::State& state, bool ours) {
  torch::manual_seed(0);
  auto kernel = torch::randn({5, 45, 3, 3});
  auto y = torch::randn({state.range(0), 5, 32, 32});
  torch::NoGradGuard no_grad;
  for (auto _ : state) {
    auto out = ours ? lipkit::linalg::conv2d_adjoint(y, kernel, 1) : torch::conv_transpose2d(y, kernel, {}, 1, 1);
    benchmark::DoNotOptimize(out.data_ptr());
  }
  state.SetItemsProcessed(state.iterations() * state.range(0));
}

// The float64 evaluation of a CPL/SLL conv layer (what certification runs): the fused map
// kernels::conv2d_residual against the same arithmetic as separate passes, and the fused map on the
// AVX2 body where the CPU also has AVX-512. range(0): channels, range(1): hidden channels; batch 100.
enum class EvalMap { fused, fused_avx2, passes };
void run_residual(benchmark::State& state, EvalMap kind) {
  const bool fused = kind != EvalMap::passes;
  const bool avx512 = lipkit::kernels::set_avx512_enabled(kind != EvalMap::fused_avx2);
  torch::manual_seed(0);
  const int64_t c = state.range(0), h = state.range(1);
  auto x = torch::randn({100, c, 32, 32}, torch::kDouble), w = torch::randn({h, c, 3, 3}, torch::kDouble) * 0.1;
  auto b = torch::randn({h}, torch::kDouble), step = torch::full({}, 0.3, torch::kDouble);
  torch::NoGradGuard no_grad;
  for (auto _ : state) {
    auto out = fused ? lipkit::kernels::conv2d_residual(x, w, b, 1, step, 1.0)
                     : x - lipkit::kernels::conv2d_adjoint(torch::relu(lipkit::kernels::conv2d(x, w, b, 1)) * step, w, 1);
    benchmark::DoNotOptimize(out.data_ptr());
  }
  state.SetItemsProcessed(state.iterations() * 100);
  lipkit::kernels::set_avx512_enabled(avx512);
}

// Collects the times so the ratios can be printed once everything ran.
class RatioReporter : public benchmark::ConsoleReporter {
 public:
  void ReportRuns(const std::vector<Run>& runs) override {
    ConsoleReporter::ReportRuns(runs);
    for (const auto& r : runs) {
      if (r.run_type == Run::RT_Iteration && !r.error_occurred)
        times_[r.run_name.function_name + "/" + r.run_name.args] = r.GetAdjustedRealTime();
    }
  }
  void Finalize() override {
    ConsoleReporter::Finalize();
    std::printf("\n%-30s %6s %12s %12s %8s\n", "layer (train fwd+bwd)", "batch", "layer ms",
                "plain ms", "ratio");
    for (const auto& p : pairs()) {
      for (int64_t b : {64, 256}) print_row(p.name, b, "layer/" + p.name, "plain/" + p.name);
    }
    std::printf("\n%-30s %6s %12s %12s %8s\n", "adjoint conv (45<-5, 32x32)", "batch",
                "ours ms", "transpose ms", "speedup");
    for (int64_t b : {64, 256}) {
      auto a = find("adjoint/conv2d_adjoint", b), t = find("adjoint/conv_transpose2d", b);
      if (a > 0 && t > 0) std::printf("%-30s %6ld %12.2f %12.2f %7.2fx\n", "", (long)b, a, t, t / a);
    }
    std::printf("\n%-30s %6s %12s %12s %8s %12s %8s\n", "float64 CPL/SLL conv eval", "batch", "fused ms",
                "passes ms", "speedup", "AVX2 ms", "speedup");
    for (const char* shape : {"30/5", "45/45"}) {
      auto f = find_exact(std::string("residual/fused/") + shape), u = find_exact(std::string("residual/passes/") + shape);
      auto a = find_exact(std::string("residual/fused_avx2/") + shape);
      if (f > 0 && u > 0 && a > 0)
        std::printf("%-30s %6d %12.2f %12.2f %7.2fx %12.2f %7.2fx\n", shape, 100, f, u, u / f, a, a / f);
    }
  }

 private:
  double find(const std::string& prefix, int64_t batch) const { return find_exact(prefix + "/" + std::to_string(batch)); }
  double find_exact(const std::string& name) const {
    auto it = times_.find(name);
    return it == times_.end() ? -1.0 : it->second;
  }
  void print_row(const std::string& name, int64_t b, const std::string& l, const std::string& p) {
    const double lt = find(l, b), pt = find(p, b);
    if (lt > 0 && pt > 0)
      std::printf("%-30s %6ld %12.2f %12.2f %7.2fx\n", name.c_str(), (long)b, lt, pt, lt / pt);
  }
  std::map<std::string, double> times_;
};

}  // namespace

int main(int argc, char** argv) {
  configure_allocator();
  const int threads = configure_threads();
  std::printf("lipkit bench_layers: %d intra-op threads\n", threads);
  for (const auto& p : pairs()) {
    for (const char* kind : {"layer", "plain"}) {
      const bool is_layer = std::string(kind) == "layer";
      auto make = is_layer ? p.layer : p.plain;
      auto sample = p.sample;
      benchmark::RegisterBenchmark((std::string(kind) + "/" + p.name).c_str(),
                                   [make, sample](benchmark::State& s) { run_train_step(s, make, sample); })
          ->Arg(64)
          ->Arg(256)
          ->Unit(benchmark::kMillisecond)
          ->MinTime(0.5)
          ->UseRealTime();
    }
  }
  for (bool ours : {true, false}) {
    benchmark::RegisterBenchmark(ours ? "adjoint/conv2d_adjoint" : "adjoint/conv_transpose2d",
                                 [ours](benchmark::State& s) { run_adjoint(s, ours); })
        ->Arg(64)
        ->Arg(256)
        ->Unit(benchmark::kMillisecond)
        ->MinTime(0.5)
        ->UseRealTime();
  }
  const std::pair<EvalMap, const char*> maps[] = {
      {EvalMap::fused, "residual/fused"}, {EvalMap::fused_avx2, "residual/fused_avx2"}, {EvalMap::passes, "residual/passes"}};
  for (const auto& [kind, name] : maps) {
    benchmark::RegisterBenchmark(name, [kind = kind](benchmark::State& s) { run_residual(s, kind); })
        ->Args({30, 5})
        ->Args({45, 45})
        ->Unit(benchmark::kMillisecond)
        ->MinTime(0.5)
        ->UseRealTime();
  }
  benchmark::Initialize(&argc, argv);
  RatioReporter reporter;
  benchmark::RunSpecifiedBenchmarks(&reporter);
  benchmark::Shutdown();
  return 0;
}
