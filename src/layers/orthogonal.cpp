#include "lipkit/layers/orthogonal.h"

#include <torch/torch.h>

#include "lipkit/linalg/lu.h"

namespace lipkit {

namespace {
// z = x M^{-T} for M = I + V - V^T, with M's LU factors (no pivoting: M's symmetric part is I) kept
// for the backward: dL/dx = g M^{-1} and dL/dM = -(dL/dx)^T z, so dL/dV = dL/dM - (dL/dM)^T.
struct CayleySolve : torch::autograd::Function<CayleySolve> {
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& x, const torch::Tensor& v) {
    auto m = v - v.t();
    m.diagonal().add_(1);
    auto lu = linalg::lu_no_pivot(m);
    auto z = linalg::lu_solve_right_transposed(lu, x);
    ctx->save_for_backward({lu, z});
    return z;
  }
  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grad) {
    TORCH_CHECK(!torch::GradMode::is_enabled(), "lipkit::OrthogonalLinear: double backward is not supported");
    auto saved = ctx->get_saved_variables();
    auto gx = linalg::lu_solve_right(saved[0], grad[0].contiguous());
    auto gm = -torch::mm(gx.t(), saved[1]);
    return {gx, gm - gm.t()};
  }
};
}  // namespace

namespace functional {
torch::Tensor cayley(const torch::Tensor& v) {
  auto a = v - v.t();
  auto eye = torch::eye(v.size(0), v.options());
  return torch::linalg::solve(eye + a, eye - a, /*left=*/true);
}

torch::Tensor cayley_linear(const torch::Tensor& x, const torch::Tensor& v, int64_t out_features) {
  const int64_t n = v.size(0);
  auto xp = x.size(1) < n ? torch::constant_pad_nd(x, {0, n - x.size(1)}) : x;
  torch::Tensor z;
  if (v.is_cpu()) {
    z = CayleySolve::apply(xp, v);
  } else {  // cuSOLVER's pivoted LU is fast there; the recursive one would launch per column
    auto eye = torch::eye(n, v.options());
    z = torch::linalg::solve(eye + v - v.t(), xp.t(), /*left=*/true).t();
  }
  return (2.0 * z - xp).narrow(1, 0, out_features);
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
