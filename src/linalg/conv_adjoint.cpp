#include "lipkit/linalg/conv_adjoint.h"

#include <torch/torch.h>

namespace lipkit::linalg {

std::pair<torch::Tensor, int64_t> adjoint_kernel(const torch::Tensor& kernel, int64_t padding) {
  const int64_t kh = kernel.size(2), kw = kernel.size(3);
  TORCH_CHECK(kh == kw && padding >= 0 && padding <= kh - 1, "conv2d_adjoint: padding must be in [0, kernel_size - 1] "
              "for a square kernel, got ", padding, " for kernel ", kh, "x", kw);
  return {kernel.transpose(0, 1).flip({2, 3}), kh - 1 - padding};
}

torch::Tensor conv2d_adjoint(const torch::Tensor& y, const torch::Tensor& kernel, int64_t padding) {
  const auto [flipped, flipped_padding] = adjoint_kernel(kernel, padding);
  return torch::conv2d(y, flipped, {}, 1, flipped_padding);
}

}  // namespace lipkit::linalg
