// Autograd wrapper of the linear-spline kernel, its input checks, and the LibTorch-ops path used on
// other devices (and when set_chunked_fallback forces it, so tests compare the two).

#include <torch/torch.h>

#include "kernels/autograd/dispatch.h"
#include "kernels/cpu/spline_kernel.h"
#include "lipkit/kernels/spline.h"

namespace lipkit::kernels {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

void check_spline(const torch::Tensor& x, const torch::Tensor& a, const torch::Tensor& s, const char* what) {
  TORCH_CHECK(a.dim() == 2 && a.size(1) >= 2, what, ": coefficients must be (channels, knots >= 2), got shape ",
              a.sizes());
  TORCH_CHECK(s.dim() == 1 && s.size(0) == a.size(0), what, ": scale must be (", a.size(0), "), got shape ",
              s.sizes());
  TORCH_CHECK(x.dim() >= 2 && x.size(1) == a.size(0), what, ": expected input of shape (N, ", a.size(0),
              ", ...), got ", x.sizes());
  TORCH_CHECK(x.is_floating_point() && x.scalar_type() == a.scalar_type() && x.scalar_type() == s.scalar_type(), what,
              ": input, coefficients and scale must share a floating dtype, got ", x.scalar_type(), ", ",
              a.scalar_type(), " and ", s.scalar_type());
  TORCH_CHECK(x.device() == a.device() && x.device() == s.device(), what, ": input on ", x.device(),
              ", coefficients on ", a.device(), ", scale on ", s.device());
}

// (N, C, ...) -> (N, C, M) contiguous: the kernel's layout
torch::Tensor as_rows(const torch::Tensor& x) { return x.contiguous().view({x.size(0), x.size(1), -1}); }

struct LinearSplineFunction : torch::autograd::Function<LinearSplineFunction> {
  static variable_list forward(AutogradContext* ctx, const torch::Tensor& x, const torch::Tensor& a,
                               const torch::Tensor& s, double grid) {
    auto xr = as_rows(x), ac = a.contiguous(), sc = s.contiguous();
    ctx->save_for_backward({xr, ac, sc});
    ctx->saved_data["grid"] = grid;
    return {cpu::spline_forward(xr, ac, sc, grid).view(x.sizes())};
  }
  static variable_list backward(AutogradContext* ctx, variable_list grad) {
    detail::refuse_double_backward("linear_spline");
    auto v = ctx->get_saved_variables();
    auto gy = grad[0].contiguous().view(v[0].sizes());
    auto [gx, ga, gs] = cpu::spline_backward(gy, v[0], v[1], v[2], ctx->saved_data["grid"].toDouble());
    return {gx.view(grad[0].sizes()), ga, gs, torch::Tensor()};
  }
};

// The same map with gather: differentiable by LibTorch's autograd, any device.
torch::Tensor spline_ops(const torch::Tensor& x, const torch::Tensor& a, const torch::Tensor& s, double grid) {
  const int64_t c = a.size(0), k = a.size(1);
  std::vector<int64_t> shape(x.dim(), 1);
  shape[1] = c;
  auto flat = (x * s.view(shape)).transpose(0, 1).reshape({c, -1});
  auto u = flat * (1.0 / grid) + (k - 1) / 2.0;  // position in knot units, knot 0 at 0 (as the kernel rounds)
  auto i = u.floor().nan_to_num(0).clamp(0, k - 2).to(torch::kLong).detach();
  auto frac = u - i.to(u.scalar_type());  // < 0 or > 1 outside the grid: the end slopes continue
  auto lo = a.gather(1, i), hi = a.gather(1, i + 1);
  auto y = (lo + frac * (hi - lo)).reshape(x.transpose(0, 1).sizes()).transpose(0, 1);
  return y / s.view(shape);
}

}  // namespace

torch::Tensor linear_spline(const torch::Tensor& x, const torch::Tensor& coefficients, const torch::Tensor& scale,
                            double grid, const char* what) {
  check_spline(x, coefficients, scale, what);
  TORCH_CHECK(grid > 0, what, ": grid must be > 0, got ", grid);
  if (x.numel() > 0 && detail::cpu_kernel(x)) return LinearSplineFunction::apply(x, coefficients, scale, grid)[0];
  return spline_ops(x, coefficients, scale, grid);
}

}  // namespace lipkit::kernels
