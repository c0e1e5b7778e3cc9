// Linear-spline activation on the CPU: one pass over the tensor, the interval index and the
// interpolation per element (the LibTorch-ops form takes about ten passes and as many temporaries).
// The coefficient gradient is a scatter into per-channel accumulators (in the accumulation type).

#include <ATen/ATen.h>
#include <ATen/AccumulateType.h>
#include <ATen/Parallel.h>

#include <algorithm>
#include <cmath>

#include "kernels/cpu/simd.h"
#include "kernels/cpu/spline_kernel.h"

namespace lipkit::kernels::cpu {
namespace {

constexpr int64_t kGrain = 16384;  // elements per parallel work item

// The interval of u (knot units, knot 0 at 0): floor(u) clamped to [0, K-2], by truncation of the
// clamped value (std::floor is a library call without SSE4.1); NaN goes to 0 and stays NaN in y.
template <typename T>
LIPKIT_INLINE int64_t interval(T u, int64_t last) {
  if (!(u > 0)) return 0;
  return u >= static_cast<T>(last) ? last : static_cast<int64_t>(u);
}

struct Shape {
  int64_t n, c, m, k;
  explicit Shape(const at::Tensor& x, const at::Tensor& a)
      : n(x.size(0)), c(a.size(0)), m(x.numel() / std::max<int64_t>(1, x.size(0) * a.size(0))), k(a.size(1)) {}
};

// One element: the interval i, the weight f of knot i + 1, the value of the spline at s x.
template <typename T>
struct Point {
  int64_t i;
  T f, value;
  LIPKIT_INLINE Point(T x, const T* a, T scale, T inv_grid, T half, int64_t last) {
    const T t = x * scale;
    const T u = t * inv_grid + half;
    i = interval(u, last);
    f = u - static_cast<T>(i);
    value = a[i] + f * (a[i + 1] - a[i]);
  }
};

// The vector form of Point: per lane the interval i, the weight f of knot i + 1, the knot values lo
// and hi, and the lane's scale. kPerLane: lane l of block j belongs to channel j + l (rows of a at
// (j + l) K, scales at j + l), else every lane to the one channel of a and scale.
template <typename S, typename T>
struct Grid {
  using V = typename S::V;
  using I = typename S::I;
  struct Lookup {
    I i;
    V f, lo, hi, sc;
  };
  V inv, half, last, zero;
  int64_t k;
  LIPKIT_INLINE Grid(T inv_grid, T half_, int64_t k_)
      : inv(S::set1(inv_grid)), half(S::set1(half_)), last(S::set1(static_cast<T>(k_ - 2))), zero(S::set1(0)), k(k_) {}
  template <bool kPerLane>
  LIPKIT_INLINE Lookup lookup(V xv, int64_t j, const T* a, const T* scale) const {
    Lookup p;
    p.sc = kPerLane ? S::load(scale + j) : S::set1(scale[0]);
    const V t = xv * p.sc;
    const V u = t * inv + half;
    V c = u > zero ? u : zero;  // NaN -> 0, as interval()
    c = c < last ? c : last;
    p.i = __builtin_convertvector(c, I);
    p.f = u - __builtin_convertvector(p.i, V);
    for (int l = 0; l < S::kLanes; ++l) {
      const T* row = a + (kPerLane ? (j + l) * k : 0);
      p.lo[l] = row[p.i[l]];
      p.hi[l] = row[p.i[l] + 1];
    }
    return p;
  }
};

// y over `len` contiguous elements, vectorized except the two table lookups per element. kPerLane:
// element j belongs to channel j (a holds its row at j K, scale at j; the dense layout), else all
// belong to the one channel of a and scale (the spatial layout). No fused multiply-add, so every
// path rounds as the scalar tail and the LibTorch-ops form do.
template <typename S, typename T, bool kPerLane>
LIPKIT_INLINE void forward_span(const T* x, T* y, int64_t len, const T* a, const T* scale, int64_t k, T inv_grid,
                                T half) {
  constexpr int L = S::kLanes;
  const Grid<S, T> g(inv_grid, half, k);
  int64_t j = 0;
  for (; j + L <= len; j += L) {
    const auto p = g.template lookup<kPerLane>(S::load(x + j), j, a, scale);
    S::store(y + j, (p.lo + p.f * (p.hi - p.lo)) / p.sc);
  }
  for (; j < len; ++j) {
    const T* row = a + (kPerLane ? j * k : 0);
    const T sc = scale[kPerLane ? j : 0];
    y[j] = Point<T>(x[j], row, sc, inv_grid, half, k - 2).value / sc;
  }
}

// Rows [r0, r1) of the forward: a row is one sample's C channels (dense, M = 1) or one (sample,
// channel) pair's M elements.
template <typename S, typename T>
LIPKIT_INLINE void forward_rows(const T* x, const T* a, const T* scale, T* y, const Shape& s, T inv_grid, T half,
                                int64_t r0, int64_t r1) {
  for (int64_t r = r0; r < r1; ++r) {
    if (s.m == 1) {
      forward_span<S, T, true>(x + r * s.c, y + r * s.c, s.c, a, scale, s.k, inv_grid, half);
    } else {
      const int64_t ch = r % s.c;
      forward_span<S, T, false>(x + r * s.m, y + r * s.m, s.m, a + ch * s.k, scale + ch, s.k, inv_grid, half);
    }
  }
}

template <typename T>
void forward_portable(const T* x, const T* a, const T* scale, T* y, const Shape& s, T inv_grid, T half, int64_t r0,
                      int64_t r1) {
  forward_rows<Simd<T, 16>, T>(x, a, scale, y, s, inv_grid, half, r0, r1);
}

#if LIPKIT_HAS_AVX2_PATH
template <typename T>
LIPKIT_TARGET_AVX2 void forward_avx2(const T* x, const T* a, const T* scale, T* y, const Shape& s, T inv_grid, T half,
                                     int64_t r0, int64_t r1) {
  forward_rows<Simd<T, 32>, T>(x, a, scale, y, s, inv_grid, half, r0, r1);
}
#endif

template <typename T>
void forward_impl(const T* x, const T* a, const T* scale, T* y, const Shape& s, double grid) {
  const T inv_grid = static_cast<T>(1.0 / grid), half = static_cast<T>((s.k - 1) / 2.0);
  auto fn = &forward_portable<T>;
#if LIPKIT_HAS_AVX2_PATH
  if (use_avx2()) fn = &forward_avx2<T>;
#endif
  const int64_t rows = s.m == 1 ? s.n : s.n * s.c, per_row = s.m == 1 ? s.c : s.m;
  at::parallel_for(0, rows, std::max<int64_t>(1, kGrain / per_row),
                   [&](int64_t r0, int64_t r1) { fn(x, a, scale, y, s, inv_grid, half, r0, r1); });
}

// The backward over `len` contiguous elements (kPerLane as in forward_span): grad_x written, the
// coefficient and scale gradients added into acc (per channel K + 1 slots: K coefficients, then the
// scale) by a lane loop, the rest vectorized.
template <typename S, typename T, typename Acc, bool kPerLane>
LIPKIT_INLINE void backward_span(const T* gy, const T* x, T* gx, int64_t len, const T* a, const T* scale, Acc* acc,
                                 int64_t k, T inv_grid, T half) {
  using V = typename S::V;
  constexpr int L = S::kLanes;
  const Grid<S, T> g(inv_grid, half, k);
  int64_t j = 0;
  for (; j + L <= len; j += L) {
    const V xv = S::load(x + j);
    const auto p = g.template lookup<kPerLane>(xv, j, a, scale);
    const V sc = p.sc, f = p.f, lo = p.lo, hi = p.hi;
    const auto& i = p.i;
    const V slope = (hi - lo) * g.inv, d = S::load(gy + j);
    S::store(gx + j, d * slope);
    const V w = d / sc, wf = w * f, gs = w * (slope * xv - (lo + f * (hi - lo)) / sc);  // d/ds of S(s x) / s
    const V w0 = w - wf;
    for (int l = 0; l < L; ++l) {
      Acc* row = acc + (kPerLane ? (j + l) * (k + 1) : 0);
      row[i[l]] += static_cast<Acc>(w0[l]);
      row[i[l] + 1] += static_cast<Acc>(wf[l]);
      row[k] += static_cast<Acc>(gs[l]);
    }
  }
  for (; j < len; ++j) {
    const T* row = a + (kPerLane ? j * k : 0);
    Acc* arow = acc + (kPerLane ? j * (k + 1) : 0);
    const T sc = scale[kPerLane ? j : 0];
    const Point<T> p(x[j], row, sc, inv_grid, half, k - 2);
    const T slope = (row[p.i + 1] - row[p.i]) * inv_grid, d = gy[j];
    gx[j] = d * slope;
    const T w = d / sc, wf = w * p.f;
    arow[p.i] += static_cast<Acc>(w - wf);
    arow[p.i + 1] += static_cast<Acc>(wf);
    arow[k] += static_cast<Acc>(w * (slope * x[j] - p.value / sc));
  }
}

// Channels [c0, c1) over samples [n0, n1); acc holds (c1 - c0) x (K + 1) slots.
template <typename S, typename T, typename Acc>
LIPKIT_INLINE void backward_block(const T* gy, const T* x, const T* a, const T* scale, T* gx, const Shape& s,
                                  T inv_grid, T half, int64_t c0, int64_t c1, int64_t n0, int64_t n1, Acc* acc) {
  for (int64_t n = n0; n < n1; ++n) {
    if (s.m == 1) {
      const int64_t o = n * s.c + c0;
      backward_span<S, T, Acc, true>(gy + o, x + o, gx + o, c1 - c0, a + c0 * s.k, scale + c0, acc, s.k, inv_grid,
                                     half);
      continue;
    }
    for (int64_t ch = c0; ch < c1; ++ch) {
      const int64_t o = (n * s.c + ch) * s.m;
      backward_span<S, T, Acc, false>(gy + o, x + o, gx + o, s.m, a + ch * s.k, scale + ch,
                                      acc + (ch - c0) * (s.k + 1), s.k, inv_grid, half);
    }
  }
}

template <typename T, typename Acc>
void backward_portable(const T* gy, const T* x, const T* a, const T* scale, T* gx, const Shape& s, T inv_grid, T half,
                       int64_t c0, int64_t c1, int64_t n0, int64_t n1, Acc* acc) {
  backward_block<Simd<T, 16>, T, Acc>(gy, x, a, scale, gx, s, inv_grid, half, c0, c1, n0, n1, acc);
}

#if LIPKIT_HAS_AVX2_PATH
template <typename T, typename Acc>
LIPKIT_TARGET_AVX2 void backward_avx2(const T* gy, const T* x, const T* a, const T* scale, T* gx, const Shape& s,
                                      T inv_grid, T half, int64_t c0, int64_t c1, int64_t n0, int64_t n1, Acc* acc) {
  backward_block<Simd<T, 32>, T, Acc>(gy, x, a, scale, gx, s, inv_grid, half, c0, c1, n0, n1, acc);
}
#endif

// Work is split by channel (each channel's accumulator owned by one work item: no reduction); with
// fewer than 16 channels the samples are split too, into a number of blocks fixed by the shapes, and
// the blocks' accumulators summed in order: the result does not depend on the thread count.
template <typename T>
void backward_impl(const T* gy, const T* x, const T* a, const T* scale, T* gx, T* ga, T* gs, const Shape& s,
                   double grid) {
  using Acc = at::acc_type<T, /*is_cuda=*/false>;
  const T inv_grid = static_cast<T>(1.0 / grid), half = static_cast<T>((s.k - 1) / 2.0);
  auto fn = &backward_portable<T, Acc>;
#if LIPKIT_HAS_AVX2_PATH
  if (use_avx2()) fn = &backward_avx2<T, Acc>;
#endif
  const int64_t nb = std::min<int64_t>(std::max<int64_t>(1, s.n), std::max<int64_t>(1, 16 / s.c));
  const int64_t per_channel = s.k + 1;
  std::vector<Acc> acc(nb * s.c * per_channel, Acc(0));  // block j of channel c at (c * nb + j) * per_channel
  const int64_t grain = std::max<int64_t>(1, kGrain / std::max<int64_t>(1, s.n / nb * s.m));
  at::parallel_for(0, s.c * nb, nb == 1 ? grain : 1, [&](int64_t t0, int64_t t1) {
    if (nb == 1) return fn(gy, x, a, scale, gx, s, inv_grid, half, t0, t1, 0, s.n, &acc[t0 * per_channel]);
    for (int64_t t = t0; t < t1; ++t) {
      const int64_t ch = t / nb, j = t % nb;
      fn(gy, x, a, scale, gx, s, inv_grid, half, ch, ch + 1, s.n * j / nb, s.n * (j + 1) / nb, &acc[t * per_channel]);
    }
  });
  for (int64_t ch = 0; ch < s.c; ++ch) {
    for (int64_t e = 0; e <= s.k; ++e) {
      Acc total = 0;
      for (int64_t j = 0; j < nb; ++j) total += acc[(ch * nb + j) * per_channel + e];
      (e < s.k ? ga[ch * s.k + e] : gs[ch]) = static_cast<T>(total);
    }
  }
}

}  // namespace

at::Tensor spline_forward(const at::Tensor& x, const at::Tensor& coefficients, const at::Tensor& scale, double grid) {
  auto y = at::empty_like(x);
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "spline_forward", [&] {
    forward_impl<scalar_t>(x.data_ptr<scalar_t>(), coefficients.data_ptr<scalar_t>(), scale.data_ptr<scalar_t>(),
                           y.data_ptr<scalar_t>(), Shape(x, coefficients), grid);
  });
  return y;
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> spline_backward(const at::Tensor& grad_y, const at::Tensor& x,
                                                                const at::Tensor& coefficients,
                                                                const at::Tensor& scale, double grid) {
  auto gx = at::empty_like(x), ga = at::empty_like(coefficients), gs = at::empty_like(scale);
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "spline_backward", [&] {
    backward_impl<scalar_t>(grad_y.data_ptr<scalar_t>(), x.data_ptr<scalar_t>(), coefficients.data_ptr<scalar_t>(),
                            scale.data_ptr<scalar_t>(), gx.data_ptr<scalar_t>(), ga.data_ptr<scalar_t>(),
                            gs.data_ptr<scalar_t>(), Shape(x, coefficients), grid);
  });
  return {gx, ga, gs};
}

}  // namespace lipkit::kernels::cpu
