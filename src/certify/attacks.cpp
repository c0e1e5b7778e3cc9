#include "lipkit/certify/attacks.h"

#include <torch/torch.h>

#include "lipkit/certify/certify.h"
#include "lipkit/data/transforms.h"
#include "lipkit/lipschitz/lower_bound.h"

namespace lipkit::certify {

namespace {
// max_{j != y} f_j - f_y per point: > 0 means misclassified.
torch::Tensor margin_loss(const torch::Tensor& logits, const torch::Tensor& y) {
  auto fy = logits.gather(1, y.view({-1, 1})).squeeze(1);
  auto others = logits.scatter(1, y.view({-1, 1}), -std::numeric_limits<float>::infinity());
  return others.amax(1) - fy;
}

torch::Tensor view_batch(const torch::Tensor& v, const torch::Tensor& like) {
  std::vector<int64_t> shape(like.dim(), 1);
  shape[0] = like.size(0);
  return v.view(shape);
}

// Projects delta onto the eps-ball, then keeps x + delta inside [0, 1].
torch::Tensor project(const torch::Tensor& x, const torch::Tensor& delta, const PgdOptions& o) {
  torch::Tensor d;
  if (o.norm == Norm::L2) {
    auto n = lipschitz::per_sample_norm(delta, Norm::L2).clamp_min(1e-12);
    d = delta * view_batch((o.eps / n).clamp_max(1.0), delta);
  } else {
    d = delta.clamp(-o.eps, o.eps);
  }
  return (x + d).clamp(0.0, 1.0) - x;  // clipping shrinks every coordinate: stays in the ball
}
}  // namespace

torch::Tensor pgd_attack(torch::nn::Sequential& model, const torch::Tensor& x, const torch::Tensor& y,
                         const PgdOptions& o) {
  TORCH_CHECK(o.eps >= 0 && o.steps >= 0, "pgd_attack: eps and steps must be >= 0, got eps ", o.eps,
              " and steps ", o.steps);
  model->eval();
  const double step = o.step_size > 0 ? o.step_size : 2.5 * o.eps / std::max<int64_t>(o.steps, 1);
  auto gen = at::make_generator<at::CPUGeneratorImpl>(o.seed);
  torch::Tensor delta = torch::zeros_like(x);
  if (o.random_start && o.eps > 0) {
    auto noise = torch::randn(x.sizes(), gen, x.options().device(torch::kCPU)).to(x.device());
    if (o.norm == Norm::L2) {
      auto n = lipschitz::per_sample_norm(noise, Norm::L2).clamp_min(1e-12);
      auto r = torch::rand({x.size(0)}, gen, x.options().device(torch::kCPU)).to(x.device());
      delta = noise * view_batch(r * o.eps / n, noise);
    } else {
      delta = (torch::rand(x.sizes(), gen, x.options().device(torch::kCPU)).to(x.device()) * 2 - 1) * o.eps;
    }
    delta = project(x, delta, o);
  }
  torch::Tensor best = x + delta, best_loss;
  {
    torch::NoGradGuard ng;
    best_loss = margin_loss(model->forward(best), y);
  }
  for (int64_t s = 0; s < o.steps; ++s) {
    auto d = delta.detach().requires_grad_(true);
    auto loss = margin_loss(model->forward(x + d), y);
    auto g = torch::autograd::grad({loss.sum()}, {d})[0];
    torch::NoGradGuard ng;
    torch::Tensor dir;
    if (o.norm == Norm::L2) {
      dir = g / view_batch(lipschitz::per_sample_norm(g, Norm::L2).clamp_min(1e-12), g);
    } else {
      dir = g.sign();
    }
    delta = project(x, d.detach() + step * dir, o);
    auto cand = x + delta;
    auto cand_loss = margin_loss(model->forward(cand), y);
    auto better = cand_loss > best_loss;
    best = torch::where(view_batch(better, cand), cand, best);
    best_loss = torch::where(better, cand_loss, best_loss);
  }
  return best.detach();
}

AttackReport attack_and_check(torch::nn::Sequential& model, const data::Dataset& data, const PgdOptions& o,
                              const CertifyOptions& certificate, int64_t batch_size) {
  TORCH_CHECK(certificate.norm == o.norm, "attack_and_check: the attack is in ", to_string(o.norm),
              " but the certificate in ", to_string(certificate.norm));
  // the network certify() certifies: the float64 copy, with the same bound, slack and rules
  Certificate cert(model, certificate, {data.channels(), data.height(), data.width()});
  // PGD searches on a float32 copy of the certified network when the model is float32 (about twice as
  // fast; the search need not be exact), and every candidate is judged on the float64 network itself
  const bool float32 = !model->parameters().empty() && model->parameters()[0].scalar_type() == torch::kFloat;
  torch::nn::Sequential search = cert.model;
  if (float32) {
    search = torch::nn::Sequential(std::dynamic_pointer_cast<torch::nn::SequentialImpl>(cert.model->clone()));
    search->to(torch::kFloat);
    search->eval();
  }
  AttackReport r;
  r.total = data.size();
  const auto device = model->parameters().empty() ? torch::Device(torch::kCPU) : model->parameters()[0].device();
  for (int64_t s = 0; s < data.size(); s += batch_size) {
    const int64_t len = std::min(batch_size, data.size() - s);
    auto x = data::to_float(data.images.narrow(0, s, len)).to(device, torch::kDouble);
    auto y = data.labels.narrow(0, s, len).to(device);
    auto certified = cert.certified_at(x, y, o.eps, cert.radius(x, y));
    PgdOptions batch_opts = o;
    batch_opts.seed = o.seed + static_cast<uint64_t>(s);
    auto adv = pgd_attack(search, float32 ? x.to(torch::kFloat) : x, y, batch_opts).to(torch::kDouble);
    adv = x + project(x, adv - x, o);  // back inside the float64 ball around the float64 point
    auto clean_ok = cert.predicts(x, y), adv_ok = cert.predicts(adv, y);  // ties count as flips
    r.clean_correct += clean_ok.sum().item<int64_t>();
    r.robust_correct += (adv_ok & clean_ok).sum().item<int64_t>();
    r.certified += certified.sum().item<int64_t>();
    r.violations += (certified & ~adv_ok).sum().item<int64_t>();
    r.max_perturbation =
        std::max(r.max_perturbation, lipschitz::per_sample_norm(adv - x, o.norm).max().item<double>());
  }
  r.proven = cert.proven;
  r.bound_source = cert.bound_source;
  return r;
}

AttackReport attack_and_check(torch::nn::Sequential& model, const data::Dataset& data, const PgdOptions& o) {
  CertifyOptions certificate;
  certificate.norm = o.norm;
  return attack_and_check(model, data, o, certificate);
}

}  // namespace lipkit::certify
