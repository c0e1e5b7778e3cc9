// SortNet neuron at evaluation (the deterministic, truncated form): the K largest |x_i - w_i| of
// each (b, m) pair, weighted q (1-q)^k and renormalized to sum 1. A sorted top-K list per pair
// with a threshold test per element (almost every element is rejected by one compare). Also the
// interval bounds over a box, used by certification: order statistics are monotone, so the top-K
// of per-coordinate upper (lower) distances bound the neuron from above (below).

#include <ATen/ATen.h>

#include <algorithm>
#include <cmath>

#include "kernels/cpu/dist_kernels.h"
#include "kernels/cpu/simd.h"

namespace lipkit::kernels::cpu {
namespace {

constexpr int kMaxK = 64;

template <typename T>
struct TopK {
  T val[kMaxK];
  int32_t id[kMaxK];
  int k;
  explicit TopK(int k_) : k(k_) { std::fill(val, val + k, T(-1)); std::fill(id, id + k, 0); }
  // Inserts after equal values, so ties keep the lower index first.
  void push(T v, int32_t i) {
    if (!(v > val[k - 1])) return;
    int pos = k - 1;
    while (pos > 0 && val[pos - 1] < v) {
      val[pos] = val[pos - 1];
      id[pos] = id[pos - 1];
      --pos;
    }
    val[pos] = v;
    id[pos] = i;
  }
  T weighted(const double* c) const {
    T s = 0;
    for (int t = 0; t < k; ++t) s += static_cast<T>(c[t]) * val[t];
    return s;
  }
};

}  // namespace

std::vector<double> sort_weights(double q, int64_t k) {
  std::vector<double> c(k);
  double total = 0;
  for (int64_t t = 0; t < k; ++t) total += c[t] = q * std::pow(1 - q, static_cast<double>(t));
  for (auto& v : c) v /= total;  // = 1 - (1-q)^K
  return c;
}

std::tuple<at::Tensor, at::Tensor> sort_neuron_forward(const at::Tensor& x, const at::Tensor& w,
                                                       double q, int64_t k) {
  const int64_t B = x.size(0), N = x.size(1), M = w.size(0);
  TORCH_CHECK(k >= 1 && k <= kMaxK && k <= N, "sort neuron: need 1 <= k <= min(", kMaxK, ", inputs)");
  const auto c = sort_weights(q, k);
  auto y = at::empty({B, M}, x.options());
  auto idx = at::empty({B, M, k}, x.options().dtype(at::kInt));
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "sort_neuron_forward", [&] {
    const scalar_t *xp = x.data_ptr<scalar_t>(), *wp = w.data_ptr<scalar_t>();
    scalar_t* yp = y.data_ptr<scalar_t>();
    int32_t* ip = idx.data_ptr<int32_t>();
    at::parallel_for(0, B * M, 64, [&](int64_t begin, int64_t end) {
      for (int64_t t = begin; t < end; ++t) {
        const scalar_t* xr = xp + (t / M) * N;
        const scalar_t* wr = wp + (t % M) * N;
        TopK<scalar_t> top(static_cast<int>(k));
        for (int64_t i = 0; i < N; ++i) top.push(std::abs(xr[i] - wr[i]), static_cast<int32_t>(i));
        yp[t] = top.weighted(c.data());
        std::copy(top.id, top.id + k, ip + t * k);
      }
    });
  });
  return {y, idx};
}

std::tuple<at::Tensor, at::Tensor> sort_neuron_backward(const at::Tensor& grad_y, const at::Tensor& x,
                                                        const at::Tensor& w, const at::Tensor& index,
                                                        double q, int64_t k) {
  const int64_t B = x.size(0), N = x.size(1), M = w.size(0);
  const auto c = sort_weights(q, k);
  auto gx = at::zeros_like(x);
  auto gw = at::zeros_like(w);
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "sort_neuron_backward", [&] {
    const scalar_t *xp = x.data_ptr<scalar_t>(), *wp = w.data_ptr<scalar_t>();
    const scalar_t* gp = grad_y.data_ptr<scalar_t>();
    const int32_t* ip = index.data_ptr<int32_t>();
    scalar_t *gxp = gx.data_ptr<scalar_t>(), *gwp = gw.data_ptr<scalar_t>();
    auto term = [&](int64_t b, int64_t m, int64_t t, int64_t i) {
      const scalar_t d = xp[b * N + i] - wp[m * N + i];
      return gp[b * M + m] * static_cast<scalar_t>(c[t]) * scalar_t((d > 0) - (d < 0));
    };
    at::parallel_for(0, B, 16, [&](int64_t b0, int64_t b1) {
      for (int64_t b = b0; b < b1; ++b)
        for (int64_t m = 0; m < M; ++m)
          for (int64_t t = 0; t < k; ++t) {
            const int64_t i = ip[(b * M + m) * k + t];
            gxp[b * N + i] += term(b, m, t, i);
          }
    });
    at::parallel_for(0, M, 16, [&](int64_t m0, int64_t m1) {
      for (int64_t m = m0; m < m1; ++m)
        for (int64_t b = 0; b < B; ++b)
          for (int64_t t = 0; t < k; ++t) {
            const int64_t i = ip[(b * M + m) * k + t];
            gwp[m * N + i] -= term(b, m, t, i);
          }
    });
  });
  return {gx, gw};
}

std::tuple<at::Tensor, at::Tensor> sort_neuron_box(const at::Tensor& lower, const at::Tensor& upper,
                                                   const at::Tensor& w, double q, int64_t k) {
  const int64_t B = lower.size(0), N = lower.size(1), M = w.size(0);
  TORCH_CHECK(k >= 1 && k <= kMaxK && k <= N, "sort neuron box: need 1 <= k <= min(", kMaxK, ", inputs)");
  const auto c = sort_weights(q, k);
  auto ylo = at::empty({B, M}, lower.options());
  auto yhi = at::empty({B, M}, lower.options());
  AT_DISPATCH_FLOATING_TYPES(lower.scalar_type(), "sort_neuron_box", [&] {
    const scalar_t *lp = lower.data_ptr<scalar_t>(), *up = upper.data_ptr<scalar_t>();
    const scalar_t* wp = w.data_ptr<scalar_t>();
    scalar_t *lo = ylo.data_ptr<scalar_t>(), *hi = yhi.data_ptr<scalar_t>();
    at::parallel_for(0, B * M, 64, [&](int64_t begin, int64_t end) {
      for (int64_t t = begin; t < end; ++t) {
        const scalar_t* lr = lp + (t / M) * N;
        const scalar_t* ur = up + (t / M) * N;
        const scalar_t* wr = wp + (t % M) * N;
        TopK<scalar_t> top_hi(static_cast<int>(k)), top_lo(static_cast<int>(k));
        for (int64_t i = 0; i < N; ++i) {
          // max and min of |x_i - w_i| over x_i in [l_i, u_i]; single subtractions, no rounding drift
          top_hi.push(std::max(ur[i] - wr[i], wr[i] - lr[i]), 0);
          top_lo.push(std::max({scalar_t(0), lr[i] - wr[i], wr[i] - ur[i]}), 0);
        }
        hi[t] = top_hi.weighted(c.data());
        lo[t] = top_lo.weighted(c.data());
      }
    });
  });
  return {ylo, yhi};
}

}  // namespace lipkit::kernels::cpu
