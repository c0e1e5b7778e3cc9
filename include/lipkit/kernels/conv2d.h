#pragma once
// Stride-1 convolution evaluated directly in float64 on the CPU. LibTorch's float64 CPU convolution
// (slow_conv2d: im2col, then one small GEMM per image) is 2-5x slower at the channel counts of the CPL
// and SLL presets, and certification evaluates a float64 copy of the model. Forward only: the
// dispatching conv2d below takes it only when no gradient is recorded.

#include <torch/types.h>

namespace lipkit::kernels {

/// conv2d(x, w, bias, stride 1, padding) by the direct kernel (register-blocked over 5 output channels
/// and two vectors of columns; AVX2 where the CPU has it; the zero padding applied inside). requires:
/// CPU float64 x (N, Ci, H, W), w (Co, Ci, k, k), bias (Co) or undefined, 0 <= padding, no gradient
/// recorded for them.
/// throws: c10::Error naming the shapes or the requirement.
torch::Tensor conv2d_direct(const torch::Tensor& x, const torch::Tensor& w, const torch::Tensor& bias,
                            int64_t padding);

/// conv2d(x, w, bias, 1, padding): conv2d_direct for CPU float64 tensors when no gradient is recorded
/// (certification, evaluation), LibTorch's convolution otherwise.
torch::Tensor conv2d(const torch::Tensor& x, const torch::Tensor& w, const torch::Tensor& bias, int64_t padding);

/// The adjoint y -> conv_transpose2d(y, w, padding) (linalg::conv2d_adjoint) through conv2d above.
torch::Tensor conv2d_adjoint(const torch::Tensor& y, const torch::Tensor& w, int64_t padding);

/// x - alpha * conv2d_adjoint(relu(conv2d(x, w, bias, 1, padding)) * scale, w, padding): the residual
/// map of CPL (scale = its step, alpha = 1) and SLL (scale = T^-1 per channel, alpha = 2). scale is one
/// value (0-d) or one per output channel; alpha 1 or 2, so alpha * v is exact. For CPU float64 without
/// gradients, both passes of the direct kernel run image by image with relu, scale and the residual
/// applied as each value is stored, rounding exactly as the expression; otherwise the expression in
/// LibTorch operators. throws: c10::Error for another alpha, a scale or bias of the wrong size, or a
/// padding outside [0, k - 1].
torch::Tensor conv2d_residual(const torch::Tensor& x, const torch::Tensor& w, const torch::Tensor& bias,
                              int64_t padding, const torch::Tensor& scale, double alpha);

}  // namespace lipkit::kernels
