#pragma once
// The kernels as PyTorch operators, `torch.ops.lipkit.*`, registered once (TORCH_LIBRARY) so C++
// callers through the dispatcher, TorchScript and (with the Python package) Python share them:
//
//   lipkit::lp_dist(Tensor x, Tensor w, float p) -> Tensor
//   lipkit::sort_neuron(Tensor x, Tensor w, float q, int k) -> Tensor
//   lipkit::sort_neuron_bounds(Tensor lower, Tensor upper, Tensor w, float q, int k) -> (Tensor, Tensor)
//   lipkit::linear_spline(Tensor x, Tensor coefficients, Tensor scale, float grid) -> Tensor
//
// Each runs the function of kernels/dist.h or kernels/spline.h (CPU kernel or LibTorch path, with its
// autograd), so gradients flow through the operators as through the functions.

#include <memory>
#include <string>
#include <vector>

namespace torch::jit {
struct Resolver;
}

namespace lipkit::kernels {

/// The registered operator names. The registration happens when this library's operator file is
/// linked in; a program that only loads TorchScript using torch.ops.lipkit calls this once to be sure.
std::vector<std::string> register_operators();

/// For TorchScript compiled from C++ (CompilationUnit::define, Module::define): resolves the name
/// `lipkit` to the registered namespace, so `lipkit.lp_dist(...)` calls lipkit::lp_dist, as
/// `torch.ops.lipkit.lp_dist` does in Python; every other name as LibTorch's native resolver.
std::shared_ptr<torch::jit::Resolver> script_resolver();

}  // namespace lipkit::kernels
