#include "lipkit/layers/operators.h"

#include <torch/library.h>
#include <torch/types.h>

#include "lipkit/layers/orthogonal.h"
#include "lipkit/layers/sortnet.h"
#include "lipkit/linalg/exact_norm.h"
#include "lipkit/linalg/gram.h"
#include "lipkit/linalg/gram_iteration.h"
#include "lipkit/linalg/power_iteration.h"
#include "lipkit/linalg/spectral_bound.h"

namespace lipkit {

namespace {
torch::Tensor op_power_iteration_dense(const torch::Tensor& weight, torch::Tensor u, int64_t iters) {
  return linalg::power_iteration_dense(weight, u, iters);
}
torch::Tensor op_power_iteration_conv(const torch::Tensor& kernel, torch::Tensor u, int64_t padding, int64_t iters) {
  return linalg::power_iteration_conv(kernel, u, padding, iters);
}
double op_gram_iteration_bound(const torch::Tensor& weight, int64_t iters) {
  return linalg::gram_iteration_bound(weight.detach(), iters);
}
double op_spectral_norm_bound(const torch::Tensor& weight) { return linalg::spectral_norm_bound(weight.detach()); }
double op_conv2d_norm_bound(const torch::Tensor& kernel, int64_t height, int64_t width, int64_t padding) {
  return linalg::conv2d_norm_bound(kernel.detach(), height, width, padding);
}
double op_spectral_norm_exact(const torch::Tensor& matrix) { return linalg::spectral_norm_exact(matrix.detach()); }
std::vector<int64_t> op_sortnet_subset(int64_t seed, int64_t step, int64_t n, double q) {
  TORCH_CHECK(n > 0 && q > 0 && q <= 1, "lipkit::sortnet_subset: need n > 0 and q in (0, 1], got n=", n, ", q=", q);
  return sortnet_subset(static_cast<uint64_t>(seed), step, n, q);
}
}  // namespace

TORCH_LIBRARY_FRAGMENT(lipkit, m) {
  m.def("gram(Tensor weight) -> Tensor", &linalg::gram);
  m.def("abs_gram_mv(Tensor weight, Tensor v) -> Tensor", &linalg::abs_gram_mv);
  m.def("power_iteration_dense(Tensor weight, Tensor(a!) u, int iters) -> Tensor", &op_power_iteration_dense);
  m.def("power_iteration_conv(Tensor kernel, Tensor(a!) u, int padding, int iters) -> Tensor", &op_power_iteration_conv);
  m.def("gram_iteration_bound(Tensor weight, int iters=16) -> float", &op_gram_iteration_bound);
  m.def("spectral_norm_bound(Tensor weight) -> float", &op_spectral_norm_bound);
  m.def("conv2d_norm_bound(Tensor kernel, int height, int width, int padding) -> float", &op_conv2d_norm_bound);
  m.def("spectral_norm_exact(Tensor matrix) -> float", &op_spectral_norm_exact);
  m.def("sortnet_subset(int seed, int step, int n, float q) -> int[]", &op_sortnet_subset);
  m.def("cayley_linear(Tensor x, Tensor v, int out_features) -> Tensor", &functional::cayley_linear);
}

std::vector<std::string> register_layer_operators() {
  return {"lipkit::gram", "lipkit::abs_gram_mv", "lipkit::power_iteration_dense", "lipkit::power_iteration_conv", "lipkit::gram_iteration_bound",
          "lipkit::spectral_norm_bound", "lipkit::conv2d_norm_bound",     "lipkit::spectral_norm_exact",  "lipkit::sortnet_subset",
          "lipkit::cayley_linear"};
}

}  // namespace lipkit
