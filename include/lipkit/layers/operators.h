#pragma once
// The layer numerics the Python twins (python/lipkit/nn.py) call, as PyTorch operators next to the
// kernels' (kernels/operators.h), so Python runs the same C++ for what certifies and what is random:
//
//   lipkit::gram(Tensor weight) -> Tensor                  (W W^T with the one-GEMM backward)
//   lipkit::abs_gram_mv(Tensor weight, Tensor v) -> Tensor  (|W W^T| v, fused backward: SLL, AOL)
//   lipkit::power_iteration_dense(Tensor weight, Tensor(a!) u, int iters) -> Tensor
//   lipkit::power_iteration_conv(Tensor kernel, Tensor(a!) u, int padding, int iters) -> Tensor
//   lipkit::gram_iteration_bound(Tensor weight, int iters) -> float
//   lipkit::spectral_norm_bound(Tensor weight) -> float
//   lipkit::conv2d_norm_bound(Tensor kernel, int height, int width, int padding) -> float
//   lipkit::spectral_norm_exact(Tensor matrix) -> float
//   lipkit::sortnet_subset(int seed, int step, int n, float q) -> int[]
//   lipkit::cayley_linear(Tensor x, Tensor v, int out_features) -> Tensor  (OrthogonalLinear's training map)

#include <string>
#include <vector>

namespace lipkit {

/// The registered names; call once to make sure this file's registrations are linked in.
std::vector<std::string> register_layer_operators();

}  // namespace lipkit
