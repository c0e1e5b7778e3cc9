#include "lipkit/linalg/conv_adjoint.h"

#include <torch/torch.h>

namespace lipkit::linalg {

torch::Tensor conv2d_adjoint(const torch::Tensor& y, const torch::Tensor& kernel, int64_t padding) {
  const int64_t kh = kernel.size(2), kw = kernel.size(3);
  TORCH_CHECK(padding >= 0 && padding <= kh - 1 && padding <= kw - 1,
              "conv2d_adjoint: padding must be in [0, kernel_size - 1], got ", padding,
              " for kernel ", kh, "x", kw);
  auto flipped = kernel.transpose(0, 1).flip({2, 3});
  return torch::conv2d(y, flipped, {}, 1, {kh - 1 - padding, kw - 1 - padding});
}

}  // namespace lipkit::linalg
