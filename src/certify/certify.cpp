#include "lipkit/certify/certify.h"

#include <torch/torch.h>

#include <cmath>

#include "lipkit/certify/interval.h"
#include "lipkit/data/transforms.h"
#include "lipkit/layers/structure.h"
#include "lipkit/lipschitz/bounds.h"

namespace lipkit::certify {

namespace {
// The NormalizedLinear head, if the model ends with one.
NormalizedLinearImpl* lln_head(torch::nn::Sequential& model) {
  if (model->size() == 0) return nullptr;
  return model->ptr(model->size() - 1)->as<NormalizedLinearImpl>();
}
}  // namespace

double body_lipschitz(torch::nn::Sequential& model, Norm norm) {
  const bool lln = lln_head(model) != nullptr;
  double bound = 1.0;
  const size_t n = model->size() - (lln ? 1 : 0);
  for (size_t i = 0; i < n; ++i) bound *= lipschitz::model_bound(*model->ptr(i), norm);
  TORCH_CHECK(std::isfinite(bound), "certify: refused: the model is not Lipschitz in ",
              to_string(norm), " (a layer gives no ", to_string(norm),
              " bound; l2 layers such as CPL/SLL cannot be certified in l_inf)");
  return bound;
}

double margin_slack(torch::ScalarType dtype) { return dtype == torch::kDouble ? 1e-6 : 1e-3; }

torch::Tensor certified_radius(torch::nn::Sequential& model, const torch::Tensor& x,
                               const torch::Tensor& y, Norm norm, double whole_model_bound) {
  model->eval();
  const bool whole = whole_model_bound > 0;
  const double lip = whole ? whole_model_bound : body_lipschitz(model, norm);
  torch::NoGradGuard no_grad;
  auto* head = whole ? nullptr : lln_head(model);
  torch::Tensor logits, pair;  // pair: (C, C) Lipschitz constants of f_i - f_j
  if (head) {
    auto features = x;
    auto it = model->begin();
    for (size_t i = 0; i + 1 < model->size(); ++i, ++it) features = it->forward(features);
    logits = head->forward(features);
    auto w = head->normalized_weight().to(torch::kDouble);
    pair = norm == Norm::L2 ? torch::cdist(w.unsqueeze(0), w.unsqueeze(0), 2.0).squeeze(0)
                            : torch::cdist(w.unsqueeze(0), w.unsqueeze(0), 1.0).squeeze(0);
  } else {
    logits = model->forward(x);
  }
  const double slack = margin_slack(logits.scalar_type()) *
                       (1.0 + logits.abs().max().item<double>());
  logits = logits.to(torch::kDouble);
  auto fy = logits.gather(1, y.view({-1, 1}));
  auto diff = fy - logits - slack;  // (N, C): margins reduced by the rounding slack
  auto others = torch::ones_like(diff, torch::kBool).scatter_(1, y.view({-1, 1}), false);
  torch::Tensor radius;
  if (head) {
    auto k = pair.index_select(0, y) * lip;  // (N, C)
    auto r = diff / k.clamp_min(1e-300);
    radius = r.masked_fill(~others, std::numeric_limits<double>::infinity()).amin(1);
  } else {
    auto margin = diff.masked_fill(~others, std::numeric_limits<double>::infinity()).amin(1);
    radius = margin / ((norm == Norm::L2 ? std::sqrt(2.0) : 2.0) * lip);
  }
  return radius.clamp_min(0.0);  // wrong predictions (margin <= 0) get radius 0
}

CertifyResult certify(torch::nn::Sequential& model, const data::Dataset& data, Norm norm,
                      const std::vector<double>& radii, int64_t batch_size, double whole_model_bound) {
  CertifyResult r;
  r.norm = norm;
  r.radii = radii;
  const bool whole = whole_model_bound > 0;
  r.lipschitz = whole ? whole_model_bound : body_lipschitz(model, norm);
  r.pairwise_head = !whole && lln_head(model) != nullptr;
  r.total = data.size();
  auto device = model->parameters().empty() ? torch::Device(torch::kCPU)
                                            : model->parameters()[0].device();
  // float64 copy: rounding in the logits stays far below the slack subtracted from each margin
  torch::nn::Sequential m64(std::dynamic_pointer_cast<torch::nn::SequentialImpl>(model->clone()));
  m64->to(torch::kDouble);
  r.interval = norm == Norm::Linf && !whole && interval_unsupported(m64).empty();
  std::vector<torch::Tensor> parts;
  std::vector<std::vector<torch::Tensor>> by_interval(radii.size());
  for (int64_t s = 0; s < data.size(); s += batch_size) {
    const int64_t len = std::min(batch_size, data.size() - s);
    auto x = data::to_float(data.images.narrow(0, s, len)).to(device, torch::kDouble);
    auto y = data.labels.narrow(0, s, len).to(device);
    parts.push_back(certified_radius(m64, x, y, norm, whole_model_bound).cpu());
    for (size_t i = 0; r.interval && i < radii.size(); ++i)
      by_interval[i].push_back(interval_certified(m64, x, y, radii[i]).cpu());
  }
  r.radius = torch::cat(parts);
  // correct <=> positive margin (radius > 0); ties (margin exactly 0) count as wrong
  r.correct = (r.radius > 0).sum().item<int64_t>();
  for (size_t i = 0; i < radii.size(); ++i) {
    auto by_margin = r.radius > radii[i];
    if (!r.interval) {
      r.certified.push_back(by_margin.sum().item<int64_t>());
      continue;
    }
    auto ibp = torch::cat(by_interval[i]);
    r.certified_margin.push_back(by_margin.sum().item<int64_t>());
    r.certified_interval.push_back(ibp.sum().item<int64_t>());
    r.certified.push_back((by_margin | ibp).sum().item<int64_t>());
  }
  return r;
}

double parse_radius(const std::string& text) {
  try {
    size_t pos = 0;
    const auto slash = text.find('/');
    if (slash == std::string::npos) {
      const double v = std::stod(text, &pos);
      TORCH_CHECK(pos == text.size(), "");
      TORCH_CHECK(v >= 0, "");
      return v;
    }
    const double a = std::stod(text.substr(0, slash), &pos);
    TORCH_CHECK(pos == slash, "");
    const std::string den = text.substr(slash + 1);
    const double b = std::stod(den, &pos);
    TORCH_CHECK(pos == den.size() && b > 0 && a >= 0, "");
    return a / b;
  } catch (const std::exception&) {
    TORCH_CHECK(false, "radius '", text, "' is not a number or a fraction like 36/255");
  }
}

}  // namespace lipkit::certify
