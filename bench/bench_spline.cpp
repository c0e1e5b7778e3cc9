// LinearSpline forward and forward+backward (the whole layer: slope projection, input scale, spline,
// gradients w.r.t. input, coefficients and scales) with the CPU kernel against the same layer on the
// LibTorch-ops path (gather), and against MaxMin and ReLU on the same tensor, in one run. float32.
#include <torch/torch.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "lipkit/lipkit.h"
#include "timing.h"

using lipkit::bench::time_ms;

namespace {

struct Times {
  double fwd, fwdbwd;
};

Times measure(torch::nn::AnyModule m, const torch::Tensor& x, int reps) {
  Times t;
  t.fwd = time_ms([&] {
    torch::NoGradGuard ng;
    m.forward(x);
  }, reps);
  t.fwdbwd = time_ms([&] {
    auto xg = x.detach().requires_grad_(true);
    m.forward(xg).sum().backward();
  }, reps);
  return t;
}

}  // namespace

int main(int argc, char** argv) {
  lipkit::configure_allocator();
  lipkit::configure_threads();
  int reps = 7;
  for (int i = 1; i + 1 < argc; ++i)
    if (!std::strcmp(argv[i], "--reps")) reps = std::atoi(argv[i + 1]);
  std::printf("LinearSpline (51 knots), float32, %d threads, median of %d runs, ms\n", at::get_num_threads(), reps);
  std::printf("%-20s %-8s %9s %9s %9s %9s %9s %9s\n", "shape", "", "kernel", "ops", "MaxMin", "ReLU", "x ops",
              "/ MaxMin");
  const std::vector<std::vector<int64_t>> shapes = {{64, 1024}, {256, 1024}, {256, 4096}, {64, 32, 32, 32},
                                                    {256, 64, 16, 16}};
  for (const auto& shape : shapes) {
    torch::manual_seed(0);
    auto x = torch::randn(shape);
    lipkit::LinearSpline spline(lipkit::LinearSplineOptions(shape[1]).init("maxmin"));
    {
      torch::NoGradGuard ng;
      spline->coefficients.add_(0.05 * torch::randn_like(spline->coefficients));  // a trained-looking spline
    }
    const Times kernel = measure(torch::nn::AnyModule(spline), x, reps);
    lipkit::kernels::set_chunked_fallback(true);
    const Times ops = measure(torch::nn::AnyModule(spline), x, reps);
    lipkit::kernels::set_chunked_fallback(false);
    const Times maxmin = measure(torch::nn::AnyModule(lipkit::MaxMin()), x, reps);
    const Times relu = measure(torch::nn::AnyModule(torch::nn::ReLU()), x, reps);
    std::string name;
    for (size_t i = 0; i < shape.size(); ++i) name += (i ? "x" : "") + std::to_string(shape[i]);
    std::printf("%-20s %-8s %9.2f %9.2f %9.2f %9.2f %8.1fx %8.1fx\n", name.c_str(), "fwd", kernel.fwd, ops.fwd,
                maxmin.fwd, relu.fwd, ops.fwd / kernel.fwd, kernel.fwd / maxmin.fwd);
    std::printf("%-20s %-8s %9.2f %9.2f %9.2f %9.2f %8.1fx %8.1fx\n", "", "fwd+bwd", kernel.fwdbwd, ops.fwdbwd,
                maxmin.fwdbwd, relu.fwdbwd, ops.fwdbwd / kernel.fwdbwd, kernel.fwdbwd / maxmin.fwdbwd);
    std::fflush(stdout);
  }
  std::printf("\n('x ops': speed-up of the kernel over the same layer in LibTorch ops; '/ MaxMin': the spline's\n"
              " time as a multiple of MaxMin's on the same tensor)\n");
}
