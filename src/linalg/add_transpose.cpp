#include "lipkit/linalg/add_transpose.h"

#include <ATen/Parallel.h>
#include <torch/torch.h>

namespace lipkit::linalg {

namespace {

constexpr int64_t kTile = 32;  // a tile and its transposed partner stay in L1

bool tiled(const torch::Tensor& m) {
  return m.device().is_cpu() && (m.scalar_type() == torch::kFloat || m.scalar_type() == torch::kDouble) &&
         !(torch::GradMode::is_enabled() && m.requires_grad());
}

template <typename T>
void add_transpose_tiles(const T* in, T* out, int64_t n, T alpha, T beta, T diagonal) {
  const int64_t tiles = (n + kTile - 1) / kTile;
  at::parallel_for(0, tiles, 1, [&](int64_t r0, int64_t r1) {
    // M^T's tile, copied once: its rows in M, a row-length apart, share a cache set; the + 1 keeps
    // the copy's columns apart
    T partner[kTile][kTile + 1];
    for (int64_t r = r0; r < r1; ++r) {
      const int64_t i0 = r * kTile, ni = std::min(kTile, n - i0);
      for (int64_t j0 = 0; j0 < n; j0 += kTile) {
        const int64_t nj = std::min(kTile, n - j0);
        for (int64_t j = 0; j < nj; ++j)
          for (int64_t i = 0; i < ni; ++i) partner[j][i] = in[(j0 + j) * n + i0 + i];
        for (int64_t i = 0; i < ni; ++i)
          for (int64_t j = 0; j < nj; ++j)
            out[(i0 + i) * n + j0 + j] = alpha * in[(i0 + i) * n + j0 + j] + beta * partner[j][i];
      }
      for (int64_t i = i0; i < i0 + ni; ++i) out[i * n + i] += diagonal;
    }
  });
}

}  // namespace

torch::Tensor add_transpose(const torch::Tensor& m, double alpha, double beta, double diagonal) {
  TORCH_CHECK(m.dim() == 2 && m.size(0) == m.size(1), "lipkit::linalg::add_transpose: M must be square, got shape ",
              m.sizes());
  if (!tiled(m)) {
    auto out = alpha * m + beta * m.t();
    return diagonal == 0.0 ? out : out + diagonal * torch::eye(m.size(0), m.options());
  }
  auto in = m.contiguous();
  auto out = torch::empty_like(in, at::MemoryFormat::Contiguous);
  AT_DISPATCH_FLOATING_TYPES(in.scalar_type(), "add_transpose", [&] {
    add_transpose_tiles<scalar_t>(in.data_ptr<scalar_t>(), out.data_ptr<scalar_t>(), in.size(0),
                                  static_cast<scalar_t>(alpha), static_cast<scalar_t>(beta),
                                  static_cast<scalar_t>(diagonal));
  });
  return out;
}

}  // namespace lipkit::linalg
