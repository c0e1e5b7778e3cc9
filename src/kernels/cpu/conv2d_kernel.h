#pragma once
// CPU kernel of the direct stride-1 convolution (internal; the public functions are in
// lipkit/kernels/conv2d.h). xpad is the zero-padded input, contiguous (N, Ci, Hp, Wp); w (Co, Ci, k, k)
// contiguous; bias (Co) or undefined; float64.

#include <ATen/core/Tensor.h>

namespace lipkit::kernels::cpu {

/// What is done to each output value v = conv + bias before it is stored, in this order (each step the
/// same floating-point operation as the unfused tensor expression, so the result is bit for bit the
/// same): v = max(v, 0) if relu; v = v * channel_scale[co] if given; v = v * scale; v = residual - v if
/// given (residual contiguous, the output's shape). The output gets a zero border of out_padding.
struct Epilogue {
  bool relu = false;
  const double* channel_scale = nullptr;
  double scale = 1.0;
  const double* residual = nullptr;
  int64_t out_padding = 0;
};

/// out (N, Co, Hp - k + 1 + 2 p, Wp - k + 1 + 2 p), p = epilogue.out_padding, inside the border:
/// epilogue(sum over (ci, a, c) of w[co, ci, a, c] xpad[n, ci, i + a, j + c] + bias[co]).
at::Tensor conv2d_direct_forward(const at::Tensor& xpad, const at::Tensor& w, const at::Tensor& bias,
                                 const Epilogue& epilogue = {});

}  // namespace lipkit::kernels::cpu
