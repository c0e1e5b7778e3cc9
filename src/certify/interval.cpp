#include "lipkit/certify/interval.h"

#include <torch/torch.h>

#include <cmath>
#include <limits>

#include "lipkit/certify/certify.h"
#include "lipkit/layers/activations.h"
#include "lipkit/layers/linf_dist.h"
#include "lipkit/layers/mean_shift.h"
#include "lipkit/layers/sortnet.h"
#include "lipkit/layers/spline.h"
#include "lipkit/layers/structure.h"

namespace lipkit::certify {

namespace {
using Box = std::pair<torch::Tensor, torch::Tensor>;

// Rounding. Distance layers (LinfDist, SortNet) compute each bound as a max (or top-k weighted sum,
// k <= 10, weights summing to 1) of differences u_i - w_i, w_i - l_i plus a bias: at most 13
// roundings, relative 1.5e-15 of max |bound| in float64; MeanShift, InputNormalization and the
// monotone maps add at most 2 more per layer. Every layer is 1-Lipschitz in l_inf, so errors do not
// grow: 100 layers stay under 2e-13 (1 + max |bound|), far below the slack of 1e-6 (1 + max |bound|)
// that interval_certified subtracts. A Linear layer can cancel large terms, so it rounds outward.
Box linear_box(const torch::nn::LinearImpl& l, const torch::Tensor& lo, const torch::Tensor& hi) {
  const double u = lo.scalar_type() == torch::kDouble ? std::numeric_limits<double>::epsilon()
                                                      : std::numeric_limits<float>::epsilon();  // 2x unit roundoff
  const double tiny = lo.scalar_type() == torch::kDouble ? std::numeric_limits<double>::min()
                                                         : std::numeric_limits<float>::min();
  auto w = l.weight.to(lo.scalar_type());
  auto c = (lo + hi) / 2;
  auto r = (hi - lo) / 2;
  r = r + 2 * u * (c.abs() + r) + tiny;  // [lo, hi] inside [c - r, c + r] despite rounding
  auto b = l.bias.defined() ? l.bias.to(lo.scalar_type()) : torch::Tensor();
  auto center = torch::nn::functional::linear(c, w, b);
  auto aw = w.abs();
  // dot products of length n: error <= gamma_n * sum |terms| (Higham), gamma_n = n u / (1 - n u)
  const double n = double(w.size(1) + 2);
  const double gamma = n * u / (1 - n * u);
  auto terms = torch::nn::functional::linear(c.abs() + r, aw, b.defined() ? b.abs() : torch::Tensor());
  auto radius = torch::nn::functional::linear(r, aw) + gamma * (1 + 2 * gamma) * terms + tiny;
  const double inf = std::numeric_limits<double>::infinity();
  return {torch::nextafter(center - radius, torch::full({}, -inf, lo.options())),
          torch::nextafter(center + radius, torch::full({}, inf, lo.options()))};
}

// Bounds through one module, or false when it is not supported (reason in `why`).
bool propagate(const std::shared_ptr<torch::nn::Module>& m, Box* box, std::string* why) {
  auto& [lo, hi] = *box;
  const bool run = lo.defined();
  if (auto* n = m->as<InputNormalizationImpl>()) {  // affine per channel (decreasing if a loaded std is < 0)
    if (run) {
      auto a = n->forward(lo), b = n->forward(hi);
      lo = torch::min(a, b), hi = torch::max(a, b);
    }
    return true;
  }
  if (m->as<torch::nn::FlattenImpl>() || m->as<torch::nn::IdentityImpl>() || m->as<torch::nn::DropoutImpl>()) {
    if (run && m->as<torch::nn::FlattenImpl>()) lo = lo.flatten(1), hi = hi.flatten(1);
    return true;
  }
  if (auto* d = m->as<LinfDistLinearImpl>()) {
    if (!std::isinf(d->p())) {
      *why = "LinfDistLinear has p = " + std::to_string(d->p()) + " (interval bounds need p = inf)";
      return false;
    }
    if (run) *box = d->interval_bounds(lo, hi);
    return true;
  }
  if (auto* s = m->as<SortNetLinearImpl>()) {
    if (run) *box = s->interval_bounds(lo, hi);
    return true;
  }
  if (auto* sp = m->as<LinearSplineImpl>()) {  // exact: the ends and the knots inside
    if (run) *box = sp->interval_bounds(lo, hi);
    return true;
  }
  if (auto* ms = m->as<MeanShiftImpl>()) {
    if (run) lo = ms->forward(lo), hi = ms->forward(hi);  // eval: a constant shift
    return true;
  }
  if (m->as<NegatedDistanceImpl>()) {
    if (run) *box = {-hi, -lo};
    return true;
  }
  if (auto* l = m->as<torch::nn::LinearImpl>()) {
    if (run) *box = linear_box(*l, lo, hi);
    return true;
  }
  // monotone (non-decreasing) coordinatewise maps and sorts: apply to each end
  if (m->as<torch::nn::ReLUImpl>() || m->as<torch::nn::TanhImpl>() || m->as<torch::nn::SigmoidImpl>() ||
      m->as<MaxMinImpl>() || m->as<GroupSortImpl>()) {
    if (run) {
      if (auto* r = m->as<torch::nn::ReLUImpl>()) lo = r->forward(lo), hi = r->forward(hi);
      else if (auto* t = m->as<torch::nn::TanhImpl>()) lo = t->forward(lo), hi = t->forward(hi);
      else if (auto* g = m->as<torch::nn::SigmoidImpl>()) lo = g->forward(lo), hi = g->forward(hi);
      else if (auto* mm = m->as<MaxMinImpl>()) lo = mm->forward(lo), hi = mm->forward(hi);
      else if (auto* gs = m->as<GroupSortImpl>()) lo = gs->forward(lo), hi = gs->forward(hi);
    }
    return true;
  }
  std::ostringstream name;
  m->pretty_print(name);
  *why = "no interval bounds for module " + name.str();
  return false;
}
}  // namespace

std::string interval_unsupported(torch::nn::Sequential& model) {
  Box none;
  std::string why;
  for (const auto& m : model->children())
    if (!propagate(m, &none, &why)) return why;
  return "";
}

std::pair<torch::Tensor, torch::Tensor> interval_bounds(torch::nn::Sequential& model,
                                                        const torch::Tensor& lower,
                                                        const torch::Tensor& upper) {
  TORCH_CHECK(lower.sizes() == upper.sizes(), "interval_bounds: lower ", lower.sizes(), " and upper ",
              upper.sizes(), " differ in shape");
  model->eval();
  torch::NoGradGuard no_grad;
  Box box{lower, upper};
  std::string why;
  for (const auto& m : model->children())
    TORCH_CHECK(propagate(m, &box, &why), "interval_bounds: ", why);
  return box;
}

torch::Tensor interval_certified(torch::nn::Sequential& model, const torch::Tensor& x,
                                 const torch::Tensor& y, double eps) {
  invalidate_eval_caches();
  return detail::interval_certified_as_is(model, x, y, eps);
}

torch::Tensor detail::interval_certified_as_is(torch::nn::Sequential& model, const torch::Tensor& x,
                                               const torch::Tensor& y, double eps) {
  torch::NoGradGuard no_grad;
  auto [lo, hi] = interval_bounds(model, (x - eps).clamp(0.0, 1.0), (x + eps).clamp(0.0, 1.0));
  const double slack = margin_slack(lo.scalar_type()) *
                       (1.0 + torch::max(lo.abs().max(), hi.abs().max()).item<double>());
  auto ly = lo.gather(1, y.view({-1, 1}));
  auto others = torch::ones_like(hi, torch::kBool).scatter_(1, y.view({-1, 1}), false);
  auto gap = (ly - hi - slack).masked_fill(~others, std::numeric_limits<double>::infinity());
  return std::get<0>(gap.min(1)) > 0;
}

}  // namespace lipkit::certify
