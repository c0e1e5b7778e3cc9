#include "lipkit/linalg/gram.h"

#include <torch/torch.h>

namespace lipkit::linalg {

namespace {
class GramFunction : public torch::autograd::Function<GramFunction> {
 public:
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& w) {
    ctx->save_for_backward({w});
    return torch::mm(w, w.t());
  }
  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    auto w = ctx->get_saved_variables()[0];
    const auto& g = grads[0];
    return {torch::mm(g + g.t(), w)};
  }
};
}  // namespace

torch::Tensor gram(const torch::Tensor& weight) {
  TORCH_CHECK(weight.dim() == 2, "lipkit::functional::gram: expected a matrix, got shape ",
              weight.sizes());
  return GramFunction::apply(weight);
}

}  // namespace lipkit::linalg
