#pragma once
// Provably monotonic Lipschitz networks (Kitouni, Nolte, Williams, ICLR 2023):
//
//   f(x) = g(x) + lambda * C x,   C (outputs x inputs) with entries in {+1, 0, -1}
//
// where g is lambda-Lipschitz from l1 to l_inf, i.e. every partial derivative |dg_k/dx_i| <= lambda.
// Then df_k/dx_i = dg_k/dx_i + lambda C_ki >= 0 where C_ki = +1 and <= 0 where C_ki = -1: f_k is
// non-decreasing (non-increasing) in those inputs, provably, for any weights.

#include <torch/arg.h>
#include <torch/nn/cloneable.h>
#include <torch/nn/modules/container/sequential.h>
#include <torch/nn/pimpl.h>
#include <torch/types.h>

#include <string>

#include "lipkit/layers/lipschitz_layer.h"
#include "lipkit/layers/lipschitz_linear.h"

namespace lipkit {

/// The bound of `body` as an operator from l_`in` to l_`out`: the product of its layers' bounds along
/// the chain of norms. LipschitzLinear layers contribute their pair bound (a layer bounded from l_p
/// accepts inputs measured in any l_r with r <= p, since ||x||_p <= ||x||_r); GroupSort, MaxMin and
/// ReLU are 1-Lipschitz in every l_p. `refused` (if given) receives the first layer that breaks the
/// chain; the result is then kNoBound.
double chain_bound(torch::nn::Sequential& body, PNorm in, PNorm out, std::string* refused = nullptr);

struct MonotonicResidualOptions {
  /// constraints: (inputs) for one output or (outputs, inputs); +1 increasing, -1 decreasing, 0 free
  explicit MonotonicResidualOptions(torch::Tensor constraints);
  TORCH_ARG(torch::Tensor, constraints);
  /// lambda: the residual's weight and the largest l1 -> l_inf bound of the body allowed
  TORCH_ARG(double, lipschitz) = 1.0;
};

/// (N, inputs) -> (N, outputs): body(x) + lambda * x C^T. Submodule "body"; buffer "constraints".
class MonotonicResidualImpl : public torch::nn::Cloneable<MonotonicResidualImpl>, public LipschitzLayer {
 public:
  MonotonicResidualImpl(torch::nn::Sequential body, const MonotonicResidualOptions& options_);
  /// throws: c10::Error naming the problem when the constraints are not in {-1, 0, 1} or their shape
  /// does not fit, or when the body is not provably lambda-Lipschitz from l1 to l_inf by construction
  /// (a layer outside the chain, or the layers' bounds multiply to more than lambda).
  void reset() override;
  /// A deep copy: the body is cloned too (Cloneable's default would share it).
  std::shared_ptr<torch::nn::Module> clone(
      const c10::optional<torch::Device>& device = c10::nullopt) const override;
  void pretty_print(std::ostream& stream) const override;
  torch::Tensor forward(const torch::Tensor& input);
  /// No l2 / l_inf statement: the guarantee is in the l1 -> l_inf pair (pair_bound()).
  double lipschitz_bound(Norm) const override { return kNoBound; }
  /// The body's l1 -> l_inf bound from its current weights (<= lambda for a monotone guarantee).
  double body_bound() const;
  /// Whether the monotonicity holds for certain with the current weights: body_bound() <= lambda.
  bool monotone_proven() const;
  /// The whole map's l1 -> l_inf bound: body_bound() + lambda max |C| (every partial derivative).
  double pair_bound() const;

  MonotonicResidualOptions options;
  torch::nn::Sequential body{nullptr};
  torch::Tensor constraints;  // (outputs, inputs), float
};
TORCH_MODULE(MonotonicResidual);

}  // namespace lipkit
