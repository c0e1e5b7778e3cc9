#pragma once
// alpha M + beta M^T + diagonal I for a square M: the skew part of Cayley's A = V - V^T, the
// symmetric G + G^T of a Gram's backward. ATen reads M^T with a stride of a row per element (about
// 15x an ordinary elementwise pass at 1024 x 1024); this kernel reads M by 32 x 32 tiles.

#include <torch/types.h>

namespace lipkit::linalg {

/// alpha M + beta M^T + diagonal I for M of shape (n, n), as a new contiguous tensor. Differentiable:
/// when autograd records, it is the plain ATen expression; otherwise (and on CPU for float and
/// double) one tiled pass.
torch::Tensor add_transpose(const torch::Tensor& m, double alpha, double beta, double diagonal = 0.0);

}  // namespace lipkit::linalg
