#include "lipkit/certify/certify.h"

#include <torch/torch.h>

#include <cmath>

#include "lipkit/certify/interval.h"
#include "lipkit/certify/reestimate.h"
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

double body_bound(torch::nn::Sequential& model, Norm norm) {
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

namespace {
// The margin rule on a model as it is (its dtype, its caches): the body of certified_radius.
torch::Tensor margin_radius(torch::nn::Sequential& model, const torch::Tensor& x, const torch::Tensor& y, Norm norm,
                            double lip, bool use_head) {
  model->eval();
  torch::NoGradGuard no_grad;
  auto* head = use_head ? lln_head(model) : nullptr;
  torch::Tensor logits, pair;  // pair: (C, C) Lipschitz constants of f_i - f_j
  if (head) {
    auto features = x;
    auto it = model->begin();
    for (size_t i = 0; i + 1 < model->size(); ++i, ++it) features = it->forward(features);
    logits = head->forward(features);
    pair = head->pairwise_lipschitz(norm);
  } else {
    logits = model->forward(x);
  }
  const double slack = margin_slack(logits.scalar_type()) * (1.0 + logits.abs().max().item<double>());
  logits = logits.to(torch::kDouble);
  auto fy = logits.gather(1, y.view({-1, 1}));
  auto diff = fy - logits - slack;  // (N, C): margins reduced by the rounding slack
  auto others = torch::ones_like(diff, torch::kBool).scatter_(1, y.view({-1, 1}), false);
  torch::Tensor radius;
  if (head) {
    auto k = pair.index_select(0, y) * lip;  // (N, C)
    radius = (diff / k.clamp_min(1e-300)).masked_fill(~others, std::numeric_limits<double>::infinity()).amin(1);
  } else {
    auto margin = diff.masked_fill(~others, std::numeric_limits<double>::infinity()).amin(1);
    radius = margin / ((norm == Norm::L2 ? std::sqrt(2.0) : 2.0) * lip);
  }
  return radius.clamp_min(0.0);  // wrong or tied predictions (margin <= slack) get radius 0
}

std::vector<int64_t> sample_shape(const data::Dataset& d) { return {d.channels(), d.height(), d.width()}; }
}  // namespace

torch::Tensor certified_radius(torch::nn::Sequential& model, const torch::Tensor& x,
                               const torch::Tensor& y, Norm norm, double whole_model_bound) {
  invalidate_eval_caches();
  const bool whole = whole_model_bound > 0;
  const double lip = whole ? whole_model_bound : body_bound(model, norm);
  return margin_radius(model, x, y, norm, lip, !whole);
}

std::vector<double> default_radii(Norm norm, int64_t channels) {
  if (norm == Norm::L2) return {36.0 / 255, 72.0 / 255, 108.0 / 255, 1.0};
  return channels == 1 ? std::vector<double>{0.1, 0.3} : std::vector<double>{2.0 / 255, 8.0 / 255};
}

Certificate::Certificate(torch::nn::Sequential& source, const CertifyOptions& o, std::vector<int64_t> shape)
    : norm(o.norm) {
  invalidate_eval_caches();
  // float64 copy: rounding in the logits stays far below the slack subtracted from each margin
  model = torch::nn::Sequential(std::dynamic_pointer_cast<torch::nn::SequentialImpl>(source->clone()));
  model->to(torch::kDouble);
  if (o.reestimate) reestimated = reestimate_mean_shift(model, *o.reestimate);
  model->eval();
  if (o.bound.empty()) {
    lipschitz = body_bound(model, norm);
    proven = true;
    bound_source = "the lipkit layers' guaranteed bounds";
    pairwise_head = lln_head(model) != nullptr;
    interval = norm == Norm::Linf && interval_unsupported(model).empty();
    return;
  }
  TORCH_CHECK(norm == Norm::L2, "certify: bound '", o.bound, "' computes l2 bounds; certify in l2");
  const auto method = lipschitz::parse_bound_method(o.bound);
  auto report = lipschitz::upper_bound(model, std::move(shape), method, o.bound_iters);
  whole_model_bound = lipschitz = report.product;
  proven = report.proven;
  bound_source = lipschitz::to_string(method) + " bound of the whole model, L = " + std::to_string(lipschitz) +
                 (proven ? "" : " (an estimate)");
}

torch::Tensor Certificate::radius(const torch::Tensor& x, const torch::Tensor& y) {
  return margin_radius(model, x.to(torch::kDouble), y, norm, lipschitz, whole_model_bound == 0);
}

torch::Tensor Certificate::certified_at(const torch::Tensor& x, const torch::Tensor& y, double r,
                                        const torch::Tensor& radius) {
  auto by_margin = radius > r;
  if (!interval) return by_margin;
  return by_margin | interval_at(x, y, r);
}

torch::Tensor Certificate::interval_at(const torch::Tensor& x, const torch::Tensor& y, double r) {
  TORCH_CHECK(interval, "Certificate::interval_at: this certificate has no interval rule (l2, or a layer without "
              "interval bounds)");
  return detail::interval_certified_as_is(model, x.to(torch::kDouble), y, r);
}

torch::Tensor Certificate::predicts(const torch::Tensor& x, const torch::Tensor& y) {
  torch::NoGradGuard no_grad;
  auto logits = model->forward(x.to(torch::kDouble));
  auto fy = logits.gather(1, y.view({-1, 1})).squeeze(1);
  auto others = logits.scatter(1, y.view({-1, 1}), -std::numeric_limits<double>::infinity());
  return fy > others.amax(1);
}

CertifyResult certify(torch::nn::Sequential& model, const data::Dataset& data, const CertifyOptions& options) {
  Certificate cert(model, options, sample_shape(data));
  CertifyResult r;
  r.norm = options.norm;
  r.radii = options.radii.empty() ? default_radii(options.norm, data.channels()) : options.radii;
  r.lipschitz = cert.lipschitz;
  r.pairwise_head = cert.pairwise_head;
  r.proven = cert.proven;
  r.bound_source = cert.bound_source;
  r.interval = cert.interval;
  r.reestimated = cert.reestimated;
  r.total = data.size();
  const auto device = model->parameters().empty() ? torch::Device(torch::kCPU) : model->parameters()[0].device();
  std::vector<torch::Tensor> parts;
  std::vector<std::vector<torch::Tensor>> by_interval(r.radii.size());
  for (int64_t s = 0; s < data.size(); s += options.batch_size) {
    const int64_t len = std::min(options.batch_size, data.size() - s);
    auto x = data::to_float(data.images.narrow(0, s, len)).to(device, torch::kDouble);
    auto y = data.labels.narrow(0, s, len).to(device);
    parts.push_back(cert.radius(x, y).cpu());
    for (size_t i = 0; r.interval && i < r.radii.size(); ++i)
      by_interval[i].push_back(cert.interval_at(x, y, r.radii[i]).cpu());
  }
  r.radius = parts.empty() ? torch::zeros({0}, torch::kDouble) : torch::cat(parts);
  // correct <=> positive margin (radius > 0); ties (margin within the slack) count as wrong
  r.correct = (r.radius > 0).sum().item<int64_t>();
  for (size_t i = 0; i < r.radii.size(); ++i) {
    auto by_margin = r.radius > r.radii[i];
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

namespace {
// All of text as a double (std::stod); throws when text is empty or has anything after the number.
double whole_double(const std::string& text) {
  size_t pos = 0;
  const double v = std::stod(text, &pos);
  TORCH_CHECK(pos == text.size(), "");
  return v;
}
}  // namespace

double parse_radius(const std::string& text) {
  double v = 0.0;
  try {  // a number, or a fraction a/b like 36/255
    const auto slash = text.find('/');
    v = slash == std::string::npos ? whole_double(text)
                                   : whole_double(text.substr(0, slash)) / whole_double(text.substr(slash + 1));
  } catch (const std::exception&) {
    TORCH_CHECK(false, "radius '", text, "' is not a number or a fraction like 36/255");
  }
  TORCH_CHECK(std::isfinite(v) && v >= 0, "radius '", text, "' must be a finite number >= 0, got ", v);
  return v;
}

}  // namespace lipkit::certify
