#include "lipkit/layers/orthogonal.h"

#include <torch/torch.h>

#include "lipkit/linalg/add_transpose.h"

namespace lipkit {

namespace {

using torch::autograd::AutogradContext;

// I + A, A = V - V^T, in column-major layout (the LU's own, so the factorisation copies it as it
// is): its transpose I - A built row-major.
torch::Tensor cayley_system(const torch::Tensor& v) { return linalg::add_transpose(v, -1.0, 1.0, 1.0).t(); }

// y = 2 z^T - x with z = (I + A)^{-1} x^T. One LU of I + A serves both solves. Backward, with
// u = (I + A)^{-T} g^T: dL/dx = 2 u^T - g, dL/dA = -2 u z^T, and dA = dV - dV^T gives
// dL/dV = -2 (u z^T - z u^T).
struct CayleyLinearFunction : torch::autograd::Function<CayleyLinearFunction> {
  static torch::Tensor forward(AutogradContext* ctx, const torch::Tensor& x, const torch::Tensor& v) {
    auto [lu, pivots] = torch::linalg_lu_factor(cayley_system(v));
    auto z = torch::linalg_lu_solve(lu, pivots, x.t());
    ctx->save_for_backward({lu, pivots, z});
    return 2.0 * z.t() - x;
  }

  static torch::autograd::variable_list backward(AutogradContext* ctx, torch::autograd::variable_list grads) {
    // The saved LU is not linked to v in the graph: gradients of gradients would be wrong.
    TORCH_CHECK_NOT_IMPLEMENTED(!torch::GradMode::is_enabled(), "lipkit::cayley_linear: double backward ",
                                "(gradients of gradients, create_graph=true) is not implemented");
    auto saved = ctx->get_saved_variables();
    const auto& g = grads[0];
    auto u = torch::linalg_lu_solve(saved[0], saved[1], g.t(), /*left=*/true, /*adjoint=*/true);
    torch::Tensor gx, gv;
    if (ctx->needs_input_grad(0)) gx = 2.0 * u.t() - g;
    if (ctx->needs_input_grad(1)) gv = linalg::add_transpose(torch::mm(u, saved[2].t()), -2.0, 2.0);
    return {gx, gv};
  }
};

}  // namespace

namespace functional {
torch::Tensor cayley(const torch::Tensor& v) {
  auto m = cayley_system(v);
  return torch::linalg::solve(m, m.t(), /*left=*/true);  // (I + A)^{-1} (I - A)
}

torch::Tensor cayley_linear(const torch::Tensor& x, const torch::Tensor& v, int64_t out_features) {
  TORCH_CHECK(v.dim() == 2 && v.size(0) == v.size(1), "lipkit::cayley_linear: v must be square, got shape ",
              v.sizes());
  const int64_t n = v.size(0);
  TORCH_CHECK(x.dim() == 2 && x.size(1) <= n, "lipkit::cayley_linear: x must have shape (N, in) with in <= ", n,
              " (the size of v), got ", x.sizes());
  TORCH_CHECK(out_features >= 1 && out_features <= n, "lipkit::cayley_linear: out_features must be in [1, ", n,
              "], got ", out_features);
  TORCH_CHECK(x.scalar_type() == v.scalar_type() && x.device() == v.device(),
              "lipkit::cayley_linear: x and v must have the same dtype and device, got ", x.scalar_type(), " on ",
              x.device(), " and ", v.scalar_type(), " on ", v.device());
  auto xp = x.size(1) < n ? torch::constant_pad_nd(x, {0, n - x.size(1)}) : x;
  return CayleyLinearFunction::apply(xp, v).narrow(1, 0, out_features);
}
}  // namespace functional

OrthogonalLinearOptions::OrthogonalLinearOptions(int64_t in_features, int64_t out_features)
    : in_features_(in_features), out_features_(out_features) {}

OrthogonalLinearImpl::OrthogonalLinearImpl(const OrthogonalLinearOptions& options_)
    : options(options_) {
  reset();
}

void OrthogonalLinearImpl::reset() {
  TORCH_CHECK(options.in_features() > 0 && options.out_features() > 0,
              "lipkit::OrthogonalLinear: in_features and out_features must be positive");
  const int64_t n = std::max(options.in_features(), options.out_features());
  v = register_parameter("v", torch::empty({n, n}));
  bias = options.bias() ? register_parameter("bias", torch::empty({options.out_features()}))
                        : register_parameter("bias", {}, /*requires_grad=*/false);
  reset_parameters();
}

void OrthogonalLinearImpl::reset_parameters() {
  torch::NoGradGuard no_grad;
  const double scale = 1.0 / std::sqrt(static_cast<double>(v.size(0)));
  v.uniform_(-scale, scale);
  if (bias.defined()) bias.zero_();
}

void OrthogonalLinearImpl::pretty_print(std::ostream& stream) const {
  stream << "lipkit::OrthogonalLinear(in_features=" << options.in_features()
         << ", out_features=" << options.out_features()
         << ", bias=" << (options.bias() ? "true" : "false") << ")";
}

torch::Tensor OrthogonalLinearImpl::effective_weight() const {
  return functional::cayley(v).narrow(0, 0, options.out_features()).narrow(1, 0,
                                                                           options.in_features());
}

torch::Tensor OrthogonalLinearImpl::forward(const torch::Tensor& input) {
  detail::check_input(input, "OrthogonalLinear", 2, options.in_features(), v, "(N, in_features)");
  if (is_training()) {  // every step changes v: apply Q through the batch solve
    auto y = functional::cayley_linear(input, v, options.out_features());
    return bias.defined() ? y + bias : y;
  }
  auto w = weight_.get(false, v, detail::version_key({v}), [&] { return effective_weight(); });
  return torch::nn::functional::linear(input, w, bias);
}

double OrthogonalLinearImpl::lipschitz_bound(Norm norm) const {
  return norm == Norm::L2 ? 1.0 : kNoBound;
}

}  // namespace lipkit
