#pragma once
// The per-channel linear spline of LinearSpline as one op: y = S_c(s_c x) / s_c for every element of
// channel c (dim 1), S_c the continuous piecewise-linear function with values coefficients[c, k] at
// the knots t_k = (k - (K - 1) / 2) grid, continued linearly with its end slopes. On the CPU (float,
// double) a one-pass kernel with a hand-written backward; elsewhere the same map in LibTorch ops.
// Differentiable in x, coefficients and scale.

#include <torch/types.h>

namespace lipkit::kernels {

/// requires: x (N, C, ...), coefficients (C, K) with K >= 2, scale (C) > 0; one floating dtype and
/// device. Values of x may be anything (NaN propagates).
/// throws: c10::Error naming `what`, the shapes and the problem.
torch::Tensor linear_spline(const torch::Tensor& x, const torch::Tensor& coefficients, const torch::Tensor& scale,
                            double grid, const char* what = "linear_spline");

}  // namespace lipkit::kernels
