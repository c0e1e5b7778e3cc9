#pragma once
// The adjoint of a stride-1 convolution, computed as an ordinary convolution.

#include <torch/types.h>

#include <utility>

namespace lipkit::linalg {

/// Adjoint of x -> conv2d(x, kernel, stride 1, padding): y -> conv_transpose2d(y, kernel, padding),
/// computed as conv2d(y, kernel with in/out channels swapped and taps flipped, padding k-1-padding).
/// Same value and gradients; about 3-12x faster than conv_transpose2d on CPU because it goes through
/// oneDNN's convolution path. requires: square kernel side k, 0 <= padding <= k - 1.
torch::Tensor conv2d_adjoint(const torch::Tensor& y, const torch::Tensor& kernel, int64_t padding);

/// The kernel and padding of that ordinary convolution: (kernel with in/out channels swapped and taps
/// flipped, k - 1 - padding). throws: c10::Error when padding is outside [0, k - 1].
std::pair<torch::Tensor, int64_t> adjoint_kernel(const torch::Tensor& kernel, int64_t padding);

}  // namespace lipkit::linalg
