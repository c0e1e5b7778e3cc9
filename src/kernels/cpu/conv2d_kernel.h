#pragma once
// CPU kernel of the direct stride-1 convolution (internal; the public functions are in
// lipkit/kernels/conv2d.h). float64, contiguous tensors; zero padding is applied inside the kernel.

#include <ATen/core/Tensor.h>

namespace lipkit::kernels::cpu {

/// What happens to each output value v = bias[co] + sum of w x, in this order, before it is stored:
/// v = max(v, 0) when relu; v *= scale[co] when scale is set; v = residual - alpha v when residual is
/// set (residual has the output's shape). Each step is the one rounding the unfused expression makes.
struct ConvEpilogue {
  const double* bias = nullptr;
  bool relu = false;
  const double* scale = nullptr;
  const double* residual = nullptr;
  double alpha = 1.0;
};

/// out (N, Co, H + 2p - k + 1, W + 2p - k + 1)[n, co, i, j] = epilogue of
/// sum over (ci, a, c) of w[co, ci, a, c] x[n, ci, i + a - p, j + c - p] (0 outside x), summed in that
/// order from bias[co] (0 without bias). x (N, Ci, H, W) and w (Co, Ci, k, k) contiguous, p >= 0.
at::Tensor conv2d_direct_forward(const at::Tensor& x, const at::Tensor& w, int64_t padding, const ConvEpilogue& e);

/// x - alpha * conv(h, adjoint_w, adjoint_padding), h = conv2d_direct_forward(x, w, padding, hidden),
/// image by image (both passes while the image is in cache, h never in memory as a whole). The
/// second pass must map back to x's shape.
at::Tensor conv2d_residual_forward(const at::Tensor& x, const at::Tensor& w, const at::Tensor& adjoint_w,
                                   int64_t padding, int64_t adjoint_padding, const ConvEpilogue& hidden, double alpha);

}  // namespace lipkit::kernels::cpu
