#pragma once
// Plain LibTorch reference implementations of the distance ops (broadcast over a B x M x N
// tensor: only for small sizes). The kernels in src/kernels must match them in value and gradient.

#include <torch/torch.h>

namespace lipkit::testing {

/// max_i |x_i - w_i|, gradient to the first arg-max (gather of argmax)
torch::Tensor linf_dist_reference(const torch::Tensor& x, const torch::Tensor& w);
/// (sum_i |x_i - w_i|^p)^(1/p), rescaled by the (detached) max so that large p does not overflow
torch::Tensor lp_dist_reference(const torch::Tensor& x, const torch::Tensor& w, double p);
/// stable descending sort, first k, weights q (1-q)^t normalized to sum 1
torch::Tensor sort_neuron_reference(const torch::Tensor& x, const torch::Tensor& w, double q, int64_t k);

}  // namespace lipkit::testing
