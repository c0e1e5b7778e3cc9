#include "lipkit/linalg/lu.h"

#include <ATen/Dispatch.h>
#include <torch/torch.h>

#include <cmath>

namespace lipkit::linalg {
namespace {

constexpr int64_t kBase = 32;  // blocks up to this order are factored by the plain loop

void check_pivot(double p, int64_t k) {
  TORCH_CHECK(std::isfinite(p) && p != 0, "lipkit::lu_no_pivot: pivot ", k, " is ", p,
              "; the matrix needs pivoting (its symmetric part is not positive definite)");
}

// Right-looking elimination of a (small) block in place; rows are contiguous, row stride `ld`.
template <typename T>
void base_lu_cpu(T* a, int64_t n, int64_t ld, int64_t offset) {
  for (int64_t k = 0; k < n; ++k) {
    const T p = a[k * ld + k];
    check_pivot(static_cast<double>(p), offset + k);
    const T inv = T(1) / p;
    for (int64_t i = k + 1; i < n; ++i) {
      T* row = a + i * ld;
      const T l = row[k] * inv;
      row[k] = l;
      const T* top = a + k * ld;
      for (int64_t j = k + 1; j < n; ++j) row[j] -= l * top[j];
    }
  }
}

// The same with tensor operations (devices other than the CPU).
void base_lu_generic(torch::Tensor a, int64_t offset) {
  const int64_t n = a.size(0);
  for (int64_t k = 0; k < n; ++k) {
    check_pivot(a[k][k].item<double>(), offset + k);
    if (k + 1 == n) break;
    auto col = a.narrow(0, k + 1, n - k - 1).select(1, k);
    col.div_(a[k][k]);
    a.narrow(0, k + 1, n - k - 1).narrow(1, k + 1, n - k - 1).sub_(col.unsqueeze(1) * a[k].narrow(0, k + 1, n - k - 1));
  }
}

// M = [M11 M12; M21 M22]: factor M11, then U12 = L11^{-1} M12, L21 = M21 U11^{-1}, and the Schur
// complement M22 - L21 U12 (one GEMM) recursively. `a` is a view into the packed result.
void lu_recursive(torch::Tensor a, int64_t offset) {
  const int64_t n = a.size(0);
  if (n <= kBase) {
    if (a.is_cpu()) {
      AT_DISPATCH_FLOATING_TYPES(a.scalar_type(), "lu_no_pivot", [&] {
        base_lu_cpu<scalar_t>(a.data_ptr<scalar_t>(), n, a.stride(0), offset);
      });
    } else {
      base_lu_generic(a, offset);
    }
    return;
  }
  const int64_t h = (n / 2 + kBase - 1) / kBase * kBase;  // a multiple of the base: aligned blocks
  auto a11 = a.narrow(0, 0, h).narrow(1, 0, h), a12 = a.narrow(0, 0, h).narrow(1, h, n - h);
  auto a21 = a.narrow(0, h, n - h).narrow(1, 0, h), a22 = a.narrow(0, h, n - h).narrow(1, h, n - h);
  lu_recursive(a11, offset);
  a12.copy_(torch::linalg_solve_triangular(a11, a12, /*upper=*/false, /*left=*/true, /*unitriangular=*/true));
  a21.copy_(torch::linalg_solve_triangular(a11, a21, /*upper=*/true, /*left=*/false, /*unitriangular=*/false));
  a22.addmm_(a21, a12, /*beta=*/1, /*alpha=*/-1);
  lu_recursive(a22, offset + h);
}

}  // namespace

torch::Tensor lu_no_pivot(const torch::Tensor& m) {
  TORCH_CHECK(m.dim() == 2 && m.size(0) == m.size(1), "lipkit::lu_no_pivot: expected a square matrix, got shape ",
              m.sizes());
  TORCH_CHECK(m.is_floating_point(), "lipkit::lu_no_pivot: expected float or double, got ", m.scalar_type());
  auto lu = m.clone(at::MemoryFormat::Contiguous);
  if (lu.numel() > 0) lu_recursive(lu, 0);
  return lu;
}

torch::Tensor lu_solve_right_transposed(const torch::Tensor& lu, const torch::Tensor& b) {
  // X U^T L^T = B: first W L^T = B (L^T upper, unit), then X U^T = W (U^T lower)
  auto w = torch::linalg_solve_triangular(lu.t(), b, /*upper=*/true, /*left=*/false, /*unitriangular=*/true);
  return torch::linalg_solve_triangular(lu.t(), w, /*upper=*/false, /*left=*/false, /*unitriangular=*/false);
}

torch::Tensor lu_solve_right(const torch::Tensor& lu, const torch::Tensor& b) {
  // X L U = B: first Y U = B, then X L = Y (L unit lower)
  auto y = torch::linalg_solve_triangular(lu, b, /*upper=*/true, /*left=*/false, /*unitriangular=*/false);
  return torch::linalg_solve_triangular(lu, y, /*upper=*/false, /*left=*/false, /*unitriangular=*/true);
}

}  // namespace lipkit::linalg
