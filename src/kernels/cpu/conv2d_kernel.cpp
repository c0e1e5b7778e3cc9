#include "kernels/cpu/conv2d_kernel.h"

#include <ATen/Parallel.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/empty_like.h>

#include <algorithm>
#include <memory>

#include "kernels/cpu/simd.h"

namespace lipkit::kernels::cpu {

namespace {

struct Shape {
  int64_t n, ci, h, w, co, k, p, ho, wo;
  int64_t taps() const { return ci * k * k; }
};

// Input rows [r0, r0 + rows) of image n, every channel, zero-padded into `stripe` (rows `sw` long,
// channels `rows * sw` apart): the row kernel's loads stay inside it, so it has no border cases and x
// needs no padded copy. Filled once per image and chunk: each input row is copied once, not k times.
template <typename T>
void fill_stripe(const T* x, const Shape& s, int64_t n, int64_t r0, int64_t rows, int64_t sw, T* stripe) {
  for (int64_t ci = 0; ci < s.ci; ++ci)
    for (int64_t t = 0; t < rows; ++t) {
      T* dst = stripe + (ci * rows + t) * sw;
      const int64_t r = r0 + t;
      std::fill(dst, dst + sw, T(0));  // the whole row: no border can be left unwritten
      if (r >= 0 && r < s.h) std::copy_n(x + ((n * s.ci + ci) * s.h + r) * s.w, s.w, dst + s.p);
    }
}

// Output channels [co0, co0 + CB) at columns [j, j + NV lanes): CB x NV accumulators stay in registers
// over every (ci, a, c) tap, each input vector loaded once for CB channels. K > 0: the kernel side
// known at compile time (the inner loop unrolled); K = 0: s.k.
template <typename S, int CB, int NV, int K, typename T = typename S::Scalar>
LIPKIT_INLINE void block(const T* stripe, int64_t sw, int64_t cs, const T* w, const Shape& s, const ConvEpilogue& e,
                         int64_t co0, int64_t n, int64_t i, int64_t j, T* out) {
  using V = typename S::V;
  constexpr int L = S::kLanes;
  const int64_t k = K > 0 ? K : s.k, taps = s.taps();
  V acc[CB][NV];
  for (int q = 0; q < CB; ++q)
    for (int v = 0; v < NV; ++v) acc[q][v] = S::set1(e.bias ? T(e.bias[co0 + q]) : T(0));
  for (int64_t ci = 0; ci < s.ci; ++ci)
#pragma GCC unroll 3
    for (int64_t a = 0; a < k; ++a) {
      const T* xr = stripe + ci * cs + a * sw + j;
      const T* wr = w + co0 * taps + (ci * k + a) * k;
#pragma GCC unroll 3
      for (int64_t c = 0; c < k; ++c) {
        V xv[NV];
#pragma GCC unroll 8
        for (int v = 0; v < NV; ++v) xv[v] = S::load(xr + c + v * L);
#pragma GCC unroll 8
        for (int q = 0; q < CB; ++q) {
          const V wv = S::set1(wr[q * taps + c]);
#pragma GCC unroll 8
          for (int v = 0; v < NV; ++v) acc[q][v] += wv * xv[v];
        }
      }
    }
  for (int q = 0; q < CB; ++q) {
    const int64_t row = ((n * s.co + co0 + q) * s.ho + i) * s.wo;
    for (int v = 0; v < NV; ++v) {
      V r = acc[q][v];
      if (e.relu) r = S::max(r, S::set1(0));
      if (e.scale) r *= S::set1(T(e.scale[co0 + q]));
      const int64_t col = j + v * L, valid = std::min<int64_t>(L, s.wo - col);
      T lanes[L] = {};
      if (e.residual) {
        const T* base = e.residual + row + col;
        if (valid < L) base = std::copy(base, base + valid, lanes) - valid;
        r = S::load(base) - S::set1(T(e.alpha)) * r;  // alpha 1 or 2: alpha r is exact, one rounding as unfused
      }
      if (valid == L) {
        S::store(out + row + col, r);
        continue;
      }
      S::store(lanes, r);  // the row's last, partial vector
      std::copy(lanes, lanes + valid, out + row + col);
    }
  }
}

// Output channels [co, co + cb) of one output row, column vectors [v, v + NV): cb <= 5 as a template.
template <typename S, int NV, int K, typename T>
LIPKIT_INLINE void channels(int64_t cb, const T* stripe, int64_t sw, int64_t cs, const T* w, const Shape& s,
                            const ConvEpilogue& e, int64_t co, int64_t n, int64_t i, int64_t j, T* out) {
  switch (cb) {
    case 5: block<S, 5, NV, K>(stripe, sw, cs, w, s, e, co, n, i, j, out); break;
    case 4: block<S, 4, NV, K>(stripe, sw, cs, w, s, e, co, n, i, j, out); break;
    case 3: block<S, 3, NV, K>(stripe, sw, cs, w, s, e, co, n, i, j, out); break;
    case 2: block<S, 2, NV, K>(stripe, sw, cs, w, s, e, co, n, i, j, out); break;
    default: block<S, 1, NV, K>(stripe, sw, cs, w, s, e, co, n, i, j, out);
  }
}

// One output row (n, i), every channel: blocks of 5 channels (the presets' widths 5, 30, 45, 60),
// then the rest; NVMAX vectors of columns, then 2 (when NVMAX is 4), then single vectors.
template <typename S, int NVMAX, int K, typename T>
LIPKIT_INLINE void row(const T* stripe, int64_t sw, int64_t cs, const T* w, const Shape& s, const ConvEpilogue& e,
                       int64_t n, int64_t i, T* out) {
  constexpr int L = S::kLanes;
  const int64_t vectors = (s.wo + L - 1) / L;
  for (int64_t co = 0; co < s.co; co += 5) {
    const int64_t cb = std::min<int64_t>(5, s.co - co);
    int64_t v = 0;
    for (; v + NVMAX <= vectors; v += NVMAX) channels<S, NVMAX, K>(cb, stripe, sw, cs, w, s, e, co, n, i, v * L, out);
    if constexpr (NVMAX == 4)
      for (; v + 2 <= vectors; v += 2) channels<S, 2, K>(cb, stripe, sw, cs, w, s, e, co, n, i, v * L, out);
    for (; v < vectors; ++v) channels<S, 1, K>(cb, stripe, sw, cs, w, s, e, co, n, i, v * L, out);
  }
}

// Rows [r0, r1) of the flattened (n, i) range, image by image, with one stripe buffer for the chunk.
template <typename S, int NVMAX, typename T = typename S::Scalar>
LIPKIT_INLINE void rows_body(const T* x, const T* w, const Shape& s, const ConvEpilogue& e, T* out, int64_t r0,
                             int64_t r1) {
  constexpr int L = S::kLanes;
  const int64_t sw = (s.wo + L - 1) / L * L + s.k - 1;
  std::unique_ptr<T[]> stripe(new T[s.ci * (std::min(s.ho, r1 - r0) + s.k - 1) * sw]);  // fill_stripe writes it all
  for (int64_t r = r0; r < r1;) {
    const int64_t n = r / s.ho, i0 = r % s.ho, i1 = std::min(s.ho, i0 + (r1 - r)), rows = i1 - i0 + s.k - 1;
    fill_stripe(x, s, n, i0 - s.p, rows, sw, stripe.get());
    for (int64_t i = i0; i < i1; ++i) {
      const T* at = stripe.get() + (i - i0) * sw;
      if (s.k == 3) row<S, NVMAX, 3>(at, sw, rows * sw, w, s, e, n, i, out);
      else row<S, NVMAX, 0>(at, sw, rows * sw, w, s, e, n, i, out);
    }
    r += i1 - i0;
  }
}

// Register budgets: 5 x 2 accumulators, 2 inputs and a broadcast within 16 ymm (AVX2) or xmm registers;
// 5 x 4 accumulators, 4 inputs and a broadcast within 32 zmm (AVX-512). Every body sums each output in
// the same order, and the AVX-512 and AVX2 bodies both with FMA: they give the same bits.
#if LIPKIT_HAS_AVX2_PATH
LIPKIT_TARGET_AVX512 void rows_avx512(const double* x, const double* w, const Shape& s, const ConvEpilogue& e,
                                      double* out, int64_t r0, int64_t r1) {
  rows_body<Avx512d, 4>(x, w, s, e, out, r0, r1);
}
#endif

template <typename T>
LIPKIT_TARGET_AVX2 void rows_avx2(const T* x, const T* w, const Shape& s, const ConvEpilogue& e, T* out, int64_t r0,
                                  int64_t r1) {
  rows_body<Simd<T, 32>, 2>(x, w, s, e, out, r0, r1);
}

template <typename T>
void rows_portable(const T* x, const T* w, const Shape& s, const ConvEpilogue& e, T* out, int64_t r0, int64_t r1) {
  rows_body<Simd<T, 16>, 2>(x, w, s, e, out, r0, r1);
}

using RowsFn = void (*)(const double*, const double*, const Shape&, const ConvEpilogue&, double*, int64_t, int64_t);
RowsFn rows_fn() {
#if LIPKIT_HAS_AVX2_PATH
  if (use_avx512()) return &rows_avx512;
#endif
  return use_avx2() ? &rows_avx2<double> : &rows_portable<double>;
}

Shape conv_shape(const at::Tensor& x, const at::Tensor& w, int64_t padding) {
  const int64_t k = w.size(2);
  return {x.size(0), x.size(1), x.size(2), x.size(3), w.size(0), k, padding,
          x.size(2) + 2 * padding - k + 1, x.size(3) + 2 * padding - k + 1};
}

}  // namespace

at::Tensor conv2d_direct_forward(const at::Tensor& x, const at::Tensor& w, int64_t padding, const ConvEpilogue& e) {
  const Shape s = conv_shape(x, w, padding);
  auto out = at::empty({s.n, s.co, s.ho, s.wo}, x.options());
  const auto fn = rows_fn();
  const double* xp = x.data_ptr<double>();
  const double* wp = w.data_ptr<double>();
  double* o = out.data_ptr<double>();
  at::parallel_for(0, s.n * s.ho, 1, [&](int64_t r0, int64_t r1) { fn(xp, wp, s, e, o, r0, r1); });
  return out;
}

at::Tensor conv2d_residual_forward(const at::Tensor& x, const at::Tensor& w, const at::Tensor& adjoint_w,
                                   int64_t padding, int64_t adjoint_padding, const ConvEpilogue& hidden, double alpha) {
  Shape one = conv_shape(x, w, padding);  // the first pass on one image; the second maps back to x's shape
  const int64_t n = one.n, hidden_size = one.co * one.ho * one.wo, size = one.ci * one.h * one.w;
  one.n = 1;
  const Shape two{1, one.co, one.ho, one.wo, one.ci, one.k, adjoint_padding, one.h, one.w};
  auto out = at::empty_like(x);
  const auto fn = rows_fn();
  const double* xp = x.data_ptr<double>();
  const double* wp = w.data_ptr<double>();
  const double* ap = adjoint_w.data_ptr<double>();
  double* o = out.data_ptr<double>();
  at::parallel_for(0, n, 1, [&](int64_t n0, int64_t n1) {
    std::unique_ptr<double[]> h(new double[hidden_size]);  // every value written by the first pass
    ConvEpilogue update;
    update.alpha = alpha;
    for (int64_t i = n0; i < n1; ++i) {  // both passes while the image is in cache
      fn(xp + i * size, wp, one, hidden, h.get(), 0, one.ho);
      update.residual = xp + i * size;
      fn(h.get(), ap, two, update, o + i * size, 0, two.ho);
    }
  });
  return out;
}

}  // namespace lipkit::kernels::cpu
