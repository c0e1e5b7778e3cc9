#include "lipkit/deploy/export.h"
#include "lipkit/runtime.h"

#include <torch/csrc/jit/api/module.h>
#include <torch/csrc/jit/frontend/resolver.h>
#include <torch/torch.h>

#include <cmath>
#include <sstream>

#include "lipkit/certify/certify.h"
#include "lipkit/kernels/operators.h"
#include "lipkit/lipkit.h"
#include "lipkit/lipschitz/bounds.h"

namespace lipkit::deploy {

namespace {

namespace nn = torch::nn;

std::string num(double v) {
  if (std::isinf(v)) return v > 0 ? "float(\"inf\")" : "float(\"-inf\")";
  std::ostringstream s;
  s.precision(17);
  s << v;
  auto t = s.str();
  if (t.find_first_of(".eEn") == std::string::npos) t += ".0";  // a float literal
  return t;
}

// Writes the forward of the eval-mode model as TorchScript statements on `x`, registering the
// folded tensors as buffers of the archive; `sample` follows the shapes (conv bounds depend on them).
class Generator {
 public:
  Generator(torch::jit::Module& out, bool vanilla, torch::Dtype dtype) : out_(out), vanilla_(vanilla), dtype_(dtype) {}

  void sequential(nn::SequentialImpl& seq, torch::Tensor& sample) {
    size_t i = 0;
    auto names = seq.named_children();
    for (auto& any : seq) {
      layer(*names[i].value(), names[i].key(), sample);
      sample = any.forward(sample);
      ++i;
    }
  }

  std::string code() const { return code_.str(); }
  bool used_operators() const { return used_ops_; }

 private:
  void line(const std::string& s) { code_ << "    " << s << "\n"; }
  std::string tensor(const torch::Tensor& t) {
    if (!t.defined()) return "None";
    const auto name = "t" + std::to_string(count_++);
    out_.register_buffer(name, t.detach().to(dtype_).contiguous().clone());
    return "self." + name;
  }
  std::string var() { return "v" + std::to_string(count_++); }
  void refuse_vanilla(const std::string& what) {
    TORCH_CHECK(!vanilla_, "export --vanilla: ", what, " has no form in stock PyTorch operators; export without "
                "--vanilla (the archive then needs lipkit's operators: import lipkit, or link liblipkit)");
    used_ops_ = true;
  }
  std::string activation(const std::string& h, const LinearSpline& spline, const std::string& where) {
    if (!spline) return "torch.relu(" + h + ")";
    refuse_vanilla(where + " with a spline activation");
    return "lipkit.linear_spline(" + h + ", " + tensor(spline->effective_coefficients()) + ", " +
           tensor(spline->log_scale.exp()) + ", " + num(spline->options.grid()) + ")";
  }
  static std::string ints(std::vector<int64_t> v) {
    std::string s = "[";
    for (size_t i = 0; i < v.size(); ++i) s += (i ? ", " : "") + std::to_string(v[i]);
    return s + "]";
  }

  void layer(nn::Module& m, const std::string& name, const torch::Tensor& sample) {
    const auto p = [](int64_t v) { return std::to_string(v); };
    if (auto* r = m.as<ResidualImpl>()) {
      const auto keep = var();
      line(keep + " = x");
      auto copy = sample;
      sequential(*r->branch, copy);
      line("x = " + keep + " + x");
    } else if (auto* r = m.as<MonotonicResidualImpl>()) {
      const auto keep = var();
      line(keep + " = x");
      auto copy = sample;
      sequential(*r->body, copy);
      auto fold = (r->constraints.to(sample.scalar_type()) * r->options.lipschitz()).t();
      line("x = x + torch.matmul(" + keep + ", " + tensor(fold) + ")");
    } else if (auto* l = m.as<CplLinearImpl>()) {
      const double d = l->weight_norm_bound() * l->weight_norm_bound() + l->options.eps();
      const auto h = activation("torch.linear(x, " + tensor(l->weight) + ", " + tensor(l->bias) + ")", l->spline, "CplLinear");
      line("x = x - torch.mm(" + h + ", " + tensor(l->weight * (d > 0 ? 2.0 / d : 0.0)) + ")");
    } else if (auto* l = m.as<CplConv2dImpl>()) {
      const int64_t pad = l->options.kernel_size() / 2;
      const double b = l->weight_norm_bound(sample.size(2), sample.size(3)), d = b * b + l->options.eps();
      line("x = x - torch.conv_transpose2d(torch.relu(torch.conv2d(x, " + tensor(l->weight) + ", " + tensor(l->bias) +
           ", [1, 1], " + ints({pad, pad}) + ")), " + tensor(l->weight * (d > 0 ? 2.0 / d : 0.0)) + ", None, [1, 1], " +
           ints({pad, pad}) + ")");
    } else if (auto* l = m.as<SllLinearImpl>()) {
      auto inv_t = functional::sll_linear_inverse_t(l->weight, l->q);
      const auto h = activation("torch.linear(x, " + tensor(l->weight) + ", " + tensor(l->bias) + ")", l->spline, "SllLinear");
      line("x = x - torch.mm(" + h + ", " + tensor(2.0 * inv_t.unsqueeze(1) * l->weight) + ")");
    } else if (auto* l = m.as<SllConv2dImpl>()) {
      const int64_t pad = l->options.kernel_size() / 2;
      auto inv_t = functional::sll_conv2d_inverse_t(l->weight, l->q, l->options.cancel_q());
      line("x = x - torch.conv_transpose2d(torch.relu(torch.conv2d(x, " + tensor(l->weight) + ", " + tensor(l->bias) +
           ", [1, 1], " + ints({pad, pad}) + ")), " + tensor(2.0 * inv_t.view({-1, 1, 1, 1}) * l->weight) +
           ", None, [1, 1], " + ints({pad, pad}) + ")");
    } else if (auto* l = m.as<AolLinearImpl>()) {
      line("x = torch.linear(x, " + tensor(l->effective_weight()) + ", " + tensor(l->bias) + ")");
    } else if (auto* l = m.as<AolConv2dImpl>()) {
      const int64_t pad = l->options.kernel_size() / 2;
      line("x = torch.conv2d(x, " + tensor(l->effective_weight()) + ", " + tensor(l->bias) + ", [1, 1], " + ints({pad, pad}) + ")");
    } else if (auto* l = m.as<SpectralLinearImpl>()) {
      line("x = torch.linear(x, " + tensor(l->weight / l->weight_norm_bound()) + ", " + tensor(l->bias) + ")");
    } else if (auto* l = m.as<SpectralConv2dImpl>()) {
      const int64_t pad = l->options.kernel_size() / 2;
      const double b = l->weight_norm_bound(sample.size(2), sample.size(3));
      line("x = torch.conv2d(x, " + tensor(l->weight / b) + ", " + tensor(l->bias) + ", [1, 1], " + ints({pad, pad}) + ")");
    } else if (auto* l = m.as<OrthogonalLinearImpl>()) {
      line("x = torch.linear(x, " + tensor(l->effective_weight()) + ", " + tensor(l->bias) + ")");
    } else if (auto* l = m.as<LipschitzLinearImpl>()) {
      line("x = torch.linear(x, " + tensor(l->effective_weight()) + ", " + tensor(l->bias) + ")");
    } else if (auto* l = m.as<DpLinearImpl>()) {
      line("x = torch.linear(x, " + tensor(l->weight) + ", " + tensor(l->bias) + ")");
    } else if (auto* l = m.as<NormalizedLinearImpl>()) {
      line("x = torch.linear(x, " + tensor(l->normalized_weight()) + ", " + tensor(l->bias) + ")");
    } else if (auto* g = m.as<GroupSortImpl>()) {
      group_sort(g->options.group_size());
    } else if (m.as<MaxMinImpl>()) {
      group_sort(2);
    } else if (auto* l = m.as<LinfDistLinearImpl>()) {
      TORCH_CHECK(std::isinf(l->p()), "export: LinfDistLinear '", name, "' is at p = ", l->p(), ", not inf");
      line("x = torch.cdist(x, " + tensor(l->weight) + ", " + num(INFINITY) + ")");
      if (l->bias.defined()) line("x = x + " + tensor(l->bias));
    } else if (auto* l = m.as<SortNetLinearImpl>()) {
      refuse_vanilla("SortNetLinear (layer " + name + ")");
      line("x = lipkit.sort_neuron(x, " + tensor(l->weight) + ", " + num(l->options.q()) + ", " +
           p(std::min(l->options.k(), l->options.in_features())) + ")");
      if (l->bias.defined()) line("x = x + " + tensor(l->bias));
    } else if (m.as<NegatedDistanceImpl>()) {
      line("x = -x");
    } else if (auto* l = m.as<MeanShiftImpl>()) {
      std::vector<int64_t> shape(sample.dim(), 1);
      shape[1] = -1;
      line("x = x - " + tensor(l->running_mean.view(shape)));
    } else if (auto* l = m.as<LinearSplineImpl>()) {
      refuse_vanilla("LinearSpline (layer " + name + ")");
      line("x = lipkit.linear_spline(x, " + tensor(l->effective_coefficients()) + ", " + tensor(l->log_scale.exp()) +
           ", " + num(l->options.grid()) + ")");
    } else if (auto* l = m.as<DpBoundedInputImpl>()) {
      std::vector<int64_t> shape(sample.dim(), 1);
      shape[0] = -1;
      line("x = x * (" + num(l->options.norm()) + " / x.flatten(1).norm(2, [1]).clamp_min(1e-30)).clamp_max(1.0).view(" +
           ints(shape) + ")");
    } else if (auto* l = m.as<InputNormalizationImpl>()) {
      auto shape = sample.dim() == 2 ? std::vector<int64_t>{1, -1} : std::vector<int64_t>{-1, 1, 1};
      line("x = (x - " + tensor(l->mean.view(shape)) + ") * " + tensor(l->inv_std.view(shape)));
    } else if (auto* l = m.as<PadChannelsImpl>()) {
      const auto v = var();
      line(v + " = list(x.shape)");
      line(v + "[1] = " + p(l->options.out_channels() - l->options.in_channels()));
      line("x = torch.cat([x, torch.zeros(" + v + ", dtype=x.dtype, device=x.device)], 1)");
    } else if (auto* l = m.as<SumPool2dImpl>()) {
      const auto k = l->options.kernel_size();
      line("x = torch.avg_pool2d(x, " + ints({k, k}) + ", " + ints({k, k}) + ", [0, 0], False, True, " + p(k) + ")");
    } else if (auto* l = m.as<PixelUnshuffleImpl>()) {
      line("x = torch.pixel_unshuffle(x, " + p(l->options.factor()) + ")");
    } else if (auto* l = m.as<FirstChannelsImpl>()) {
      line("x = x.narrow(1, 0, " + p(l->options.count()) + ")");
    } else if (auto* l = m.as<nn::LinearImpl>()) {
      line("x = torch.linear(x, " + tensor(l->weight) + ", " + tensor(l->bias) + ")");
    } else if (auto* l = m.as<nn::Conv2dImpl>()) {
      const auto& o = l->options;
      TORCH_CHECK(o.groups() == 1 && c10::holds_alternative<torch::ExpandingArray<2>>(o.padding()),
                  "export: Conv2d '", name, "' with groups or string padding has no export");
      auto pad = c10::get<torch::ExpandingArray<2>>(o.padding());
      line("x = torch.conv2d(x, " + tensor(l->weight) + ", " + tensor(l->bias) + ", " + ints({(*o.stride())[0], (*o.stride())[1]}) +
           ", " + ints({(*pad)[0], (*pad)[1]}) + ", " + ints({(*o.dilation())[0], (*o.dilation())[1]}) + ")");
    } else if (auto* l = m.as<nn::BatchNorm2dImpl>()) {
      batch_norm(l->running_mean, l->running_var, l->weight, l->bias, l->options.eps(), sample.dim());
    } else if (auto* l = m.as<nn::BatchNorm1dImpl>()) {
      batch_norm(l->running_mean, l->running_var, l->weight, l->bias, l->options.eps(), sample.dim());
    } else if (auto* l = m.as<nn::AvgPool2dImpl>()) {
      const auto& o = l->options;
      line("x = torch.avg_pool2d(x, " + ints({(*o.kernel_size())[0], (*o.kernel_size())[1]}) + ", " +
           ints({(*o.stride())[0], (*o.stride())[1]}) + ", " + ints({(*o.padding())[0], (*o.padding())[1]}) + ", " +
           (o.ceil_mode() ? "True" : "False") + ", " + (o.count_include_pad() ? "True" : "False") + ")");
    } else if (auto* l = m.as<nn::MaxPool2dImpl>()) {
      const auto& o = l->options;
      line("x = torch.max_pool2d(x, " + ints({(*o.kernel_size())[0], (*o.kernel_size())[1]}) + ", " +
           ints({(*o.stride())[0], (*o.stride())[1]}) + ", " + ints({(*o.padding())[0], (*o.padding())[1]}) + ")");
    } else if (auto* l = m.as<nn::FlattenImpl>()) {
      line("x = x.flatten(" + p(l->options.start_dim()) + ", " + p(l->options.end_dim()) + ")");
    } else if (m.as<nn::ReLUImpl>()) {
      line("x = torch.relu(x)");
    } else if (m.as<nn::TanhImpl>()) {
      line("x = torch.tanh(x)");
    } else if (m.as<nn::SigmoidImpl>()) {
      line("x = torch.sigmoid(x)");
    } else if (auto* l = m.as<nn::LeakyReLUImpl>()) {
      line("x = torch.leaky_relu(x, " + num(l->options.negative_slope()) + ")");
    } else if (m.as<nn::IdentityImpl>() || m.as<nn::DropoutImpl>()) {
      // identity in eval mode
    } else {
      TORCH_CHECK(false, "export: layer '", name, "' (", m.name(), ") has no export");
    }
  }

  void group_sort(int64_t g) {
    const auto s = var();
    line(s + " = list(x.shape)");
    line("x = torch.sort(x.reshape([" + s + "[0], " + s + "[1] // " + std::to_string(g) + ", " + std::to_string(g) + "] + " + s +
         "[2:]), 2, True)[0].reshape(" + s + ")");
  }

  void batch_norm(const torch::Tensor& mean, const torch::Tensor& var, const torch::Tensor& weight,
                  const torch::Tensor& bias, double eps, int64_t rank) {
    auto scale = torch::rsqrt(var + eps) * (weight.defined() ? weight : torch::ones_like(var));
    auto shift = (bias.defined() ? bias : torch::zeros_like(mean)) - mean * scale;
    std::vector<int64_t> shape(rank, 1);
    shape[1] = -1;
    line("x = x * " + tensor(scale.view(shape)) + " + " + tensor(shift.view(shape)));
  }

  torch::jit::Module& out_;
  bool vanilla_;
  torch::Dtype dtype_;
  bool used_ops_ = false;
  int64_t count_ = 0;
  std::ostringstream code_;
};

// The norm with the smaller proven bound: l2 for CPL/SLL/AOL (no l_inf bound), l_inf for the distance
// nets (their l2 bound grows with the width); l2 for ordinary networks (bounded by Gram iteration).
Norm default_norm(torch::nn::Sequential& model) {
  auto bound = [&](Norm n) {
    try {
      return lipschitz::model_bound(*model, n);
    } catch (const c10::Error&) {
      return kNoBound;
    }
  };
  return bound(Norm::Linf) < bound(Norm::L2) ? Norm::Linf : Norm::L2;
}

// The certificate lipkit certify issues (its float64 copy of the model, its bound and rule); a computed
// whole-model Gram bound for ordinary layers in l2, as `certify --bound gram`.
certify::Certificate certificate_of(torch::nn::Sequential& model, Norm norm, const std::vector<int64_t>& sample_shape) {
  certify::CertifyOptions o;
  o.norm = norm;
  try {
    return certify::Certificate(model, o, sample_shape);
  } catch (const c10::Error& e) {
    TORCH_CHECK(norm == Norm::L2, "export: ", e.what_without_backtrace());
    o.bound = "gram";
    return certify::Certificate(model, o, sample_shape);
  }
}

}  // namespace

std::vector<int64_t> recorded_input_shape(const nlohmann::json& meta) {
  if (meta.contains("input_shape")) return meta.at("input_shape").get<std::vector<int64_t>>();
  if (!meta.contains("spec")) return {};
  const auto& s = meta.at("spec");
  const int64_t c = s.at("in_channels"), n = s.at("image_size");
  if (s.value("family", std::string()) == "monotonic") return {c};
  return {c, n, n};
}

ExportedCertificate export_torchscript(torch::nn::Sequential& model, const std::string& path,
                                       const ExportOptions& options) {
  TORCH_CHECK(!options.sample_shape.empty(), "export: the input shape of one example is needed (C, H, W) or (F)");
  kernels::register_operators();
  const Norm norm = options.norm.empty() ? default_norm(model) : parse_norm(options.norm);
  auto cert = certificate_of(model, norm, options.sample_shape);
  ExportedCertificate c;
  c.norm = norm;
  c.lipschitz_bound = cert.whole_model_bound > 0 ? cert.whole_model_bound : cert.lipschitz;
  c.rule = cert.pairwise_head ? "lln-pairwise" : "margin";
  c.bound_source = cert.bound_source;
  TORCH_CHECK(cert.proven && std::isfinite(c.lipschitz_bound), "export: the bound of this model in ", to_string(norm),
              " is not proven (", cert.bound_source, ")");
  auto* head = cert.pairwise_head ? cert.model->ptr(cert.model->size() - 1)->as<NormalizedLinearImpl>() : nullptr;
  torch::Tensor pairwise = head ? head->pairwise_lipschitz(norm) : torch::empty({0, 0}, torch::kDouble);
  torch::NoGradGuard no_grad;
  const auto dtype = model->parameters().empty() ? torch::kFloat : model->parameters().front().scalar_type();
  c.margin_slack = certify::margin_slack(dtype);  // the archive computes in the model's dtype
  auto shape = options.sample_shape;
  shape.insert(shape.begin(), 1);
  auto sample = torch::zeros(shape, torch::TensorOptions().dtype(torch::kDouble));

  torch::jit::Module out("__torch__.lipkit.ExportedModel");
  // folded from certify's float64 copy (the weights the certificate speaks of), stored in the model's dtype
  Generator gen(out, options.vanilla, dtype);
  gen.sequential(*cert.model, sample);
  c.uses_lipkit_operators = gen.used_operators();
  std::string check = "    assert x.dim() == " + std::to_string(shape.size());
  for (size_t i = 1; i < shape.size(); ++i)
    check += " and x.size(" + std::to_string(i) + ") == " + std::to_string(shape[i]);
  check += ", \"lipkit export: expected input of shape (N, ";
  for (size_t i = 1; i < shape.size(); ++i) check += std::to_string(shape[i]) + (i + 1 < shape.size() ? ", " : ")");
  check += "\"\n";
  out.register_attribute("lipschitz_bound", c10::FloatType::get(), c.lipschitz_bound);
  out.register_attribute("norm", c10::StringType::get(), to_string(norm));
  out.register_attribute("rule", c10::StringType::get(), c.rule);
  out.register_attribute("bound_source", c10::StringType::get(), c.bound_source);
  out.register_attribute("margin_slack", c10::FloatType::get(), c.margin_slack);
  out.register_attribute("input_shape", c10::ListType::ofInts(), c10::IValue(options.sample_shape));
  out.register_attribute("format", c10::StringType::get(), std::string("lipkit-export-v1"));
  out.register_buffer("pairwise", pairwise);
  out.define("def forward(self, x: Tensor) -> Tensor:\n" + check + gen.code() + "    return x\n",
             kernels::script_resolver());
  write_atomically(path, [&](const std::string& tmp) {
    try {
      out.save(tmp);
    } catch (const c10::Error& e) {
      TORCH_CHECK(false, path, ": cannot write the archive: ", e.what_without_backtrace());
    }
  });
  return c;
}

}  // namespace lipkit::deploy
