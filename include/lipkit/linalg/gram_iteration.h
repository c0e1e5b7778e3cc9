#pragma once
// Gram iteration (Delattre, Barthelemy, Araujo, Allauzen, ICML 2023): a guaranteed upper bound of the
// spectral norm that converges to it from above.

#include <torch/types.h>

namespace lipkit::linalg {

/// Upper bound of ||W||_2 for a matrix W (any shape, rank 2): with G_0 = W and G_{t+1} = G_t^T G_t,
/// ||W||_2 <= ||G_t||_F^(1/2^t), non-increasing in t and converging to ||W||_2. Computed in float64
/// with rescaling at every step (no overflow); stops after `max_iters` squarings or when the bound
/// changes by less than `rtol` (relative). The result includes a 1e-9 relative margin for rounding.
double gram_iteration_bound(const torch::Tensor& weight, int64_t max_iters = 16,
                            double rtol = 1e-7);

}  // namespace lipkit::linalg

namespace lipkit::linalg {

/// Upper bound of the zero-padded stride-1 convolution on height x width inputs by Gram iteration
/// in the Fourier domain (Delattre et al. 2023, conv form): the convolution is crop o circular conv
/// o embed on the (height + padding) x (width + padding) torus (norm <= the circular one), whose
/// per-frequency C_out x C_in matrices are squared `iters` times with rescaling; the bound is the
/// largest per-frequency ||G_t||_F^(1/2^t). Guaranteed upper bound, converging to the circular norm.
double gram_iteration_conv_bound(const torch::Tensor& kernel, int64_t height, int64_t width,
                                 int64_t padding, int64_t iters = 8);

}  // namespace lipkit::linalg
