#pragma once
// Distance "contractions" of l_inf-distance nets and SortNet: like a matrix product of x (B, N)
// and w (M, N), with multiply-add replaced by |x_i - w_i| and a max, an l_p sum or a sorted sum.
// On the CPU these run hand-written kernels (AVX2 where the CPU has it, a portable vector body
// otherwise, parallel over the cores); memory is O(B x M) plus the saved arg-max indices, never
// B x M x N. Other devices use a chunked LibTorch implementation. All are differentiable in x and w.

#include <torch/types.h>

#include <limits>
#include <utility>

namespace lipkit::kernels {

constexpr double kInf = std::numeric_limits<double>::infinity();

/// y[b, m] = ||x[b] - w[m]||_p for p in [1, inf]; p = inf is max_i |x[b, i] - w[m, i]| (its
/// gradient goes to the first arg-max, sign(x_i - w_i), 0 where x_i == w_i).
/// requires: x (B, N), w (M, N), same floating dtype and device, finite values.
/// throws: c10::Error naming `what`, the shapes and the problem.
torch::Tensor lp_dist(const torch::Tensor& x, const torch::Tensor& w, double p = kInf,
                      const char* what = "lp_dist");
inline torch::Tensor linf_dist(const torch::Tensor& x, const torch::Tensor& w) { return lp_dist(x, w, kInf, "linf_dist"); }

/// SortNet neuron, truncated as in the official evaluation code: with z_(1) >= z_(2) >= ... the
/// sorted |x[b, i] - w[m, i]|, y = sum_{t<k} q (1-q)^t z_(t+1) / (1 - (1-q)^k). k <= min(64, N).
torch::Tensor sort_neuron(const torch::Tensor& x, const torch::Tensor& w, double q, int64_t k,
                          const char* what = "sort_neuron");

/// Interval bounds of sort_neuron (k = 1: of linf_dist) when each x[b, i] ranges over
/// [lower[b, i], upper[b, i]]: returns (y_lower, y_upper). No gradient.
std::pair<torch::Tensor, torch::Tensor> sort_neuron_bounds(const torch::Tensor& lower,
                                                           const torch::Tensor& upper,
                                                           const torch::Tensor& w, double q, int64_t k);

/// Routes every call through the chunked LibTorch path other devices use, also on the CPU (tests
/// check it against the kernels); returns the previous setting.
bool set_chunked_fallback(bool enabled);

/// Whether the CPU kernels may use AVX2 (compiled in and supported by this CPU).
bool avx2_available();
/// Switches the AVX2 bodies on or off (tests run both); returns the previous setting.
bool set_avx2_enabled(bool enabled);
/// Whether the float64 convolution may use its AVX-512 body (this CPU has AVX-512F as well as AVX2).
bool avx512_available();
/// Switches that body on or off (off: the AVX2 body; set_avx2_enabled(false) also turns it off);
/// returns the previous setting.
bool set_avx512_enabled(bool enabled);

}  // namespace lipkit::kernels
