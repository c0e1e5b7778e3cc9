#include "lipkit/layers/monotonic.h"

#include <torch/torch.h>

#include "lipkit/layers/activations.h"

namespace lipkit {

namespace {
int rank(PNorm p) { return p == PNorm::One ? 0 : p == PNorm::Two ? 1 : 2; }

bool one_lipschitz_in_every_lp(torch::nn::Module& m) {
  return m.as<GroupSortImpl>() || m.as<MaxMinImpl>() || m.as<torch::nn::ReLUImpl>();
}
}  // namespace

double chain_bound(torch::nn::Sequential& body, PNorm in, PNorm out, std::string* refused) {
  double bound = 1.0;
  PNorm current = in;
  size_t index = 0;
  for (auto& m : body->children()) {
    if (auto* lin = m->as<LipschitzLinearImpl>()) {
      auto [p, q] = lin->norm_pair();
      if (rank(current) > rank(p)) {  // ||x||_p <= ||x||_current fails: the layer's bound does not apply
        if (refused) *refused = "layer " + std::to_string(index) + " (LipschitzLinear, kind " + lin->options.kind() +
                                ") takes l_" + to_string(p) + " inputs but receives l_" + to_string(current);
        return kNoBound;
      }
      bound *= lin->pair_bound();
      current = q;
    } else if (!one_lipschitz_in_every_lp(*m)) {
      if (refused) *refused = "layer " + std::to_string(index) + " (" + m->name() + ") has no l_p -> l_q bound";
      return kNoBound;
    }
    ++index;
  }
  if (rank(current) > rank(out)) {
    if (refused) *refused = "the body ends in l_" + to_string(current) + ", not l_" + to_string(out);
    return kNoBound;
  }
  return bound;
}

MonotonicResidualOptions::MonotonicResidualOptions(torch::Tensor constraints) : constraints_(std::move(constraints)) {}

MonotonicResidualImpl::MonotonicResidualImpl(torch::nn::Sequential body_, const MonotonicResidualOptions& options_)
    : options(options_), body(std::move(body_)) {
  reset();
}

std::shared_ptr<torch::nn::Module> MonotonicResidualImpl::clone(const c10::optional<torch::Device>& device) const {
  auto copy = std::make_shared<MonotonicResidualImpl>(
      torch::nn::Sequential(std::dynamic_pointer_cast<torch::nn::SequentialImpl>(body->clone(device))), options);
  copy->to(device.value_or(constraints.device()), constraints.scalar_type());  // dtype and device of this one
  torch::NoGradGuard no_grad;
  copy->constraints.copy_(constraints);
  copy->train(is_training());
  return copy;
}

void MonotonicResidualImpl::reset() {
  auto c = options.constraints().detach().to(torch::kFloat);
  TORCH_CHECK(c.dim() == 1 || c.dim() == 2, "lipkit::MonotonicResidual: constraints must be (inputs) or ",
              "(outputs, inputs), got shape ", c.sizes());
  if (c.dim() == 1) c = c.unsqueeze(0);
  TORCH_CHECK(((c == 1) | (c == 0) | (c == -1)).all().item<bool>(),
              "lipkit::MonotonicResidual: constraints must be +1 (increasing), 0 or -1 (decreasing), got ", c);
  TORCH_CHECK(options.lipschitz() > 0 && std::isfinite(options.lipschitz()),
              "lipkit::MonotonicResidual: lipschitz (lambda) must be a positive number, got ", options.lipschitz());
  constraints = register_buffer("constraints", c.contiguous());
  body = register_module("body", body);
  std::string refused;
  const double b = chain_bound(body, PNorm::One, PNorm::Inf, &refused);
  TORCH_CHECK(b < kNoBound, "lipkit::MonotonicResidual: the body is not provably Lipschitz from l1 to l_inf: ",
              refused, " (use LipschitzLinear layers, kind one-inf first and inf after it, with GroupSort)");
  double product = 1.0;  // by construction: each layer normalised to at most its own option
  for (auto& m : body->children())
    if (auto* lin = m->as<LipschitzLinearImpl>()) product *= lin->options.lipschitz();
  TORCH_CHECK(product <= options.lipschitz() * (1 + 1e-9), "lipkit::MonotonicResidual: the body's layers allow an ",
              "l1 -> l_inf bound of ", product, " (the product of their lipschitz options), more than lambda = ",
              options.lipschitz(), ": monotonicity would not be proven; give each of the d layers lambda^(1/d)");
}

void MonotonicResidualImpl::pretty_print(std::ostream& stream) const {
  stream << "lipkit::MonotonicResidual(outputs=" << constraints.size(0) << ", inputs=" << constraints.size(1)
         << ", lipschitz=" << options.lipschitz() << ")";
}

torch::Tensor MonotonicResidualImpl::forward(const torch::Tensor& input) {
  detail::check_input(input, "MonotonicResidual", 2, constraints.size(1), constraints,
                      "(N, inputs)");
  auto y = body->forward(input);
  TORCH_CHECK(y.dim() == 2 && y.size(1) == constraints.size(0), "lipkit::MonotonicResidual: the body gives shape ",
              y.sizes(), ", the constraints expect (N, ", constraints.size(0), ")");
  return y + options.lipschitz() * input.matmul(constraints.to(input.dtype()).t());
}

double MonotonicResidualImpl::body_bound() const {
  auto b = body;
  return chain_bound(b, PNorm::One, PNorm::Inf);
}

bool MonotonicResidualImpl::monotone_proven() const { return body_bound() <= options.lipschitz(); }

double MonotonicResidualImpl::pair_bound() const {
  return body_bound() + options.lipschitz() * constraints.abs().max().item<double>();
}

}  // namespace lipkit
