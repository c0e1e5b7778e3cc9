#include "lipkit/dp/sensitivity.h"

#include <torch/torch.h>

#include <cmath>
#include <limits>
#include <set>
#include <sstream>

#include "lipkit/layers/activations.h"
#include "lipkit/layers/dp_linear.h"
#include "lipkit/layers/structure.h"

namespace lipkit::dp {

namespace {
constexpr double kInf = std::numeric_limits<double>::infinity();
// Float32 rounding of the forward and backward passes: every bound is inflated by this factor.
constexpr double kRoundingSlack = 1e-4;

// How one module maps bounds: output norm from input norm, and the Jacobian's norm (backward factor).
struct Step {
  std::string name;
  double out_norm = kInf, jacobian = 1;
  std::vector<torch::Tensor> params;
  bool has_bias = false, is_linear = false;
};

std::string name_of(const torch::nn::Module& m) {
  std::ostringstream s;
  m.pretty_print(s);
  return s.str();
}

Step step_of(const std::shared_ptr<torch::nn::Module>& m, double in_norm, size_t index) {
  Step s{std::to_string(index) + ": " + name_of(*m)};
  if (auto* d = m->as<DpLinearImpl>()) {
    const double w = d->weight_norm_bound();
    const double b = d->bias.defined() ? d->bias.detach().to(torch::kDouble).norm().item<double>() : 0.0;
    s.out_norm = w * in_norm + b;
    s.jacobian = w;
    s.params = {d->weight};
    if (d->bias.defined()) s.params.push_back(d->bias);
    s.has_bias = d->bias.defined();
    s.is_linear = true;
    return s;
  }
  if (auto* c = m->as<DpBoundedInputImpl>()) {
    s.out_norm = std::min(in_norm, c->options.norm());
    return s;
  }
  if (m->as<torch::nn::FlattenImpl>() || m->as<MaxMinImpl>() || m->as<GroupSortImpl>() || m->as<torch::nn::ReLUImpl>() ||
      m->as<FirstChannelsImpl>()) {
    s.out_norm = in_norm;  // norm-preserving permutations, or 1-Lipschitz with f(0) = 0
    return s;
  }
  if (auto* n = m->as<InputNormalizationImpl>()) {
    TORCH_CHECK(std::isinf(in_norm), "dp::sensitivities: ", s.name,
                " after the DpBoundedInput would change the input-norm bound; put it before");
    s.jacobian = n->inv_std.abs().max().item<double>();
    return s;
  }
  TORCH_CHECK(false, "dp::sensitivities: no per-example gradient bound for ", s.name,
              " (supported: DpBoundedInput, DpLinear, Flatten, MaxMin, GroupSort, ReLU, FirstChannels, and "
              "InputNormalization before the DpBoundedInput); train it without dp, or build the model from these");
}
}  // namespace

double loss_lipschitz(const std::string& loss, int64_t classes) {
  TORCH_CHECK(classes >= 2, "dp::loss_lipschitz: at least 2 classes, got ", classes);
  if (loss == "ce" || loss == "offset_ce") return std::sqrt(2.0);
  if (loss == "multi_margin") return std::sqrt(double(classes - 1) / double(classes));
  TORCH_CHECK(false, "dp: loss '", loss, "' has no known bound on its per-example gradient w.r.t. the logits ",
              "(private training supports ce, offset_ce and multi_margin)");
}

std::vector<LayerSensitivity> sensitivities(torch::nn::Sequential& model, double loss_lipschitz) {
  TORCH_CHECK(loss_lipschitz > 0 && std::isfinite(loss_lipschitz), "dp::sensitivities: the loss bound must be ",
              "positive and finite, got ", loss_lipschitz);
  std::vector<Step> steps;
  std::vector<double> in_norms;
  double norm = kInf;
  const auto children = model->children();
  for (size_t i = 0; i < children.size(); ++i) {
    in_norms.push_back(norm);
    steps.push_back(step_of(children[i], norm, i));
    TORCH_CHECK(steps.back().params.empty() || std::isfinite(norm), "dp::sensitivities: ", steps.back().name,
                " has parameters but no input-norm bound: put a DpBoundedInput before it");
    norm = steps.back().out_norm;
  }
  std::vector<LayerSensitivity> out;
  double grad = loss_lipschitz;  // bound at the current layer's output, walking backwards
  for (size_t i = steps.size(); i-- > 0;) {
    const auto& s = steps[i];
    if (!s.params.empty()) {
      const double x = in_norms[i];
      const double joint = s.has_bias ? std::sqrt(x * x + 1) : x;  // ||g x^T||_F = ||g|| ||x||; bias: ||g||
      out.insert(out.begin(), {s.name, s.params, x, grad, joint * grad * (1 + kRoundingSlack)});
    }
    grad *= s.jacobian;
  }
  std::set<const void*> covered;
  for (const auto& l : out)
    for (const auto& p : l.parameters) covered.insert(p.unsafeGetTensorImpl());
  for (const auto& p : model->named_parameters())
    TORCH_CHECK(!p.value().requires_grad() || covered.count(p.value().unsafeGetTensorImpl()),
                "dp::sensitivities: trainable parameter '", p.key(), "' has no sensitivity bound");
  return out;
}

double global_sensitivity(const std::vector<LayerSensitivity>& layers) {
  double s = 0;
  for (const auto& l : layers) s += l.bound * l.bound;
  return std::sqrt(s);
}

}  // namespace lipkit::dp
