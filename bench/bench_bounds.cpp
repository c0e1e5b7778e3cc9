// Spectral-norm bounds of a CIFAR-shaped convolution (64 -> 64 channels, 3x3, 32x32 input, zero
// padding 1): Gram iteration (Fourier domain), 100 power iterations, the exact circular norm by
// FFT + SVD, and the exact norm by SVD of the unrolled 65536 x 65536 operator (skipped unless
// --with-svd: it needs 34 GB and hours). Prints time and relative error against the reference.
#include <torch/torch.h>

#include <chrono>
#include <cstdio>
#include <cstring>

#include "lipkit/lipkit.h"

using namespace lipkit;
using namespace lipkit::lipschitz;
using namespace lipkit::linalg;

namespace {
template <typename F>
std::pair<double, double> timed(F f) {
  auto t0 = std::chrono::steady_clock::now();
  const double v = f();
  return {v, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count()};
}
}  // namespace

int main(int argc, char** argv) {
  configure_allocator();
  configure_threads();
  bool with_svd = false;
  for (int i = 1; i < argc; ++i) with_svd |= std::strcmp(argv[i], "--with-svd") == 0;
  torch::manual_seed(0);
  const int64_t c = 64, n = 32, p = 1;
  auto kernel = torch::randn({c, c, 3, 3}, torch::kDouble) / 24.0;

  // Reference: the zero-padded operator's norm from a long power iteration (converges from below),
  // bracketed by the proven circular bound from above.
  auto u = torch::randn({1, c, n, n}, torch::kDouble);
  const auto ref_run = timed([&] { return power_iteration_conv(kernel, u, p, 3000).item<double>(); });
  const double power_ref = ref_run.first, t_ref = ref_run.second;
  std::printf("conv 64->64, 3x3, 32x32, zero padding 1; %d threads\n", at::get_num_threads());
  std::printf("reference: power iteration, 3000 steps: %.8f (%.1f s; a lower bound)\n\n", power_ref, t_ref);
  std::printf("%-40s %12s %10s %12s %s\n", "method", "value", "seconds", "rel. error", "guarantee");
  auto row = [&](const char* name, double v, double t, const char* g) {
    std::printf("%-40s %12.8f %10.3f %+12.2e %s\n", name, v, t, (v - power_ref) / power_ref, g);
  };
  for (int64_t iters : {4, 6, 8, 10}) {
    auto [v, t] = timed([&] { return gram_iteration_conv_bound(kernel, n, n, p, iters); });
    char name[64];
    std::snprintf(name, sizeof name, "Gram iteration (Fourier), %ld squarings", (long)iters);
    row(name, v, t, "upper bound");
  }
  {
    auto [v, t] = timed([&] { return circular_conv_norm(kernel, n + p, n + p); });
    row("circular embedding, FFT + SVD (exact)", v, t, "upper bound");
  }
  {
    auto u2 = torch::randn({1, c, n, n}, torch::kDouble);
    auto [v, t] = timed([&] { return power_iteration_conv(kernel, u2, p, 100).item<double>(); });
    row("power iteration, 100 steps", v, t, "lower estimate");
  }
  if (with_svd) {
    auto [v, t] = timed([&] { return spectral_norm_exact(conv2d_matrix(kernel, n, n, p)); });
    row("SVD of the unrolled operator", v, t, "exact");
  } else {
    // The same comparison at 8x8, where the unrolled operator (4096 x 4096) is small enough.
    auto k8 = kernel;
    auto [exact, t_svd] = timed([&] { return spectral_norm_exact(conv2d_matrix(k8, 8, 8, p)); });
    auto [g, t_g] = timed([&] { return gram_iteration_conv_bound(k8, 8, 8, p, 8); });
    auto u8 = torch::randn({1, c, 8, 8}, torch::kDouble);
    auto [pw, t_p] = timed([&] { return power_iteration_conv(k8, u8, p, 100).item<double>(); });
    std::printf("\nat 8x8 (unrolled operator 4096 x 4096): exact SVD %.8f in %.2f s; Gram(8) %+.2e in %.3f s; "
                "power(100) %+.2e in %.3f s\n",
                exact, t_svd, (g - exact) / exact, t_g, (pw - exact) / exact, t_p);
    std::printf("(the 32x32 unrolled operator is 65536 x 65536: 34 GB in float64; run with --with-svd on a big machine)\n");
  }
  return 0;
}
