#pragma once
// CPU kernels of the distance layers (internal; the public ops are in lipkit/kernels/dist.h).
// All take contiguous 2-D float or double tensors: x (B, N), w (M, N); outputs are (B, M).

#include <ATen/core/Tensor.h>

#include <tuple>

namespace lipkit::kernels::cpu {

/// y[b, m] = max_i |x[b, i] - w[m, i]|; with_index also returns the first arg-max (int32), else an
/// undefined tensor.
std::tuple<at::Tensor, at::Tensor> linf_dist_forward(const at::Tensor& x, const at::Tensor& w,
                                                     bool with_index);
/// Sparse backward from the saved arg-max: (grad_x, grad_w).
std::tuple<at::Tensor, at::Tensor> linf_dist_backward(const at::Tensor& grad_y, const at::Tensor& x,
                                                      const at::Tensor& w, const at::Tensor& index);

/// y[b, m] = ||x[b] - w[m]||_p, 1 <= p < inf, computed as max * (sum (d / max)^p)^(1/p).
at::Tensor lp_dist_forward(const at::Tensor& x, const at::Tensor& w, double p);
/// (grad_x, grad_w) with d y / d x_i = sign(d_i) (|d_i| / y)^(p - 1).
std::tuple<at::Tensor, at::Tensor> lp_dist_backward(const at::Tensor& grad_y, const at::Tensor& x,
                                                    const at::Tensor& w, const at::Tensor& y, double p);

/// Sort neuron: y = sum_{k<K} c_k z_(k) / (1 - (1-q)^K), c_k = q (1-q)^k, z_(k) the k-th largest
/// |x_i - w_i|. Returns y and the K arg positions (int32, (B, M, K)).
std::tuple<at::Tensor, at::Tensor> sort_neuron_forward(const at::Tensor& x, const at::Tensor& w,
                                                       double q, int64_t k);
std::tuple<at::Tensor, at::Tensor> sort_neuron_backward(const at::Tensor& grad_y, const at::Tensor& x,
                                                        const at::Tensor& w, const at::Tensor& index,
                                                        double q, int64_t k);

/// Interval bounds of the sort neuron (k = 1, q = 1: the l_inf-distance neuron) over the box
/// [lower, upper] (B, N): returns (y_lower, y_upper), each (B, M). Requires lower <= upper everywhere
/// (no NaN): sort_neuron_bounds checks it, and the tiled path relies on every value being >= 0.
std::tuple<at::Tensor, at::Tensor> sort_neuron_box(const at::Tensor& lower, const at::Tensor& upper,
                                                   const at::Tensor& w, double q, int64_t k);

/// Geometric weights c_k / (1 - (1-q)^K), k < K, normalized to sum to 1.
std::vector<double> sort_weights(double q, int64_t k);

}  // namespace lipkit::kernels::cpu
