#include "lipkit/kernels/operators.h"

#include <torch/csrc/jit/frontend/resolver.h>
#include <torch/csrc/jit/frontend/sugared_value.h>
#include <torch/library.h>
#include <torch/types.h>

#include "lipkit/kernels/dist.h"
#include "lipkit/kernels/spline.h"

namespace lipkit::kernels {

namespace {
torch::Tensor op_lp_dist(const torch::Tensor& x, const torch::Tensor& w, double p) { return lp_dist(x, w, p); }

torch::Tensor op_sort_neuron(const torch::Tensor& x, const torch::Tensor& w, double q, int64_t k) {
  return sort_neuron(x, w, q, k);
}

std::tuple<torch::Tensor, torch::Tensor> op_sort_neuron_bounds(const torch::Tensor& lower, const torch::Tensor& upper,
                                                               const torch::Tensor& w, double q, int64_t k) {
  auto [lo, hi] = sort_neuron_bounds(lower, upper, w, q, k);
  return {lo, hi};
}

torch::Tensor op_linear_spline(const torch::Tensor& x, const torch::Tensor& coefficients, const torch::Tensor& scale,
                               double grid) {
  return linear_spline(x, coefficients, scale, grid);
}
}  // namespace

// Composite registrations: the functions dispatch to the CPU kernels or the LibTorch path themselves
// and carry their own autograd, so one kernel serves every device and autograd.
TORCH_LIBRARY(lipkit, m) {
  m.def("lp_dist(Tensor x, Tensor w, float p) -> Tensor", &op_lp_dist);
  m.def("sort_neuron(Tensor x, Tensor w, float q, int k) -> Tensor", &op_sort_neuron);
  m.def("sort_neuron_bounds(Tensor lower, Tensor upper, Tensor w, float q, int k) -> (Tensor, Tensor)",
        &op_sort_neuron_bounds);
  m.def("linear_spline(Tensor x, Tensor coefficients, Tensor scale, float grid) -> Tensor", &op_linear_spline);
}

namespace {
struct LipkitResolver : torch::jit::Resolver {
  std::shared_ptr<torch::jit::SugaredValue> resolveValue(const std::string& name, torch::jit::GraphFunction& m,
                                                         const torch::jit::SourceRange& loc) override {
    if (name == "lipkit") return std::make_shared<torch::jit::BuiltinModule>("lipkit");
    return torch::jit::nativeResolver()->resolveValue(name, m, loc);
  }
  c10::TypePtr resolveType(const std::string& name, const torch::jit::SourceRange& loc) override {
    return torch::jit::nativeResolver()->resolveType(name, loc);
  }
};
}  // namespace

std::shared_ptr<torch::jit::Resolver> script_resolver() { return std::make_shared<LipkitResolver>(); }

std::vector<std::string> register_operators() {
  return {"lipkit::lp_dist", "lipkit::sort_neuron", "lipkit::sort_neuron_bounds", "lipkit::linear_spline"};
}

}  // namespace lipkit::kernels
