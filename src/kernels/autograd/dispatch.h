#pragma once
// Shared by the autograd wrappers of the kernels (internal).

#include <torch/types.h>

namespace lipkit::kernels::detail {

/// Whether x goes to a hand-written CPU kernel: on the CPU, float or double, and the LibTorch path
/// not forced by set_chunked_fallback.
bool cpu_kernel(const torch::Tensor& x);

/// The kernels' backward is not differentiable: refuses gradients of gradients instead of returning
/// silently wrong ones.
void refuse_double_backward(const char* op);

}  // namespace lipkit::kernels::detail
