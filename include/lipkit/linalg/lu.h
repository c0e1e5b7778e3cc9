#pragma once
// LU factorisation without pivoting, for matrices whose symmetric part is positive definite (such as
// I + A with A skew-symmetric, the Cayley transform's matrix). For those every leading block is
// invertible and every Schur complement S again has a positive-definite symmetric part (z = (-M11^-1
// M12 y, y) gives M z = (0, S y), so y^T S y = z^T M z > 0): no pivot can vanish, no row exchanges are
// needed, and the factorisation can run as a recursive blocked algorithm
// whose flops are almost all triangular solves and GEMMs (LAPACK's getrf pivots panel by panel).

#include <torch/types.h>

namespace lipkit::linalg {

/// The packed factors of a square matrix M = L U (L unit lower triangular below the diagonal, U on and
/// above it), computed without pivoting. Any device; float or double.
/// throws: c10::Error if M is not square or a pivot is zero or not finite (then M needs pivoting).
torch::Tensor lu_no_pivot(const torch::Tensor& m);

/// X M^{-T} for packed factors `lu` of M (solves X M^T = B from the right: B L^{-T} U^{-T}), B (N, n).
torch::Tensor lu_solve_right_transposed(const torch::Tensor& lu, const torch::Tensor& b);

/// B M^{-1} for packed factors `lu` of M (B U^{-1} L^{-1}), B (N, n).
torch::Tensor lu_solve_right(const torch::Tensor& lu, const torch::Tensor& b);

}  // namespace lipkit::linalg
