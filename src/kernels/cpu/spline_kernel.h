#pragma once
// CPU kernel of the per-channel linear spline (internal; the public op is in lipkit/kernels/spline.h).
// x is contiguous (N, C, M) (M: the flattened spatial size, 1 for dense inputs), coefficients (C, K),
// scale (C); float or double.

#include <ATen/core/Tensor.h>

#include <tuple>

namespace lipkit::kernels::cpu {

/// y = S_c(s_c x) / s_c, S_c the spline of row c on knots (k - (K - 1) / 2) grid, linear outside.
at::Tensor spline_forward(const at::Tensor& x, const at::Tensor& coefficients, const at::Tensor& scale, double grid);

/// (grad_x, grad_coefficients, grad_scale) in one pass over x: the slope of each element's interval,
/// its two interpolation weights scattered into per-block accumulators, and (slope x - y) / s.
std::tuple<at::Tensor, at::Tensor, at::Tensor> spline_backward(const at::Tensor& grad_y, const at::Tensor& x,
                                                                const at::Tensor& coefficients,
                                                                const at::Tensor& scale, double grid);

}  // namespace lipkit::kernels::cpu
