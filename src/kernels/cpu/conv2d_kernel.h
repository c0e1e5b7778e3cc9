#pragma once
// CPU kernel of the direct stride-1 convolution (internal; the public functions are in
// lipkit/kernels/conv2d.h). xpad is the zero-padded input, contiguous (N, Ci, Hp, Wp); w (Co, Ci, k, k)
// contiguous; bias (Co) or undefined; float64.

#include <ATen/core/Tensor.h>

namespace lipkit::kernels::cpu {

/// out (N, Co, Hp - k + 1, Wp - k + 1) = sum over (ci, a, c) of w[co, ci, a, c] xpad[n, ci, i + a, j + c] + bias[co].
at::Tensor conv2d_direct_forward(const at::Tensor& xpad, const at::Tensor& w, const at::Tensor& bias);

}  // namespace lipkit::kernels::cpu
