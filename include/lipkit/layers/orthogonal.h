#pragma once
// Orthogonal dense layer through the Cayley transform (as used by Trockman & Kolter, ICLR 2021):
//
//   Q = (I + A)^{-1} (I - A),  A = V - V^T skew-symmetric,  y = Q[:out, :in] x + b
//
// Q is exactly orthogonal (up to rounding) for every V, so the layer is norm-preserving when square
// and 1-Lipschitz in l2 when rectangular (a block of an orthogonal matrix has norm <= 1).

#include <torch/arg.h>
#include <torch/nn/cloneable.h>
#include <torch/nn/pimpl.h>
#include <torch/types.h>

#include "lipkit/layers/lipschitz_layer.h"

namespace lipkit {

namespace functional {
/// The Cayley transform of the skew part of a square matrix V: (I + A)^{-1} (I - A), A = V - V^T.
torch::Tensor cayley(const torch::Tensor& v);
/// x Q[:out, :in]^T for Q = cayley(v) without forming Q: Q = 2 (I + A)^{-1} - I, so with x padded
/// by zeros to n columns, x Q^T = 2 x (I + A)^{-T} - x, one LU of I + A and a solve with the batch as
/// right-hand sides (2 n^2 N flops instead of 2 n^3 for Q). The backward reuses the LU (one more
/// solve and one GEMM); it is not differentiable again (create_graph is refused by name).
torch::Tensor cayley_linear(const torch::Tensor& x, const torch::Tensor& v, int64_t out_features);
}  // namespace functional

struct OrthogonalLinearOptions {
  OrthogonalLinearOptions(int64_t in_features, int64_t out_features);
  TORCH_ARG(int64_t, in_features);
  TORCH_ARG(int64_t, out_features);
  TORCH_ARG(bool, bias) = true;
};

/// (N, in_features) -> (N, out_features). Parameters: v (n, n) with n = max(in, out), bias (out).
class OrthogonalLinearImpl : public torch::nn::Cloneable<OrthogonalLinearImpl>,
                             public LipschitzLayer {
 public:
  OrthogonalLinearImpl(int64_t in_features, int64_t out_features)
      : OrthogonalLinearImpl(OrthogonalLinearOptions(in_features, out_features)) {}
  explicit OrthogonalLinearImpl(const OrthogonalLinearOptions& options_);

  void reset() override;
  void reset_parameters();
  void pretty_print(std::ostream& stream) const override;
  torch::Tensor forward(const torch::Tensor& input);
  double lipschitz_bound(Norm norm) const override;
  /// The (out, in) block of the orthogonal matrix actually applied.
  torch::Tensor effective_weight() const;

  OrthogonalLinearOptions options;
  torch::Tensor v, bias;

 private:
  detail::CachedTensor weight_;  // eval mode: Q once, no linear solve per forward
};
TORCH_MODULE(OrthogonalLinear);

}  // namespace lipkit
