#include "lipkit/lipschitz/bounds.h"

#include <torch/torch.h>

#include <cmath>

#include "lipkit/layers/structure.h"
#include "layer_bounds.h"

namespace lipkit::lipschitz {

namespace {
double product_of_guarantees(const torch::nn::Module& module, Norm norm) {
  if (const auto* layer = dynamic_cast<const LipschitzLayer*>(&module)) {
    return layer->lipschitz_bound(norm);
  }
  if (dynamic_cast<const torch::nn::FlattenImpl*>(&module) ||
      dynamic_cast<const torch::nn::IdentityImpl*>(&module)) {
    return 1.0;
  }
  if (const auto* res = dynamic_cast<const ResidualImpl*>(&module)) {
    return 1.0 + product_of_guarantees(*res->branch, norm);
  }
  if (dynamic_cast<const torch::nn::SequentialImpl*>(&module)) {
    double bound = 1.0;
    for (const auto& child : module.children()) bound *= product_of_guarantees(*child, norm);
    return bound;
  }
  TORCH_CHECK(false, "lipkit::lipschitz::model_bound: no ", to_string(norm),
              " Lipschitz bound known for module ", module.name(),
              "; use lipkit layers, or bound an ordinary network with `lipkit lipschitz` / "
              "`lipkit certify --bound gram`");
}
}  // namespace

double model_bound(const torch::nn::Module& module, Norm norm) {
  invalidate_eval_caches();
  return product_of_guarantees(module, norm);
}

BoundMethod parse_bound_method(const std::string& name) {
  if (name == "gram") return BoundMethod::Gram;
  if (name == "exact") return BoundMethod::Exact;
  if (name == "power") return BoundMethod::Power;
  TORCH_CHECK(false, "bound method must be gram, exact or power, got '", name, "'");
}

std::string to_string(BoundMethod m) {
  return m == BoundMethod::Gram ? "gram" : m == BoundMethod::Exact ? "exact" : "power";
}

namespace {
using detail::printed;

void bound_into(torch::nn::Sequential& seq, torch::Tensor& x, BoundMethod method, int64_t iters,
                BoundReport& report);

LayerBound residual_bound(ResidualImpl& res, const torch::Tensor& x, BoundMethod method, int64_t iters) {
  BoundReport branch;
  auto xb = x.clone();
  bound_into(res.branch, xb, method, iters, branch);
  LayerBound b{"lipkit::Residual(1 + " + std::to_string(branch.layers.size()) + "-layer branch bound)"};
  b.bound = 1.0 + branch.product;
  b.proven = branch.proven;
  return b;
}

void bound_module(const std::shared_ptr<torch::nn::Module>& mod, torch::Tensor& x, BoundMethod method,
                  int64_t iters, BoundReport& report) {
  if (mod->as<torch::nn::SequentialImpl>()) {
    torch::nn::Sequential nested(std::dynamic_pointer_cast<torch::nn::SequentialImpl>(mod));
    bound_into(nested, x, method, iters, report);
    return;
  }
  const std::vector<int64_t> in(x.sizes().begin() + 1, x.sizes().end());
  LayerBound b{printed(*mod)};
  if (const auto* lip = dynamic_cast<const LipschitzLayer*>(mod.get())) {
    b.bound = lip->lipschitz_bound(Norm::L2);
  } else if (auto* res = mod->as<ResidualImpl>()) {
    b = residual_bound(*res, x, method, iters);
  } else if (auto ordinary = detail::ordinary_layer_bound(mod, in, method, iters)) {
    b = *ordinary;
  } else {
    TORCH_CHECK(false, "upper_bound: no Lipschitz bound for layer ", b.layer,
                " (supported: lipkit layers and Residual, Linear, Conv2d, ConvTranspose2d, "
                "BatchNorm1d/2d with running statistics, Avg/MaxPool2d, AdaptiveAvg/MaxPool2d, padding layers, "
                "Upsample, ReLU, ReLU6, LeakyReLU, ELU, Tanh, Hardtanh, Softplus, Sigmoid, Flatten, Identity, "
                "Dropout, Sequential)");
  }
  report.layers.push_back(b);
  report.product *= b.bound;
  report.proven = report.proven && b.proven;
}

void bound_into(torch::nn::Sequential& seq, torch::Tensor& x, BoundMethod method, int64_t iters,
                BoundReport& report) {
  for (auto it = seq->begin(); it != seq->end(); ++it) {
    bound_module(it->ptr(), x, method, iters, report);
    torch::NoGradGuard no_grad;
    x = it->forward(x);  // the next layer's input shape
  }
}

}  // namespace

BoundReport upper_bound(torch::nn::Sequential& model, std::vector<int64_t> sample_shape,
                        BoundMethod method, int64_t iters) {
  invalidate_eval_caches();
  model->eval();
  std::vector<int64_t> shape{1};
  shape.insert(shape.end(), sample_shape.begin(), sample_shape.end());
  auto like = model->parameters().empty() ? torch::zeros({}) : model->parameters()[0];
  auto x = torch::zeros(shape, like.options().requires_grad(false));
  BoundReport report;
  bound_into(model, x, method, iters, report);
  return report;
}

}  // namespace lipkit::lipschitz
