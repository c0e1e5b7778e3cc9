#include "lipkit/linalg/gram.h"

#include <ATen/Parallel.h>
#include <torch/torch.h>

#include "lipkit/linalg/add_transpose.h"

namespace lipkit::linalg {

namespace {

// Below this many rows one GEMM is as fast as the triangle of blocks.
constexpr int64_t kTriangleMin = 1024;
constexpr int64_t kBlock = 512;

// Replaces the strict lower triangle of a square block by the transposed upper one: a GEMM's result
// need not be exactly symmetric, and the backward of abs_gram_mv relies on |G| = |G|^T.
void mirror_upper(torch::Tensor block) { block.copy_(torch::triu(block) + torch::triu(block, 1).t()); }

// W W^T, exactly symmetric; from 1024 rows on, from the blocks on and above the diagonal, mirrored
// below: 10 of 16 block GEMMs at m = 2048.
torch::Tensor symmetric_gram(const torch::Tensor& w) {
  const int64_t m = w.size(0);
  if (m < kTriangleMin) {
    auto g = torch::mm(w, w.t());
    mirror_upper(g);
    return g;
  }
  auto g = torch::empty({m, m}, w.options());
  for (int64_t a = 0; a < m; a += kBlock) {
    const int64_t na = std::min(kBlock, m - a);
    auto rows = g.narrow(0, a, na);
    auto upper = rows.narrow(1, a, m - a);
    torch::mm_out(upper, w.narrow(0, a, na), w.narrow(0, a, m - a).t());
    mirror_upper(rows.narrow(1, a, na));
    if (a > 0) rows.narrow(1, 0, a).copy_(g.narrow(0, 0, a).narrow(1, a, na).t());
  }
  return g;
}

bool fusable(const torch::Tensor& g) {
  return g.device().is_cpu() && g.is_contiguous() &&
         (g.scalar_type() == torch::kFloat || g.scalar_type() == torch::kDouble);
}

// t_i = sum_j |G_ij| v_j in one pass over G.
torch::Tensor abs_rows_times(const torch::Tensor& g, const torch::Tensor& v) {
  if (!fusable(g)) return torch::mv(g.abs(), v);
  const int64_t m = g.size(0);
  auto vc = v.contiguous();
  auto t = torch::empty({m}, g.options());
  AT_DISPATCH_FLOATING_TYPES(g.scalar_type(), "abs_gram_mv", [&] {
    const scalar_t *gp = g.data_ptr<scalar_t>(), *vp = vc.data_ptr<scalar_t>();
    scalar_t* tp = t.data_ptr<scalar_t>();
    at::parallel_for(0, m, 16, [&](int64_t i0, int64_t i1) {
      for (int64_t i = i0; i < i1; ++i) {
        scalar_t s = 0;
        for (int64_t j = 0; j < m; ++j) s += std::abs(gp[i * m + j]) * vp[j];
        tp[i] = s;
      }
    });
  });
  return t;
}

// M_ij = sign(G_ij) (dt_i v_j + v_i dt_j): the symmetric gradient of |G| v with respect to G, summed
// with its transpose (d(W W^T) = dW W^T + W dW^T), so that dW = M W.
torch::Tensor signed_outer_sum(const torch::Tensor& g, const torch::Tensor& dt, const torch::Tensor& v) {
  if (!fusable(g)) return g.sgn() * (torch::outer(dt, v) + torch::outer(v, dt));
  const int64_t m = g.size(0);
  auto dtc = dt.contiguous(), vc = v.contiguous();
  auto out = torch::empty_like(g);
  AT_DISPATCH_FLOATING_TYPES(g.scalar_type(), "abs_gram_mv_backward", [&] {
    const scalar_t *gp = g.data_ptr<scalar_t>(), *dp = dtc.data_ptr<scalar_t>(), *vp = vc.data_ptr<scalar_t>();
    scalar_t* op = out.data_ptr<scalar_t>();
    at::parallel_for(0, m, 16, [&](int64_t i0, int64_t i1) {
      for (int64_t i = i0; i < i1; ++i)
        for (int64_t j = 0; j < m; ++j) {
          const scalar_t x = gp[i * m + j];
          const scalar_t s = scalar_t((x > 0) - (x < 0));  // 0 at 0, as d|x|/dx in torch
          op[i * m + j] = s * (dp[i] * vp[j] + vp[i] * dp[j]);
        }
    });
  });
  return out;
}

class GramFunction : public torch::autograd::Function<GramFunction> {
 public:
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& w) {
    ctx->save_for_backward({w});
    return symmetric_gram(w);
  }
  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    auto w = ctx->get_saved_variables()[0];
    const auto& g = grads[0];
    return {torch::mm(add_transpose(g, 1.0, 1.0), w)};
  }
};

class AbsGramMvFunction : public torch::autograd::Function<AbsGramMvFunction> {
 public:
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& w,
                               const torch::Tensor& v) {
    auto g = symmetric_gram(w);
    ctx->save_for_backward({w, v, g});
    return abs_rows_times(g, v);
  }
  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    auto saved = ctx->get_saved_variables();
    const auto &w = saved[0], &v = saved[1], &g = saved[2];
    auto dt = grads[0];
    torch::Tensor dw, dv;
    if (ctx->needs_input_grad(0)) dw = torch::mm(signed_outer_sum(g, dt, v), w);
    if (ctx->needs_input_grad(1)) dv = abs_rows_times(g, dt);  // |G| is symmetric
    return {dw, dv};
  }
};

}  // namespace

torch::Tensor gram(const torch::Tensor& weight) {
  TORCH_CHECK(weight.dim() == 2, "lipkit::functional::gram: expected a matrix, got shape ",
              weight.sizes());
  return GramFunction::apply(weight);
}

torch::Tensor abs_gram_mv(const torch::Tensor& weight, const torch::Tensor& v) {
  TORCH_CHECK(weight.dim() == 2, "lipkit::abs_gram_mv: expected a matrix, got shape ", weight.sizes());
  TORCH_CHECK(v.dim() == 1 && v.size(0) == weight.size(0), "lipkit::abs_gram_mv: v must have shape (",
              weight.size(0), ") for a weight of shape ", weight.sizes(), ", got ", v.sizes());
  TORCH_CHECK(v.scalar_type() == weight.scalar_type() && v.device() == weight.device(),
              "lipkit::abs_gram_mv: v and weight must share dtype and device");
  return AbsGramMvFunction::apply(weight, v);
}

}  // namespace lipkit::linalg
