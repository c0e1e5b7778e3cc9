#include "lipkit/lipschitz/bounds.h"

#include <torch/torch.h>

#include <cmath>
#include <sstream>

#include "lipkit/layers/structure.h"
#include "lipkit/lipschitz/exact_norm.h"
#include "lipkit/lipschitz/gram_iteration.h"

namespace lipkit::lipschitz {

double model_bound(const torch::nn::Module& module, Norm norm) {
  if (const auto* layer = dynamic_cast<const LipschitzLayer*>(&module)) {
    return layer->lipschitz_bound(norm);
  }
  if (dynamic_cast<const torch::nn::FlattenImpl*>(&module) ||
      dynamic_cast<const torch::nn::IdentityImpl*>(&module)) {
    return 1.0;
  }
  if (const auto* res = dynamic_cast<const ResidualImpl*>(&module)) {
    return 1.0 + model_bound(*res->branch, norm);
  }
  if (dynamic_cast<const torch::nn::SequentialImpl*>(&module)) {
    double bound = 1.0;
    for (const auto& child : module.children()) bound *= model_bound(*child, norm);
    return bound;
  }
  TORCH_CHECK(false, "lipkit::lipschitz::model_bound: no ", to_string(norm),
              " Lipschitz bound known for module ", module.name(),
              "; use lipkit layers, or bound an ordinary network with `lipkit lipschitz` / "
              "`lipkit certify --bound gram`");
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

constexpr double kPowerSafety = 1.01;  // power iteration approaches the norm from below

std::string printed(const torch::nn::Module& m) {
  std::ostringstream s;
  m.pretty_print(s);
  return s.str();
}

// Power iteration on any linear map f (f(0) = 0) through autograd: u <- f^T f u.
double power_estimate(const std::function<torch::Tensor(const torch::Tensor&)>& f,
                      std::vector<int64_t> shape, int64_t iters) {
  auto u = torch::randn(shape, torch::kDouble);
  u = u / u.norm();
  double sigma = 0;
  for (int64_t i = 0; i < iters; ++i) {
    auto x = u.detach().requires_grad_(true);
    auto y = f(x);
    sigma = y.norm().item<double>();
    if (sigma == 0) return 0;
    auto g = torch::autograd::grad({y}, {x}, {y.detach()})[0];  // f^T f u
    u = g / g.norm().clamp_min(1e-300);
  }
  return sigma;
}

LayerBound linear_bound(const torch::nn::LinearImpl& m, BoundMethod method, int64_t iters) {
  auto w = m.weight.detach().to(torch::kDouble);
  LayerBound b{printed(m)};
  if (method == BoundMethod::Gram) {
    b.bound = gram_iteration_bound(w, iters > 0 ? iters : 12);
  } else if (method == BoundMethod::Exact) {
    b.bound = spectral_norm_exact(w) * (1 + 1e-9);
  } else {
    b.bound = kPowerSafety * power_estimate([&](const torch::Tensor& x) { return torch::mv(w, x); },
                                            {w.size(1)}, iters > 0 ? iters : 200);
    b.proven = false;
  }
  return b;
}

LayerBound conv_bound(const torch::nn::Conv2dImpl& m, const std::vector<int64_t>& in, BoundMethod method,
                      int64_t iters) {
  const auto& o = m.options;
  LayerBound b{printed(m)};
  TORCH_CHECK(o.groups() == 1, "upper_bound: ", b.layer, ": groups > 1 is not supported");
  TORCH_CHECK((*o.dilation())[0] == 1 && (*o.dilation())[1] == 1, "upper_bound: ", b.layer,
              ": dilation > 1 is not supported");
  const int64_t kh = (*o.kernel_size())[0], kw = (*o.kernel_size())[1];
  int64_t ph = 0, pw = 0;
  if (const auto* p = c10::get_if<torch::ExpandingArray<2>>(&o.padding())) {
    ph = (**p)[0];
    pw = (**p)[1];
  } else if (c10::get_if<torch::enumtype::kSame>(&o.padding())) {
    ph = (kh - 1) / 2;
    pw = (kw - 1) / 2;
    TORCH_CHECK(kh % 2 == 1 && kw % 2 == 1, "upper_bound: ", b.layer, ": padding 'same' with an even kernel is not supported");
  }
  TORCH_CHECK(kh == kw && ph == pw, "upper_bound: ", b.layer,
              ": only square kernels with equal padding on both axes are supported");
  TORCH_CHECK(ph < kh, "upper_bound: ", b.layer, ": padding must be smaller than the kernel");
  auto k = m.weight.detach().to(torch::kDouble);
  const int64_t h = in[1], w = in[2];
  const bool circular = c10::get_if<torch::enumtype::kCircular>(&o.padding_mode()) != nullptr;
  const bool strided = (*o.stride())[0] != 1 || (*o.stride())[1] != 1;
  if (method == BoundMethod::Power) {
    auto kf = k;
    const std::vector<int64_t> stride{(*o.stride())[0], (*o.stride())[1]};
    const std::vector<int64_t> no_pad{0, 0}, pad{ph, pw};
    b.bound = kPowerSafety * power_estimate(
                                 [&](const torch::Tensor& x) {
                                   auto xin = x.unsqueeze(0);
                                   if (circular) {
                                     xin = torch::nn::functional::pad(
                                         xin, torch::nn::functional::PadFuncOptions({pw, pw, ph, ph})
                                                  .mode(torch::kCircular));
                                     return torch::conv2d(xin, kf, {}, stride, no_pad).squeeze(0);
                                   }
                                   return torch::conv2d(xin, kf, {}, stride, pad).squeeze(0);
                                 },
                                 {k.size(1), h, w}, iters > 0 ? iters : 200);
    b.proven = false;
    return b;
  }
  // A strided convolution is a subsampling (norm 1) of the stride-1 one: its bound holds.
  if (circular) {
    TORCH_CHECK(2 * ph == kh - 1, "upper_bound: ", b.layer, ": circular padding must keep the size");
    b.bound = (method == BoundMethod::Gram ? gram_iteration_conv_bound(k, h - ph, w - pw, ph, iters > 0 ? iters : 8)
                                           : circular_conv_norm(k, h, w) * (1 + 1e-9));
    return b;
  }
  const int64_t stride = strided ? (*o.stride())[0] : 1;
  TORCH_CHECK(!strided || (*o.stride())[0] == (*o.stride())[1], "upper_bound: ", b.layer,
              ": only equal strides on both axes are supported");
  if (method == BoundMethod::Gram) {
    b.bound = gram_iteration_conv_bound(k, h, w, ph, iters > 0 ? iters : 8);
    // small operators: Gram iteration on the unrolled (strided) matrix is tight where the circular
    // embedding is loose
    if (k.size(1) * h * w <= kUnrollLimit)
      b.bound = std::min(b.bound, gram_iteration_bound(conv2d_matrix(k, h, w, ph, stride), iters > 0 ? 2 * iters : 16));
  } else if (k.size(1) * h * w <= kUnrollLimit) {
    b.bound = spectral_norm_exact(conv2d_matrix(k, h, w, ph, stride)) * (1 + 1e-9);
  } else {
    b.bound = conv2d_norm_bound(k, h, w, ph);
  }
  return b;
}

LayerBound avgpool_bound(const torch::nn::AvgPool2dImpl& m) {
  const auto& o = m.options;
  LayerBound b{printed(m)};
  const int64_t kh = (*o.kernel_size())[0], kw = (*o.kernel_size())[1];
  const int64_t sh = (*o.stride())[0], sw = (*o.stride())[1];
  TORCH_CHECK(((*o.padding())[0] == 0 && (*o.padding())[1] == 0) || o.count_include_pad(), "upper_bound: ",
              b.layer, ": padding without count_include_pad is not supported");
  const double divisor = o.divisor_override() ? double(*o.divisor_override()) : double(kh * kw);
  // Schur test: ||A||^2 <= (max row sum) (max column sum), rows k_h k_w / d, columns
  // ceil(k_h / s_h) ceil(k_w / s_w) / d (windows covering one pixel).
  const double rows = kh * kw / divisor;
  const double cols = std::ceil(double(kh) / sh) * std::ceil(double(kw) / sw) / divisor;
  b.bound = std::sqrt(rows * cols);
  return b;
}

// eval mode: a per-channel affine map, norm max |gamma| / sqrt(var + eps)
template <typename BatchNorm>
double batchnorm_bound(const BatchNorm& bn) {
  auto scale = (bn.running_var.to(torch::kDouble) + bn.options.eps()).rsqrt();
  if (bn.options.affine()) scale = scale * bn.weight.detach().to(torch::kDouble);
  return scale.abs().max().template item<double>() * (1 + 1e-9);
}

void bound_into(torch::nn::Sequential& seq, torch::Tensor& x, BoundMethod method, int64_t iters,
                BoundReport& report);

void bound_module(const std::shared_ptr<torch::nn::Module>& mod, torch::Tensor& x, BoundMethod method,
                  int64_t iters, BoundReport& report) {
  auto& m = *mod;
  const std::vector<int64_t> in(x.sizes().begin() + 1, x.sizes().end());
  LayerBound b{printed(m)};
  if (const auto* lip = dynamic_cast<const LipschitzLayer*>(&m)) {
    b.bound = lip->lipschitz_bound(Norm::L2);
  } else if (const auto* lin = m.as<torch::nn::LinearImpl>()) {
    b = linear_bound(*lin, method, iters);
  } else if (const auto* conv = m.as<torch::nn::Conv2dImpl>()) {
    TORCH_CHECK(in.size() == 3, "upper_bound: ", b.layer, " needs an input of shape (C, H, W)");
    b = conv_bound(*conv, in, method, iters);
  } else if (const auto* bn = m.as<torch::nn::BatchNorm2dImpl>()) {
    b.bound = batchnorm_bound(*bn);
  } else if (const auto* bn1 = m.as<torch::nn::BatchNorm1dImpl>()) {
    b.bound = batchnorm_bound(*bn1);
  } else if (const auto* pool = m.as<torch::nn::AvgPool2dImpl>()) {
    b = avgpool_bound(*pool);
  } else if (m.as<torch::nn::ReLUImpl>() || m.as<torch::nn::TanhImpl>() || m.as<torch::nn::FlattenImpl>() ||
             m.as<torch::nn::IdentityImpl>() || m.as<torch::nn::DropoutImpl>() ||
             m.as<torch::nn::MaxPool2dImpl>()) {
    // MaxPool2d: 1 when windows do not overlap (checked below); the others are 1-Lipschitz maps
    if (const auto* mp = m.as<torch::nn::MaxPool2dImpl>()) {
      const auto& o = mp->options;
      TORCH_CHECK((*o.stride())[0] >= (*o.kernel_size())[0] && (*o.stride())[1] >= (*o.kernel_size())[1],
                  "upper_bound: ", b.layer, ": overlapping max pooling is not supported");
    }
    b.bound = 1.0;
  } else if (m.as<torch::nn::SigmoidImpl>()) {
    b.bound = 0.25;
  } else if (auto* res = m.as<ResidualImpl>()) {
    BoundReport branch;
    auto xb = x.clone();
    bound_into(res->branch, xb, method, iters, branch);
    b.layer = "lipkit::Residual(1 + " + std::to_string(branch.layers.size()) + "-layer branch bound)";
    b.bound = 1.0 + branch.product;
    b.proven = branch.proven;
  } else if (auto* inner = m.as<torch::nn::SequentialImpl>()) {
    torch::nn::Sequential nested(std::dynamic_pointer_cast<torch::nn::SequentialImpl>(mod));
    bound_into(nested, x, method, iters, report);
    (void)inner;
    return;
  } else {
    TORCH_CHECK(false, "upper_bound: no Lipschitz bound for layer ", b.layer,
                " (supported: lipkit layers and Residual, Linear, Conv2d, BatchNorm1d/2d in eval, AvgPool2d, "
                "non-overlapping MaxPool2d, ReLU, Tanh, Sigmoid, Flatten, Identity, Dropout, Sequential)");
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
  model->eval();
  std::vector<int64_t> shape{1};
  shape.insert(shape.end(), sample_shape.begin(), sample_shape.end());
  auto dtype = model->parameters().empty() ? torch::kFloat : model->parameters()[0].scalar_type();
  auto x = torch::zeros(shape, torch::TensorOptions().dtype(dtype));
  BoundReport report;
  bound_into(model, x, method, iters, report);
  return report;
}

}  // namespace lipkit::lipschitz
