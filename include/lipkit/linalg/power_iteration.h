#pragma once
// Power iteration on linear operators: the cheap, persisted-vector estimate of ||W||_2 used during
// training. An estimate converges to ||W||_2 from below: never a certificate on its own.

#include <torch/types.h>

namespace lipkit::linalg {

/// Runs `iters` power iterations for x -> W x (W of shape (m, n)), updating `u` (n elements, any
/// shape with n elements) in place without autograd, and returns sigma = ||W u||, differentiable in W.
torch::Tensor power_iteration_dense(const torch::Tensor& weight, torch::Tensor& u, int64_t iters);

/// Same for the stride-1 convolution x -> conv2d(x, kernel, padding) at the spatial size of `u`
/// (shape (1, C_in, H, W)): the true operator at that input size, not the reshaped kernel matrix.
torch::Tensor power_iteration_conv(const torch::Tensor& kernel, torch::Tensor& u, int64_t padding,
                                   int64_t iters);

}  // namespace lipkit::linalg

namespace lipkit::linalg {

/// Makes `u` (a registered buffer) a random unit vector of `shape` in place, unless it already has
/// that shape. Returns true when it was (re)initialized.
bool ensure_power_vector(torch::Tensor& u, torch::IntArrayRef shape);

}  // namespace lipkit::linalg
