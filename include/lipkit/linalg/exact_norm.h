#pragma once
// Exact spectral norms (ground truth for tests and small layers) and the proven bound for zero-padded
// convolutions through their circular embedding.

#include <torch/types.h>

namespace lipkit::linalg {

/// ||A||_2 of a matrix by SVD (float64). Exact up to rounding; O(min(m,n)^2 max(m,n)).
double spectral_norm_exact(const torch::Tensor& matrix);

/// The matrix (C_out*H_out*W_out, C_in*H*W) of x -> conv2d(x, kernel, stride, padding) on
/// (C_in, H, W) inputs, in float64: the unrolled (Toeplitz) operator. For small sizes only.
torch::Tensor conv2d_matrix(const torch::Tensor& kernel, int64_t height, int64_t width,
                            int64_t padding, int64_t stride = 1);

/// The per-frequency matrices of the circular convolution with `kernel` on an n_h x n_w torus:
/// (n_h * n_w, C_out, C_in) complex128, from the 2-D DFT of the kernel with its taps folded onto the
/// torus (taps that wrap add up).
torch::Tensor circular_kernel_spectrum(const torch::Tensor& kernel, int64_t n_h, int64_t n_w);

/// Exact ||.||_2 of the circular (periodic) convolution with `kernel` on an n_h x n_w torus:
/// max over the 2-D DFT frequencies of the largest singular value of the C_out x C_in matrix
/// sum_taps K[:, :, a, b] e^{-2 pi i (a u / n_h + b v / n_w)}.
double circular_conv_norm(const torch::Tensor& kernel, int64_t n_h, int64_t n_w);

/// Proven upper bound of ||x -> conv2d(x, kernel, stride 1, padding)||_2 on H x W inputs: the zero-padded
/// convolution is crop(circular_conv(embed(x))) on the (H + padding) x (W + padding) torus, and
/// crop and embed have norm 1, so the exact circular norm bounds it (and is close for H, W >> k).
/// Includes a 1e-9 relative margin for the float64 rounding of the FFT and SVD. Operators with at
/// most kUnrollLimit inputs also get Gram iteration on the unrolled matrix, and the smaller
/// of the two proven bounds is returned.
constexpr int64_t kUnrollLimit = 2048;
double conv2d_norm_bound(const torch::Tensor& kernel, int64_t height, int64_t width,
                         int64_t padding);

}  // namespace lipkit::linalg
