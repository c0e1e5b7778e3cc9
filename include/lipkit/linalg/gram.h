#pragma once
// The Gram matrix W W^T (one triangle of GEMMs, a one-GEMM backward) and the absolute Gram row sums
// |W W^T| v that SLL's T and AOL's rescaling are made of.

#include <torch/types.h>

namespace lipkit::linalg {

/// W W^T for W of shape (m, n). The value of torch::mm(W, W.t()) up to rounding, made exactly
/// symmetric; from 1024 rows on only the blocks on and above the diagonal are computed. Its backward computes (G + G^T) W in one
/// GEMM where autograd through mm runs two.
torch::Tensor gram(const torch::Tensor& weight);

/// |W W^T| v for W (m, n) and v (m): the absolute Gram matrix times a vector, differentiable in W and
/// v. The Gram is built on one triangle and kept for the backward, which forms
/// sign(G) * (dt v^T + v dt^T) in one pass and multiplies it by W in one GEMM: no |G|, outer-product
/// or transposed-sum temporaries.
torch::Tensor abs_gram_mv(const torch::Tensor& weight, const torch::Tensor& v);

}  // namespace lipkit::linalg
