#pragma once
// A proven upper bound of the spectral norm for the price of one Gram matrix and one or two Cholesky
// factorisations: s >= lambda_max(G), G = W^T W, exactly when s I - G is positive semidefinite, and a
// Cholesky factorisation that completes in floating point proves that up to rounding terms bounded a
// priori (the verification idea of Rump, Acta Numerica 2010; the error bounds of Higham, Accuracy and
// Stability of Numerical Algorithms, 2nd ed., Lemma 3.5 and Theorem 10.3).

#include <torch/types.h>

namespace lipkit::linalg {

/// Upper bound of ||W||_2 for a matrix W (rank 2, any shape), in float64. W is scaled by a power of two
/// (exact) so that max |w_ij| is in [1/2, 1); G is its smaller Gram matrix (inner dimension k, order n);
/// s = (1 + eps) times the largest Ritz value of at most 160 Lanczos steps (fixed start, full
/// reorthogonalisation, stopped once the Ritz value moves by < 1e-12 relative over 10 steps),
/// for eps = 1e-9, 1e-8, ..., 1e-1 until the Cholesky factorisation R^T R of fl(s I - G) completes. Then
///   ||W||_2^2 <= s + u (s + max_i G_ii) + c_{n+1} ||R||_F^2 + c_k ||W||_F^2 + 1e-290,
/// u = 2^-53, c_j = 2 j u / (1 - 2 j u) (twice Higham's gamma_j: any summation order, any blocking):
/// the terms bound the rounding of the diagonal shift, of the factorisation and of forming G, and
/// 1e-290 bounds what underflow adds. Falls back to gram_iteration_bound when no eps succeeds or W is
/// not finite. Deterministic; never below ||W||_2; about eps/2 above it (typically 1e-9).
double spectral_norm_bound(const torch::Tensor& weight);

}  // namespace lipkit::linalg
