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

/// relu(conv2d(x, w, bias, 1, padding)) * scale, scale one value (0-d) or one per output channel: the
/// hidden activations of CPL and SLL. For CPU float64 without gradients, one pass of the direct kernel
/// (the same roundings as the expression); otherwise the LibTorch expression.
torch::Tensor conv2d_relu_scale(const torch::Tensor& x, const torch::Tensor& w, const torch::Tensor& bias,
                                int64_t padding, const torch::Tensor& scale);

/// residual - alpha * conv2d_adjoint(y, w, padding), alpha 1 or 2 (so alpha * v is exact): the
/// residual update of CPL and SLL, fused like conv2d_relu_scale. throws: c10::Error for another alpha
/// or a residual whose shape is not the adjoint's output.
torch::Tensor conv2d_adjoint_residual(const torch::Tensor& residual, const torch::Tensor& y, const torch::Tensor& w,
                                      int64_t padding, double alpha);

}  // namespace lipkit::kernels
