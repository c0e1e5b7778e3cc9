// Autograd wrappers of the distance kernels, input checks, and the chunked LibTorch path used on
// devices without a hand-written kernel.

#include <torch/torch.h>

#include <cmath>

#include "kernels/autograd/dispatch.h"
#include "kernels/cpu/dist_kernels.h"
#include "lipkit/kernels/dist.h"

namespace lipkit::kernels {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

void check_pair(const torch::Tensor& x, const torch::Tensor& w, const char* what) {
  TORCH_CHECK(x.dim() == 2, what, ": input must be (batch, in_features), got shape ", x.sizes());
  TORCH_CHECK(w.dim() == 2, what, ": weight must be (out_features, in_features), got shape ", w.sizes());
  TORCH_CHECK(x.size(1) == w.size(1), what, ": input has ", x.size(1), " features, weight expects ",
              w.size(1), " (input ", x.sizes(), ", weight ", w.sizes(), ")");
  TORCH_CHECK(x.scalar_type() == w.scalar_type() && x.is_floating_point(), what,
              ": input and weight must share a floating dtype, got ", x.scalar_type(), " and ",
              w.scalar_type());
  TORCH_CHECK(x.device() == w.device(), what, ": input on ", x.device(), ", weight on ", w.device());
  TORCH_CHECK(x.size(1) > 0, what, ": zero input features");
}

// The CPU kernels skip NaN in their comparisons (a silently wrong max), so their inputs are checked:
// one pass over x and w ((B + M) N, against the kernels' B M N) and one sync. The LibTorch path
// propagates NaN by itself and needs no check.
void check_finite(const torch::Tensor& x, const torch::Tensor& w, const char* what) {
  if ((torch::isfinite(x).all() & torch::isfinite(w).all()).item<bool>()) return;
  TORCH_CHECK(torch::isfinite(x).all().item<bool>(), what, ": input contains NaN or inf (shape ", x.sizes(), ")");
  TORCH_CHECK(false, what, ": weight contains NaN or inf (shape ", w.sizes(), ")");
}

using detail::cpu_kernel;
using detail::refuse_double_backward;

bool wants_grad(const torch::Tensor& x, const torch::Tensor& w) {
  return torch::GradMode::is_enabled() && (x.requires_grad() || w.requires_grad());
}

struct LinfDistFunction : torch::autograd::Function<LinfDistFunction> {
  static variable_list forward(AutogradContext* ctx, const torch::Tensor& x, const torch::Tensor& w,
                               bool need_index) {
    auto [y, idx] = cpu::linf_dist_forward(x, w, need_index);
    ctx->save_for_backward({x, w, idx});
    return {y};
  }
  static variable_list backward(AutogradContext* ctx, variable_list grad) {
    refuse_double_backward("linf_dist");
    auto s = ctx->get_saved_variables();
    auto [gx, gw] = cpu::linf_dist_backward(grad[0].contiguous(), s[0], s[1], s[2]);
    return {gx, gw, torch::Tensor()};
  }
};

struct LpDistFunction : torch::autograd::Function<LpDistFunction> {
  static variable_list forward(AutogradContext* ctx, const torch::Tensor& x, const torch::Tensor& w,
                               double p) {
    auto y = cpu::lp_dist_forward(x, w, p);
    ctx->save_for_backward({x, w, y});
    ctx->saved_data["p"] = p;
    return {y};
  }
  static variable_list backward(AutogradContext* ctx, variable_list grad) {
    refuse_double_backward("lp_dist");
    auto s = ctx->get_saved_variables();
    auto [gx, gw] = cpu::lp_dist_backward(grad[0], s[0], s[1], s[2], ctx->saved_data["p"].toDouble());
    return {gx, gw, torch::Tensor()};
  }
};

struct SortNeuronFunction : torch::autograd::Function<SortNeuronFunction> {
  static variable_list forward(AutogradContext* ctx, const torch::Tensor& x, const torch::Tensor& w,
                               double q, int64_t k) {
    auto [y, idx] = cpu::sort_neuron_forward(x, w, q, k);
    ctx->save_for_backward({x, w, idx});
    ctx->saved_data["q"] = q;
    ctx->saved_data["k"] = k;
    return {y};
  }
  static variable_list backward(AutogradContext* ctx, variable_list grad) {
    refuse_double_backward("sort_neuron");
    auto s = ctx->get_saved_variables();
    auto [gx, gw] = cpu::sort_neuron_backward(grad[0].contiguous(), s[0], s[1], s[2],
                                              ctx->saved_data["q"].toDouble(),
                                              ctx->saved_data["k"].toInt());
    return {gx, gw, torch::Tensor(), torch::Tensor()};
  }
};

// Chunked LibTorch path: (B, chunk, N) differences at a time, about 16M elements.
template <typename F>
torch::Tensor chunked(const torch::Tensor& x, const torch::Tensor& w, F&& f) {
  const int64_t per = std::max<int64_t>(1, (int64_t(1) << 24) / std::max<int64_t>(1, x.size(0) * x.size(1)));
  std::vector<torch::Tensor> parts;
  for (int64_t m0 = 0; m0 < w.size(0); m0 += per) {
    auto d = (x.unsqueeze(1) - w.narrow(0, m0, std::min(per, w.size(0) - m0)).unsqueeze(0)).abs();
    parts.push_back(f(d));
  }
  return torch::cat(parts, 1);
}

}  // namespace

namespace detail {

bool force_chunked = false;

bool cpu_kernel(const torch::Tensor& x) {
  return !force_chunked && x.device().is_cpu() &&
         (x.scalar_type() == torch::kFloat || x.scalar_type() == torch::kDouble);
}

void refuse_double_backward(const char* op) {
  TORCH_CHECK_NOT_IMPLEMENTED(!torch::GradMode::is_enabled(), "lipkit::kernels::", op,
                              ": double backward (gradients of gradients, create_graph=true) is not implemented");
}

}  // namespace detail

torch::Tensor lp_dist(const torch::Tensor& x, const torch::Tensor& w, double p, const char* what) {
  check_pair(x, w, what);
  TORCH_CHECK(p >= 1, what, ": p must be >= 1 (or inf), got ", p);
  if (cpu_kernel(x)) {
    check_finite(x, w, what);
    auto xc = x.contiguous(), wc = w.contiguous();
    if (std::isinf(p)) return LinfDistFunction::apply(xc, wc, wants_grad(x, w))[0];
    return LpDistFunction::apply(xc, wc, p)[0];
  }
  return chunked(x, w, [&](const torch::Tensor& d) {
    auto mx = d.amax(-1, true).detach();
    if (std::isinf(p)) return d.gather(-1, d.argmax(-1, true)).squeeze(-1);
    auto safe = mx.clamp_min(std::numeric_limits<float>::min());  // the result is ||d||_p for any constant scale
    return ((d / safe).pow(p).sum(-1, true).pow(1.0 / p) * safe).squeeze(-1);
  });
}

torch::Tensor sort_neuron(const torch::Tensor& x, const torch::Tensor& w, double q, int64_t k,
                          const char* what) {
  check_pair(x, w, what);
  TORCH_CHECK(q > 0 && q <= 1, what, ": q (keep probability) must be in (0, 1], got ", q);
  TORCH_CHECK(k >= 1 && k <= std::min<int64_t>(64, x.size(1)), what, ": k must be in [1, min(64, ",
              x.size(1), ")], got ", k);
  if (k == 1) return lp_dist(x, w, kInf, what);  // the top order statistic alone: the l_inf neuron
  if (cpu_kernel(x)) {
    check_finite(x, w, what);
    return SortNeuronFunction::apply(x.contiguous(), w.contiguous(), q, k)[0];
  }
  const auto c = cpu::sort_weights(q, k);
  auto cw = torch::tensor(c, x.options());
  return chunked(x, w, [&](const torch::Tensor& d) { return std::get<0>(d.topk(k, -1)).matmul(cw); });
}

std::pair<torch::Tensor, torch::Tensor> sort_neuron_bounds(const torch::Tensor& lower,
                                                           const torch::Tensor& upper,
                                                           const torch::Tensor& w, double q, int64_t k) {
  check_pair(lower, w, "sort_neuron_bounds");
  TORCH_CHECK(lower.sizes() == upper.sizes(), "sort_neuron_bounds: lower ", lower.sizes(),
              " and upper ", upper.sizes(), " differ in shape");
  TORCH_CHECK((lower <= upper).all().item<bool>(), "sort_neuron_bounds: lower > upper somewhere (or NaN)");
  check_finite(lower, w, "sort_neuron_bounds");
  check_finite(upper, w, "sort_neuron_bounds");
  torch::NoGradGuard no_grad;
  auto dev = lower.device();
  auto to_cpu = [](const torch::Tensor& t) {
    auto c = t.to(torch::kCPU);
    return c.scalar_type() == torch::kDouble ? c.contiguous() : c.to(torch::kFloat).contiguous();
  };
  auto l = to_cpu(lower);
  auto [lo, hi] = cpu::sort_neuron_box(l, to_cpu(upper), to_cpu(w).to(l.scalar_type()), q, k);
  return {lo.to(dev, lower.scalar_type()), hi.to(dev, lower.scalar_type())};
}

bool set_chunked_fallback(bool enabled) {
  const bool previous = detail::force_chunked;
  detail::force_chunked = enabled;
  return previous;
}

}  // namespace lipkit::kernels
