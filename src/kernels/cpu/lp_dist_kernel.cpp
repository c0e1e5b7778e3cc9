// l_p-distance layer on the CPU (the training relaxation of the l_inf neuron):
// y[b, m] = ||x[b] - w[m]||_p, evaluated as mx * (sum_i (|d_i| / mx)^p)^(1/p) with mx the l_inf
// distance, so nothing overflows at p = 1000. Integer p (what the p schedule uses) runs on
// vectors with exact repeated squaring; any other p falls back to std::pow per element.
// Backward: grad_x[b] = sum_m g[b, m] phi((x_b - w_m) / y[b, m]), phi(z) = sign(z) |z|^(p-1), and
// grad_w[m] = sum_b g[b, m] phi((w_m - x_b) / y[b, m]): one routine serves both (phi is odd).

#include <ATen/ATen.h>

#include <algorithm>
#include <cmath>

#include "kernels/cpu/dist_kernels.h"
#include "kernels/cpu/simd.h"
#include "kernels/cpu/tiling.h"

namespace lipkit::kernels::cpu {
namespace {

constexpr int kGroup = 4;  // vectors raised to the power together

bool integer_power(double e) { return e >= 0 && e <= 1 << 20 && e == std::floor(e); }

// a^e for 0 <= a <= 1, dropped to 0 at or below the underflow cutoff `cut` (simd.h)
template <typename T>
T scalar_pow(T a, double e, T cut) {
  if (e == 0) return a > 0 ? T(1) : T(0);
  return a > cut ? static_cast<T>(std::pow(a, static_cast<T>(e))) : T(0);
}

// sum_i (|x_i - w_i| * inv)^e
template <typename S, typename T>
LIPKIT_INLINE T pow_sum(const T* xp, const T* wp, int64_t N, T inv, double e, T cut) {
  using V = typename S::V;
  constexpr int L = S::kLanes;
  int64_t i = 0;
  T total = 0;
  if (integer_power(e)) {
    const auto ie = static_cast<uint32_t>(e);
    const V vinv = S::set1(inv), vcut = S::set1(cut);
    V acc = S::set1(0);
    for (; i + kGroup * L <= N; i += kGroup * L) {
      V a[kGroup];
      for (int k = 0; k < kGroup; ++k) a[k] = S::abs(S::load(xp + i + k * L) - S::load(wp + i + k * L)) * vinv;
      if (!drop_below<S, kGroup>(a, vcut)) continue;
      ipow<S, kGroup>(a, ie);
      for (int k = 0; k < kGroup; ++k) acc += a[k];
    }
    for (; i + L <= N; i += L) {
      V a[1] = {S::abs(S::load(xp + i) - S::load(wp + i)) * vinv};
      if (!drop_below<S, 1>(a, vcut)) continue;
      ipow<S, 1>(a, ie);
      acc += a[0];
    }
    total = S::hsum(acc);
  }
  for (; i < N; ++i) total += scalar_pow(std::abs(xp[i] - wp[i]) * inv, e, cut);
  return total;
}

template <typename S, typename T>
LIPKIT_INLINE void lp_forward_block(const T* x, const T* w, T* y, int64_t N, int64_t M, double p,
                                    int64_t b0, int64_t b1, int64_t m0, int64_t m1) {
  const T cut = underflow_cutoff<T>(p);
  for (int64_t b = b0; b < b1; ++b)
    for (int64_t m = m0; m < m1; ++m) {
      const T mx = y[b * M + m];  // holds the l_inf distance on entry
      if (!(mx > 0)) continue;    // x_b == w_m: distance 0
      const T s = pow_sum<S>(x + b * N, w + m * N, N, T(1) / mx, p, cut);
      y[b * M + m] = mx * static_cast<T>(std::pow(s, 1.0 / p));
    }
}

// out[a, i0:i1] = sum_k g[a, k] phi((P[a, i] - Q[k, i]) * s[a, k]) for `G` vectors starting at i
template <typename S, int G, typename T>
LIPKIT_INLINE void phi_accumulate(const T* P, const T* Q, const T* g, const T* s, T* out, int64_t N,
                                  int64_t K, int64_t a, int64_t i, uint32_t e,
                                  typename S::V cut) {
  using V = typename S::V;
  constexpr int L = S::kLanes;
  V acc[G], pv[G];
  for (int t = 0; t < G; ++t) acc[t] = S::set1(0), pv[t] = S::load(P + a * N + i + t * L);
  for (int64_t k = 0; k < K; ++k) {
    const T sk = s[a * K + k], gk = g[a * K + k];
    if (sk == 0 || gk == 0) continue;
    const V vs = S::set1(sk), vg = S::set1(gk);
    V z[G], mag[G];
    for (int t = 0; t < G; ++t) {
      z[t] = (pv[t] - S::load(Q + k * N + i + t * L)) * vs;
      mag[t] = S::abs(z[t]);
    }
    if (!drop_below<S, G>(mag, cut)) continue;
    ipow<S, G>(mag, e);
    for (int t = 0; t < G; ++t) acc[t] += S::with_sign_of(mag[t] * vg, z[t]);
  }
  for (int t = 0; t < G; ++t) S::store(out + a * N + i + t * L, acc[t]);
}

template <typename S, typename T>
LIPKIT_INLINE void phi_block(const T* P, const T* Q, const T* g, const T* s, T* out, int64_t N,
                             int64_t K, double e, int64_t a0, int64_t a1, int64_t i0, int64_t i1) {
  constexpr int L = S::kLanes;
  const T cut = underflow_cutoff<T>(e);
  for (int64_t a = a0; a < a1; ++a) {
    int64_t i = i0;
    if (integer_power(e)) {
      const auto ie = static_cast<uint32_t>(e);
      const auto vcut = S::set1(cut);
      for (; i + kGroup * L <= i1; i += kGroup * L) phi_accumulate<S, kGroup>(P, Q, g, s, out, N, K, a, i, ie, vcut);
      for (; i + L <= i1; i += L) phi_accumulate<S, 1>(P, Q, g, s, out, N, K, a, i, ie, vcut);
    }
    for (; i < i1; ++i) {
      T acc = 0;
      for (int64_t k = 0; k < K; ++k) {
        const T sk = s[a * K + k], gk = g[a * K + k];
        if (sk == 0 || gk == 0) continue;
        const T z = (P[a * N + i] - Q[k * N + i]) * sk;
        acc += scalar_pow(std::abs(z), e, cut) * gk * T((z > 0) - (z < 0));
      }
      out[a * N + i] = acc;
    }
  }
}

template <typename T>
void lp_forward_portable(const T* x, const T* w, T* y, int64_t N, int64_t M, double p, int64_t b0,
                         int64_t b1, int64_t m0, int64_t m1) {
  lp_forward_block<Simd<T, 16>>(x, w, y, N, M, p, b0, b1, m0, m1);
}
template <typename T>
void phi_portable(const T* P, const T* Q, const T* g, const T* s, T* out, int64_t N, int64_t K,
                  double e, int64_t a0, int64_t a1, int64_t i0, int64_t i1) {
  phi_block<Simd<T, 16>>(P, Q, g, s, out, N, K, e, a0, a1, i0, i1);
}
#if LIPKIT_HAS_AVX2_PATH
template <typename T>
LIPKIT_TARGET_AVX2 void lp_forward_avx2(const T* x, const T* w, T* y, int64_t N, int64_t M, double p,
                                        int64_t b0, int64_t b1, int64_t m0, int64_t m1) {
  lp_forward_block<Simd<T, 32>>(x, w, y, N, M, p, b0, b1, m0, m1);
}
template <typename T>
LIPKIT_TARGET_AVX2 void phi_avx2(const T* P, const T* Q, const T* g, const T* s, T* out, int64_t N,
                                 int64_t K, double e, int64_t a0, int64_t a1, int64_t i0, int64_t i1) {
  phi_block<Simd<T, 32>>(P, Q, g, s, out, N, K, e, a0, a1, i0, i1);
}
#endif

// out (A, N) = sum over the K rows of Q, coefficients g, s (A, K)
template <typename T>
void phi_sum(const at::Tensor& P, const at::Tensor& Q, const at::Tensor& g, const at::Tensor& s,
             at::Tensor& out, double e) {
  const int64_t A = P.size(0), N = P.size(1), K = Q.size(0);
  auto fn = &phi_portable<T>;
#if LIPKIT_HAS_AVX2_PATH
  if (use_avx2()) fn = &phi_avx2<T>;
#endif
  const int64_t iblock = 256 / static_cast<int64_t>(sizeof(T)) * 2;  // 128 floats: a column slice of Q stays in L2
  const int64_t ablock = 16;
  const int64_t ni = (N + iblock - 1) / iblock, na = (A + ablock - 1) / ablock;
  const T *pp = P.data_ptr<T>(), *qp = Q.data_ptr<T>(), *gp = g.data_ptr<T>(), *sp = s.data_ptr<T>();
  T* op = out.data_ptr<T>();
  at::parallel_for(0, ni * na, 1, [&](int64_t begin, int64_t end) {
    for (int64_t t = begin; t < end; ++t) {
      const int64_t ia = t % na, ii = t / na;
      fn(pp, qp, gp, sp, op, N, K, e, ia * ablock, std::min(A, (ia + 1) * ablock), ii * iblock,
         std::min(N, (ii + 1) * iblock));
    }
  });
}

}  // namespace

at::Tensor lp_dist_forward(const at::Tensor& x, const at::Tensor& w, double p) {
  auto y = std::get<0>(linf_dist_forward(x, w, false));
  const int64_t N = x.size(1), M = w.size(0);
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "lp_dist_forward", [&] {
    auto fn = &lp_forward_portable<scalar_t>;
#if LIPKIT_HAS_AVX2_PATH
    if (use_avx2()) fn = &lp_forward_avx2<scalar_t>;
#endif
    const scalar_t* xp = x.data_ptr<scalar_t>();
    const scalar_t* wp = w.data_ptr<scalar_t>();
    scalar_t* yp = y.data_ptr<scalar_t>();
    Tiling(x.size(0), M, N, sizeof(scalar_t), 1).run([&](int64_t b0, int64_t b1, int64_t m0, int64_t m1) {
      fn(xp, wp, yp, N, M, p, b0, b1, m0, m1);
    });
  });
  return y;
}

std::tuple<at::Tensor, at::Tensor> lp_dist_backward(const at::Tensor& grad_y, const at::Tensor& x,
                                                    const at::Tensor& w, const at::Tensor& y, double p) {
  auto inv = at::where(y > 0, y.reciprocal(), at::zeros_like(y));  // y == 0: zero gradient
  auto g = grad_y.contiguous();
  auto gx = at::empty_like(x);
  auto gw = at::empty_like(w);
  auto gt = g.t().contiguous(), invt = inv.t().contiguous();
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "lp_dist_backward", [&] {
    phi_sum<scalar_t>(x, w, g, inv, gx, p - 1);
    phi_sum<scalar_t>(w, x, gt, invt, gw, p - 1);
  });
  return {gx, gw};
}

}  // namespace lipkit::kernels::cpu
