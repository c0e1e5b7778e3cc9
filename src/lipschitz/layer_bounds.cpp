#include "layer_bounds.h"

#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <sstream>

#include "lipkit/linalg/exact_norm.h"
#include "lipkit/linalg/gram_iteration.h"

namespace lipkit::lipschitz::detail {

namespace {
namespace nn = torch::nn;
using Map = std::function<torch::Tensor(const torch::Tensor&)>;  // batched, float64

constexpr double kPowerSafety = 1.01;     // power iteration approaches the norm from below
constexpr double kRounding = 1.0 + 1e-9;  // float64 rounding of FFTs, SVDs and sums

[[noreturn]] void refuse(const std::string& layer, const std::string& option) {
  TORCH_CHECK(false, "upper_bound: refused ", layer, ": ", option,
              " has no proven l2 bound in lipkit (remove the option, or bound a smaller input: operators "
              "with at most ", linalg::kUnrollLimit, " inputs are bounded exactly through their matrix)");
}

std::vector<int64_t> batch_of_one(const std::vector<int64_t>& in) {
  std::vector<int64_t> s{1};
  s.insert(s.end(), in.begin(), in.end());
  return s;
}

// The module itself, copied to float64 in eval mode: the map the bound is about.
template <class Impl>
Map float64_map(const Impl& m) {
  auto copy = std::dynamic_pointer_cast<Impl>(m.clone());
  copy->to(torch::kDouble);
  copy->eval();
  return [copy](const torch::Tensor& x) { return copy->forward(x); };
}

// Power iteration on the linear part x -> f(x) - f(0) through autograd: u <- A^T A u.
double power_estimate(const Map& f, const std::vector<int64_t>& in, int64_t iters) {
  auto u = torch::randn(batch_of_one(in), torch::kDouble);
  u = u / u.norm();
  const auto offset = f(torch::zeros_like(u)).detach();
  double sigma = 0;
  for (int64_t i = 0; i < iters; ++i) {
    auto x = u.detach().requires_grad_(true);
    auto y = f(x) - offset;
    sigma = y.norm().item<double>();
    if (sigma == 0) return 0;
    auto g = torch::autograd::grad({y}, {x}, {y.detach()})[0];
    u = g / g.norm().clamp_min(1e-300);
  }
  return sigma;
}

// The matrix of the linear part of f on inputs of shape `in`, or undefined when it is too large.
torch::Tensor unrolled(const Map& f, const std::vector<int64_t>& in) {
  torch::NoGradGuard no_grad;
  int64_t n_in = 1;
  for (auto s : in) n_in *= s;
  if (n_in > linalg::kUnrollLimit) return {};
  auto zero = f(torch::zeros(batch_of_one(in), torch::kDouble));
  if (n_in * zero.numel() > kMaxUnrolledEntries) return {};
  std::vector<int64_t> shape{n_in};
  shape.insert(shape.end(), in.begin(), in.end());
  auto columns = f(torch::eye(n_in, torch::kDouble).view(shape)) - zero;
  return columns.reshape({n_in, -1}).t().contiguous();
}

double matrix_bound(const torch::Tensor& a, BoundMethod method, int64_t iters) {
  if (method == BoundMethod::Exact) return linalg::spectral_norm_exact(a) * kRounding;
  return linalg::gram_iteration_bound(a, iters > 0 ? 2 * iters : 16);
}

// Schur test for a linear part with entries of one sign: ||A||_2^2 <= max |A 1| * max |A^T 1|. The
// sums have at most a few thousand terms of one sign: float64 rounding below 1e-12 relative.
double schur_bound(const Map& f, const std::vector<int64_t>& in) {
  auto x = torch::zeros(batch_of_one(in), torch::kDouble).requires_grad_(true);
  auto y = f(x);
  auto cols = torch::autograd::grad({y.sum()}, {x})[0].abs().max().item<double>();
  torch::NoGradGuard no_grad;
  auto rows = (f(torch::ones_like(x)) - y).abs().max().item<double>();
  return std::sqrt(rows * cols) * (1.0 + 1e-12);
}

// A linear (affine) module with entries of one sign (pooling, padding, upsampling): the Schur test,
// proven for every method; the matrix's bound when small and smaller.
template <class Impl>
LayerBound nonnegative_module(const Impl& m, const std::vector<int64_t>& in, BoundMethod method, int64_t iters) {
  LayerBound b{printed(m)};
  auto f = float64_map(m);
  b.bound = schur_bound(f, in);
  if (method == BoundMethod::Power) return b;
  auto a = unrolled(f, in);
  if (a.defined()) b.bound = std::min(b.bound, matrix_bound(a, method, iters));
  return b;
}

// A linear (affine) module: exact through its matrix when small, else `analytic` (which may refuse).
template <class Impl>
LayerBound linear_module(const Impl& m, const std::vector<int64_t>& in, BoundMethod method, int64_t iters,
                         const std::function<double()>& analytic) {
  LayerBound b{printed(m)};
  auto f = float64_map(m);
  if (method == BoundMethod::Power) {
    b.bound = kPowerSafety * power_estimate(f, in, iters > 0 ? iters : 200);
    b.proven = false;
    return b;
  }
  auto a = unrolled(f, in);
  b.bound = a.defined() ? matrix_bound(a, method, iters) : analytic();
  return b;
}

// ------------------------------------------------------------------------------------ convolution

torch::Tensor dilate(const torch::Tensor& k, int64_t dh, int64_t dw) {
  if (dh == 1 && dw == 1) return k;
  auto big = torch::zeros({k.size(0), k.size(1), (k.size(2) - 1) * dh + 1, (k.size(3) - 1) * dw + 1}, k.options());
  using torch::indexing::Slice;
  big.index({Slice(), Slice(), Slice(0, c10::nullopt, dh), Slice(0, c10::nullopt, dw)}).copy_(k);
  return big;
}

// Zero-padded stride-1 convolution on h x w inputs: Gram iteration in the Fourier domain, or the
// exact norm of its circular embedding (both proven upper bounds; linalg/exact_norm.h).
double zero_padded_conv(const torch::Tensor& k, int64_t h, int64_t w, int64_t p, BoundMethod method,
                        int64_t iters) {
  if (method == BoundMethod::Gram) return linalg::gram_iteration_conv_bound(k, h, w, p, iters > 0 ? iters : 8);
  return linalg::circular_conv_norm(k, h + p, w + p) * kRounding;
}

// Large Conv2d: groups are a block-diagonal map (max over groups), dilation a kernel with zero taps
// (the same map), a stride keeps a subset of the stride-1 outputs; replicate / reflect / circular
// padding is a linear map P followed by a valid convolution: ||conv o P|| <= ||conv|| ||P||.
double conv_analytic(const nn::Conv2dImpl& m, const std::vector<int64_t>& in, BoundMethod method, int64_t iters) {
  const auto& o = m.options;
  const std::string layer = printed(m);
  auto k = dilate(m.weight.detach().to(torch::kDouble), (*o.dilation())[0], (*o.dilation())[1]);
  const int64_t kh = k.size(2), kw = k.size(3), h = in[1], w = in[2];
  int64_t ph = 0, pw = 0;
  if (const auto* p = c10::get_if<torch::ExpandingArray<2>>(&o.padding())) {
    ph = (**p)[0], pw = (**p)[1];
  } else if (c10::get_if<torch::enumtype::kSame>(&o.padding())) {
    if (kh % 2 == 0 || kw % 2 == 0) refuse(layer, "padding 'same' with an even (dilated) kernel");
    ph = (kh - 1) / 2, pw = (kw - 1) / 2;
  }
  if (kh != kw || ph != pw) refuse(layer, "a non-square (dilated) kernel or unequal padding on the two axes");
  if (ph >= kh) refuse(layer, "padding >= the (dilated) kernel size");
  const bool zeros = c10::get_if<torch::enumtype::kZeros>(&o.padding_mode()) != nullptr;
  const bool torus = c10::get_if<torch::enumtype::kCircular>(&o.padding_mode()) != nullptr && 2 * ph == kh - 1;
  double pad_norm = 1.0;
  if (!zeros && !torus) {
    auto mode = o.padding_mode();
    pad_norm = schur_bound(
        [&](const torch::Tensor& x) {
          nn::functional::PadFuncOptions po({pw, pw, ph, ph});
          if (c10::get_if<torch::enumtype::kReflect>(&mode)) po.mode(torch::kReflect);
          else if (c10::get_if<torch::enumtype::kReplicate>(&mode)) po.mode(torch::kReplicate);
          else po.mode(torch::kCircular);
          return nn::functional::pad(x, po);
        },
        {1, h, w});
  }
  const int64_t groups = o.groups(), per_group = k.size(0) / groups;
  double bound = 0;
  for (int64_t g = 0; g < groups; ++g) {
    auto kg = k.narrow(0, g * per_group, per_group);
    const double b = zeros   ? zero_padded_conv(kg, h, w, ph, method, iters)
                     : torus ? zero_padded_conv(kg, h - ph, w - ph, ph, method, iters)  // the h x w torus
                             : zero_padded_conv(kg, h + 2 * ph, w + 2 * ph, 0, method, iters) * pad_norm;
    bound = std::max(bound, b);
  }
  return bound;
}

// A transposed convolution is the adjoint A^T of the Conv2d A with its weight, stride, padding,
// dilation and groups, taken on the transposed layer's output size (output_padding only adds rows
// that A reads and maps onto the same input size): ||A^T|| = ||A||.
double transposed_analytic(const nn::ConvTranspose2dImpl& t, const std::vector<int64_t>& in, BoundMethod method,
                           int64_t iters) {
  const auto& o = t.options;
  const auto* pad = c10::get_if<torch::ExpandingArray<2>>(&o.padding());
  if (pad == nullptr) refuse(printed(t), "a padding given by name");  // LibTorch allows none for transposed convs
  std::vector<int64_t> out{t.weight.size(1) * o.groups()};
  for (int a = 0; a < 2; ++a)
    out.push_back((in[1 + a] - 1) * (*o.stride())[a] - 2 * (**pad)[a] +
                  (*o.dilation())[a] * (t.weight.size(2 + a) - 1) + (*o.output_padding())[a] + 1);
  nn::Conv2d adjoint(nn::Conv2dOptions(out[0], t.weight.size(0), {t.weight.size(2), t.weight.size(3)})
                         .stride(o.stride())
                         .padding(*pad)
                         .dilation(o.dilation())
                         .groups(o.groups())
                         .bias(false));
  {
    torch::NoGradGuard no_grad;
    adjoint->weight.set_data(t.weight.detach().to(torch::kDouble).clone());
  }
  return conv_analytic(*adjoint, out, method, iters);
}

// -------------------------------------------------------------------------------------- max pooling

// Largest number of windows that contain one index, along one axis of length len.
int64_t max_coverage(int64_t len, int64_t k, int64_t s, int64_t p, int64_t d, bool ceil_mode) {
  const int64_t span = d * (k - 1) + 1, room = len + 2 * p - span;
  int64_t out = (ceil_mode ? (room + s - 1) / s : room / s) + 1;
  if (ceil_mode && (out - 1) * s >= len + p) --out;  // LibTorch drops a window starting in the padding
  std::vector<int64_t> count(len, 0);
  for (int64_t i = 0; i < out; ++i)
    for (int64_t j = 0; j < k; ++j) {
      const int64_t at = i * s - p + j * d;
      if (at >= 0 && at < len) ++count[at];
    }
  return *std::max_element(count.begin(), count.end());
}

int64_t max_adaptive_coverage(int64_t len, int64_t out) {
  std::vector<int64_t> count(len, 0);
  for (int64_t i = 0; i < out; ++i)
    for (int64_t at = (i * len) / out; at < ((i + 1) * len + out - 1) / out; ++at) ++count[at];
  return *std::max_element(count.begin(), count.end());
}

// |max_W x - max_W y| <= ||(x - y)_W||_2, and summing over windows counts each pixel once per window
// containing it: the l2 constant is sqrt(largest coverage), the product of the two axes' coverages.
// axis_coverage(a, len): the largest coverage along axis a (0: height, 1: width) of length len.
template <class Pool, class Coverage>
LayerBound coverage_bound(const Pool& m, const std::vector<int64_t>& in, Coverage&& axis_coverage) {
  LayerBound b{printed(m)};
  int64_t cov = 1;
  for (int a = 0; a < 2; ++a) cov *= axis_coverage(a, in[in.size() - 2 + a]);
  b.bound = std::sqrt(double(cov));
  return b;
}

LayerBound maxpool_bound(const nn::MaxPool2dImpl& m, const std::vector<int64_t>& in) {
  const auto& o = m.options;
  return coverage_bound(m, in, [&](int a, int64_t len) {
    return max_coverage(len, (*o.kernel_size())[a], (*o.stride())[a], (*o.padding())[a], (*o.dilation())[a],
                        o.ceil_mode());
  });
}

LayerBound adaptive_maxpool_bound(const nn::AdaptiveMaxPool2dImpl& m, const std::vector<int64_t>& in) {
  return coverage_bound(m, in, [&](int a, int64_t len) {
    const auto out = (*m.options.output_size())[a];
    return max_adaptive_coverage(len, out ? *out : len);
  });
}

// ------------------------------------------------------------------------------------------ others

// eval mode: a per-channel affine map, norm max |gamma| / sqrt(running_var + eps)
template <class BatchNorm>
LayerBound batchnorm_bound(const BatchNorm& bn) {
  LayerBound b{printed(bn)};
  if (!bn.options.track_running_stats() || !bn.running_var.defined())
    refuse(b.layer, "track_running_stats=false (eval mode then normalises by the batch's own statistics)");
  auto scale = (bn.running_var.to(torch::kDouble) + bn.options.eps()).rsqrt();
  if (bn.options.affine()) scale = scale * bn.weight.detach().to(torch::kDouble);
  b.bound = scale.abs().max().template item<double>() * kRounding;
  return b;
}

LayerBound dense_bound(const nn::LinearImpl& m, BoundMethod method, int64_t iters) {
  auto w = m.weight.detach().to(torch::kDouble);
  LayerBound b{printed(m)};
  if (method == BoundMethod::Power) {
    b.bound = kPowerSafety * power_estimate([&](const torch::Tensor& x) { return torch::mm(x, w.t()); },
                                            {w.size(1)}, iters > 0 ? iters : 200);
    b.proven = false;
  } else {
    b.bound = method == BoundMethod::Gram ? linalg::gram_iteration_bound(w, iters > 0 ? iters : 12)
                                          : linalg::spectral_norm_exact(w) * kRounding;
  }
  return b;
}

// Coordinatewise maps: the largest slope.
c10::optional<double> activation_bound(const nn::Module& m) {
  if (m.as<nn::ReLUImpl>() || m.as<nn::ReLU6Impl>() || m.as<nn::TanhImpl>() || m.as<nn::HardtanhImpl>() ||
      m.as<nn::SoftplusImpl>())
    return 1.0;
  if (m.as<nn::SigmoidImpl>()) return 0.25;
  if (const auto* l = m.as<nn::LeakyReLUImpl>()) return std::max(1.0, std::abs(l->options.negative_slope()));
  if (const auto* e = m.as<nn::ELUImpl>()) return std::max(1.0, std::abs(e->options.alpha()));
  if (m.as<nn::FlattenImpl>() || m.as<nn::IdentityImpl>() || m.as<nn::DropoutImpl>()) return 1.0;  // eval
  return c10::nullopt;
}

bool nonnegative_upsample(const nn::UpsampleImpl& m) {
  const auto& mode = m.options.mode();
  return c10::get_if<torch::enumtype::kNearest>(&mode) || c10::get_if<torch::enumtype::kBilinear>(&mode) ||
         c10::get_if<torch::enumtype::kLinear>(&mode);
}

void need_image(const std::string& layer, const std::vector<int64_t>& in) {
  TORCH_CHECK(in.size() == 3, "upper_bound: ", layer, " needs an input of shape (C, H, W), got ", in.size(),
              " dims");
}
}  // namespace

std::string printed(const torch::nn::Module& m) {
  std::ostringstream s;
  m.pretty_print(s);
  return s.str();
}

c10::optional<LayerBound> ordinary_layer_bound(const std::shared_ptr<torch::nn::Module>& mod,
                                               const std::vector<int64_t>& in, BoundMethod method,
                                               int64_t iters) {
  const auto& m = *mod;
  if (auto slope = activation_bound(m)) {
    LayerBound b{printed(m)};
    b.bound = *slope;
    return b;
  }
  if (const auto* lin = m.as<nn::LinearImpl>()) return dense_bound(*lin, method, iters);
  if (const auto* bn = m.as<nn::BatchNorm2dImpl>()) return batchnorm_bound(*bn);
  if (const auto* bn = m.as<nn::BatchNorm1dImpl>()) return batchnorm_bound(*bn);
  const std::string layer = printed(m);
  if (const auto* conv = m.as<nn::Conv2dImpl>()) {
    need_image(layer, in);
    return linear_module(*conv, in, method, iters, [&] { return conv_analytic(*conv, in, method, iters); });
  }
  if (const auto* t = m.as<nn::ConvTranspose2dImpl>()) {
    need_image(layer, in);
    return linear_module(*t, in, method, iters, [&] { return transposed_analytic(*t, in, method, iters); });
  }
  // nonnegative linear maps: the Schur test is proven (and exact for disjoint windows)
  if (const auto* p = m.as<nn::AvgPool2dImpl>()) return nonnegative_module(*p, in, method, iters);
  if (const auto* p = m.as<nn::AdaptiveAvgPool2dImpl>()) return nonnegative_module(*p, in, method, iters);
  if (const auto* p = m.as<nn::ZeroPad2dImpl>()) return nonnegative_module(*p, in, method, iters);
  if (const auto* p = m.as<nn::ConstantPad2dImpl>()) return nonnegative_module(*p, in, method, iters);
  if (const auto* p = m.as<nn::ReflectionPad2dImpl>()) return nonnegative_module(*p, in, method, iters);
  if (const auto* p = m.as<nn::ReplicationPad2dImpl>()) return nonnegative_module(*p, in, method, iters);
  if (const auto* u = m.as<nn::UpsampleImpl>()) {
    if (nonnegative_upsample(*u)) return nonnegative_module(*u, in, method, iters);
    return linear_module(*u, in, method, iters, [&]() -> double { refuse(layer, "this upsampling mode"); });
  }
  if (const auto* p = m.as<nn::MaxPool2dImpl>()) {
    need_image(layer, in);
    return maxpool_bound(*p, in);
  }
  if (const auto* p = m.as<nn::AdaptiveMaxPool2dImpl>()) {
    need_image(layer, in);
    return adaptive_maxpool_bound(*p, in);
  }
  return c10::nullopt;
}

}  // namespace lipkit::lipschitz::detail
