// The l_inf-distance layer's kernels against two LibTorch baselines in the same run:
// torch::cdist(x, w, p = inf) with autograd, and the naive broadcast (x[:, None] - w[None]).abs().amax(-1)
// that builds the B x M x N tensor (skipped when that tensor exceeds --broadcast-limit GB).
// Shapes: MNIST and CIFAR l_inf-dist/SortNet layers at batch 64 and 256. Reports milliseconds,
// the speed-ups, achieved elements per second (B x M x N / time) and the growth of the process's
// peak memory during each measurement (first lipkit, then cdist, then broadcast, so each step up
// is that method's own peak).
#include <sys/resource.h>
#include <torch/torch.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>

#include "lipkit/lipkit.h"
#include "timing.h"

namespace {

using lipkit::bench::peak_mb;
using lipkit::bench::time_ms;

struct Row {
  double fwd, fwdbwd, mem;
};

Row measure(const std::function<torch::Tensor(const torch::Tensor&, const torch::Tensor&)>& op,
            const torch::Tensor& x, const torch::Tensor& w, int reps) {
  const double before = peak_mb();
  Row r;
  r.fwd = time_ms([&] {
    torch::NoGradGuard ng;
    op(x, w);
  }, reps);
  r.fwdbwd = time_ms([&] {
    auto xg = x.detach().requires_grad_(true), wg = w.detach().requires_grad_(true);
    op(xg, wg).sum().backward();
  }, reps);
  r.mem = peak_mb() - before;
  return r;
}

}  // namespace

int main(int argc, char** argv) {
  lipkit::configure_allocator();
  lipkit::configure_threads();
  double broadcast_limit_gb = 4.0;
  int reps = 5;
  for (int i = 1; i + 1 < argc; ++i) {
    if (!std::strcmp(argv[i], "--broadcast-limit")) broadcast_limit_gb = std::atof(argv[i + 1]);
    if (!std::strcmp(argv[i], "--reps")) reps = std::atoi(argv[i + 1]);
  }
  std::printf("l_inf-distance layer, float32, %d threads, AVX2 kernels: %s; median of %d runs\n",
              at::get_num_threads(), lipkit::kernels::avx2_available() ? "yes" : "no", reps);
  std::printf("%-22s %-10s %9s %9s %9s %9s %9s %9s %8s %8s %8s %8s %9s\n", "shape B x N -> M", "", "lipkit",
              "cdist", "bcast", "lp p=8", "sort k10", "lp p=1000", "x cdist", "x bcast", "G el/s", "", "mem MB");
  struct Shape {
    int64_t n, m;
  };
  const Shape shapes[] = {{784, 1024}, {3072, 1024}, {1024, 1024}, {5120, 5120}};
  auto lipkit_op = [](const torch::Tensor& x, const torch::Tensor& w) { return lipkit::kernels::linf_dist(x, w); };
  auto cdist_op = [](const torch::Tensor& x, const torch::Tensor& w) {
    return torch::cdist(x, w, std::numeric_limits<double>::infinity());
  };
  auto bcast_op = [](const torch::Tensor& x, const torch::Tensor& w) {
    return (x.unsqueeze(1) - w.unsqueeze(0)).abs().amax(-1);
  };
  for (int64_t b : {64, 256}) {
    for (const auto& s : shapes) {
      torch::manual_seed(0);
      auto x = torch::randn({b, s.n}), w = torch::randn({s.m, s.n});
      const double elems = double(b) * s.m * s.n;
      const Row lk = measure(lipkit_op, x, w, reps);
      const Row cd = measure(cdist_op, x, w, reps);
      const bool bc_ok = elems * 4 * 3 / 1e9 < broadcast_limit_gb;  // x - w, abs, and its gradient
      const Row bc = bc_ok ? measure(bcast_op, x, w, std::max(1, reps / 2)) : Row{0, 0, 0};
      const double lp8 = time_ms([&] {
        auto xg = x.detach().requires_grad_(true), wg = w.detach().requires_grad_(true);
        lipkit::kernels::lp_dist(xg, wg, 8.0).sum().backward();
      }, reps);
      // at p = 1000 nearly every term underflows: the kernel drops those below the float range
      // instead of computing with subnormal numbers (20x slower on some x86 CPUs)
      const double lp1000 = time_ms([&] {
        auto xg = x.detach().requires_grad_(true), wg = w.detach().requires_grad_(true);
        lipkit::kernels::lp_dist(xg, wg, 1000.0).sum().backward();
      }, reps);
      const double sort = time_ms([&] {
        torch::NoGradGuard ng;
        lipkit::kernels::sort_neuron(x, w, 0.7, 10);
      }, reps);
      char shape[64];
      std::snprintf(shape, sizeof shape, "%ld x %ld -> %ld", (long)b, (long)s.n, (long)s.m);
      auto bcs = [&](double v) {
        static char buf[4][32];
        static int k = 0;
        k = (k + 1) % 4;
        if (bc_ok) std::snprintf(buf[k], 32, "%9.1f", v); else std::snprintf(buf[k], 32, "%9s", "skip");
        return buf[k];
      };
      std::printf("%-22s %-10s %9.2f %9.2f %s %9s %9s %9s %7.1fx %7.0fx %8.1f %8s %5.0f/%.0f/%s\n", shape, "fwd", lk.fwd, cd.fwd,
                  bcs(bc.fwd), "", "", "", cd.fwd / lk.fwd, bc_ok ? bc.fwd / lk.fwd : 0.0, elems / lk.fwd / 1e6, "",
                  lk.mem, cd.mem, bc_ok ? std::to_string(int(bc.mem)).c_str() : "skip");
      std::printf("%-22s %-10s %9.2f %9.2f %s %9.2f %9.2f %9.2f %7.1fx %7.0fx %8.1f\n", "", "fwd+bwd", lk.fwdbwd, cd.fwdbwd,
                  bcs(bc.fwdbwd), lp8, sort, lp1000, cd.fwdbwd / lk.fwdbwd, bc_ok ? bc.fwdbwd / lk.fwdbwd : 0.0,
                  elems / lk.fwdbwd / 1e6);
      std::fflush(stdout);
    }
  }
  std::printf("\n(ms; 'x cdist' and 'x bcast' are speed-ups of lipkit; G el/s = B*M*N / lipkit time; mem = growth of\n"
              " peak RSS while measuring lipkit / cdist / broadcast, in that order; lp p=8, lp p=1000 and sort k10\n"
              " are lipkit's l_p training kernel (fwd+bwd) and SortNet evaluation kernel (fwd) on the same shape)\n");
}
