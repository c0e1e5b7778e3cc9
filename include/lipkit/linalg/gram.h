#pragma once
// The Gram matrix W W^T with a one-GEMM backward.

#include <torch/types.h>

namespace lipkit::linalg {

/// W W^T for W of shape (m, n). Same value as torch::mm(W, W.t()); its backward computes
/// (G + G^T) W in one GEMM where autograd through mm runs two. SLL and AOL spend most of their
/// dense training step in this product and its gradient.
torch::Tensor gram(const torch::Tensor& weight);

}  // namespace lipkit::linalg
