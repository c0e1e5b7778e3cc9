#include "lipkit/layers/spline.h"

#include <torch/torch.h>

#include <limits>

#include "lipkit/kernels/spline.h"

namespace lipkit {

namespace {
// (C, K - 1): the slope of every interval, (a[k+1] - a[k]) / grid
torch::Tensor slopes_of(const torch::Tensor& a, double grid) {
  const int64_t k = a.size(1);
  return (a.narrow(1, 1, k - 1) - a.narrow(1, 0, k - 1)) / grid;
}

// (K): the knots t_k = (k - (K - 1) / 2) grid
torch::Tensor knots_of(int64_t k, double grid, const torch::TensorOptions& options) {
  return (torch::arange(k, options) - (k - 1) / 2.0) * grid;
}
}  // namespace

namespace functional {

torch::Tensor spline_projection(const torch::Tensor& coefficients, double grid, double lipschitz, bool monotone) {
  auto slopes = slopes_of(coefficients, grid).clamp(monotone ? 0.0 : -lipschitz, lipschitz);
  auto start = torch::zeros({coefficients.size(0), 1}, coefficients.options());
  auto rebuilt = torch::cat({start, torch::cumsum(slopes * grid, 1)}, 1);
  return rebuilt + (coefficients.mean(1, true) - rebuilt.mean(1, true));
}

torch::Tensor linear_spline(const torch::Tensor& x, const torch::Tensor& coefficients, double grid,
                            const torch::Tensor& scale) {
  auto s = scale.defined() ? scale : torch::ones({coefficients.size(0)}, coefficients.options());
  return kernels::linear_spline(x, coefficients, s, grid, "lipkit::LinearSpline");
}

torch::Tensor spline_tv2(const torch::Tensor& coefficients, double grid) {
  const int64_t k = coefficients.size(1);
  auto second = coefficients.narrow(1, 2, k - 2) - 2 * coefficients.narrow(1, 1, k - 2) + coefficients.narrow(1, 0, k - 2);
  return second.abs().sum() / grid;
}

}  // namespace functional

LinearSplineOptions::LinearSplineOptions(int64_t num_channels) : num_channels_(num_channels) {}

LinearSplineImpl::LinearSplineImpl(const LinearSplineOptions& options_) : options(options_) { reset(); }

void LinearSplineImpl::reset() {
  const auto& o = options;
  TORCH_CHECK(o.num_channels() > 0, "lipkit::LinearSpline: num_channels must be positive, got ", o.num_channels());
  TORCH_CHECK(o.num_knots() >= 3, "lipkit::LinearSpline: num_knots must be >= 3, got ", o.num_knots());
  TORCH_CHECK(o.grid() > 0, "lipkit::LinearSpline: grid must be > 0, got ", o.grid());
  TORCH_CHECK(o.lipschitz() > 0 && o.lipschitz() <= 1, "lipkit::LinearSpline: lipschitz must be in (0, 1], got ",
              o.lipschitz());
  TORCH_CHECK(o.init() == "identity" || o.init() == "relu" || o.init() == "absolute_value" || o.init() == "maxmin",
              "lipkit::LinearSpline: init must be identity, relu, absolute_value or maxmin, got '", o.init(), "'");
  TORCH_CHECK(!o.monotone() || o.init() != "absolute_value",
              "lipkit::LinearSpline: init absolute_value has slope -1, not allowed with monotone (slopes in [0, ",
              o.lipschitz(), "])");
  coefficients = register_parameter("coefficients", torch::empty({o.num_channels(), o.num_knots()}));
  log_scale = register_parameter("log_scale", torch::zeros({o.num_channels()}), o.scaling());
  reset_parameters();
}

void LinearSplineImpl::reset_parameters() {
  torch::NoGradGuard no_grad;
  const int64_t k = options.num_knots();
  auto rows = knots_of(k, options.grid(), coefficients.options()).unsqueeze(0).expand({options.num_channels(), k}).clone();
  const auto& init = options.init();
  if (init == "relu") {
    rows.clamp_min_(0);
  } else if (init == "absolute_value") {
    rows.abs_();
  } else if (init == "maxmin") {
    rows.slice(0, 0, c10::nullopt, 2).clamp_min_(0);
    rows.slice(0, 1, c10::nullopt, 2).clamp_max_(0);
  }
  coefficients.copy_(rows * options.lipschitz());
  log_scale.zero_();
}

void LinearSplineImpl::pretty_print(std::ostream& stream) const {
  stream << "lipkit::LinearSpline(num_channels=" << options.num_channels() << ", num_knots=" << options.num_knots()
         << ", grid=" << options.grid() << ", init=" << options.init() << ", lipschitz=" << options.lipschitz()
         << ", scaling=" << (options.scaling() ? "true" : "false");
  if (options.monotone()) stream << ", monotone=true";
  stream << ")";
}

torch::Tensor LinearSplineImpl::effective_coefficients() const {
  if (!options.project()) return coefficients;
  return functional::spline_projection(coefficients, options.grid(), options.lipschitz(), options.monotone());
}

torch::Tensor LinearSplineImpl::forward(const torch::Tensor& input) {
  detail::check_input(input, "LinearSpline", -1, options.num_channels(), coefficients, "(N, num_channels, ...)");
  // y = spline(s x) / s: the slopes are unchanged
  return functional::linear_spline(input, effective_coefficients(), options.grid(), log_scale.exp());
}

double LinearSplineImpl::lipschitz_bound(Norm) const {
  torch::NoGradGuard no_grad;
  const double slope = slopes_of(effective_coefficients().to(torch::kDouble), options.grid()).abs().max().item<double>();
  return slope * (1.0 + 1e-12);  // one subtraction and one division of rounding
}

std::pair<torch::Tensor, torch::Tensor> LinearSplineImpl::interval_bounds(const torch::Tensor& lower,
                                                                          const torch::Tensor& upper) {
  detail::check_input(lower, "LinearSpline", -1, options.num_channels(), coefficients, "(N, num_channels, ...)");
  TORCH_CHECK(lower.sizes() == upper.sizes(), "lipkit::LinearSpline: interval ends differ in shape: ", lower.sizes(),
              " and ", upper.sizes());
  torch::NoGradGuard no_grad;
  const int64_t c = options.num_channels(), k = options.num_knots();
  std::vector<int64_t> shape(lower.dim(), 1);
  shape[1] = c;
  auto s = log_scale.exp().view(shape);
  auto a = effective_coefficients();
  // in the scaled coordinate the spline's extremes over [l, u] are at l, u or a knot inside
  auto l = (lower * s).transpose(0, 1).reshape({c, -1, 1}), u = (upper * s).transpose(0, 1).reshape({c, -1, 1});
  auto knots = knots_of(k, options.grid(), a.options()).view({1, 1, k});
  auto inside = (knots > l) & (knots < u);  // (C, M, K)
  auto at_knots = a.view({c, 1, k});
  const double inf = std::numeric_limits<double>::infinity();
  auto ends = functional::linear_spline(torch::cat({l, u}, 2).permute({1, 0, 2}), a, options.grid());  // (M, C, 2)
  auto lo_end = ends.select(2, 0).t().unsqueeze(2), hi_end = ends.select(2, 1).t().unsqueeze(2);  // (C, M, 1)
  auto lo = torch::min(torch::min(lo_end, hi_end), at_knots.masked_fill(~inside, inf)).amin(2);
  auto hi = torch::max(torch::max(lo_end, hi_end), at_knots.masked_fill(~inside, -inf)).amax(2);
  auto back = [&](const torch::Tensor& t) {
    auto shape_t = lower.transpose(0, 1).sizes().vec();
    return t.reshape(shape_t).transpose(0, 1) / s;
  };
  return {back(lo), back(hi)};
}

bool LinearSplineImpl::slopes_in_unit_interval() const {
  torch::NoGradGuard no_grad;
  auto a = effective_coefficients().to(torch::kDouble);
  auto slopes = slopes_of(a, options.grid());
  const double tol = 1e-12 * (1 + a.abs().max().item<double>() / options.grid());  // the differences' rounding
  return slopes.min().item<double>() >= -tol && slopes.max().item<double>() <= 1 + tol;
}

LinearSpline residual_activation(torch::nn::Module& owner, const char* layer, const std::string& activation,
                                 int64_t hidden, int64_t knots, double grid) {
  TORCH_CHECK(activation == "relu" || activation == "spline", "lipkit::", layer,
              ": activation must be relu or spline (a monotone LinearSpline; the residual's proof needs slopes "
              "in [0, 1]), got '", activation, "'");
  if (activation == "relu") return LinearSpline(nullptr);
  return owner.register_module(
      "activation", LinearSpline(LinearSplineOptions(hidden).num_knots(knots).grid(grid).init("relu").monotone(true)));
}

std::function<torch::Tensor(const torch::Tensor&)> as_activation(const LinearSpline& spline) {
  if (!spline) return {};
  return [impl = spline.ptr()](const torch::Tensor& h) { return impl->forward(h); };
}

torch::Tensor LinearSplineImpl::tv2() const { return functional::spline_tv2(effective_coefficients(), options.grid()); }

torch::Tensor spline_tv2(torch::nn::Module& module) {
  torch::Tensor total;
  for (auto& m : module.modules(/*include_self=*/true))
    if (auto* s = m->as<LinearSplineImpl>()) total = total.defined() ? total + s->tv2() : s->tv2();
  return total.defined() ? total : torch::zeros({});
}

}  // namespace lipkit
