#include "kernels/cpu/conv2d_kernel.h"

#include <ATen/Parallel.h>
#include <ATen/ops/empty.h>

#include <algorithm>

#include "kernels/cpu/simd.h"

namespace lipkit::kernels::cpu {

namespace {

struct Shape {
  int64_t ci, hp, wp, co, k, ho, wo;
};

// Output row (n, i) of channels [co0, co0 + CB): CB x 2 vector accumulators (CB <= 5: 10 of the 16
// AVX2 registers) stay in registers while
// the loop runs over every (ci, a, c) tap, each input vector loaded once for CB channels.
template <typename T, int Bytes, int CB>
LIPKIT_INLINE void row_block(const T* xpad, const T* w, const T* bias, T* out, const Shape& s, int64_t co0,
                             int64_t n, int64_t i) {
  using S = Simd<T, Bytes>;
  using V = typename S::V;
  constexpr int L = S::kLanes;
  const int64_t taps = s.ci * s.k * s.k;
  int64_t j = 0;
  for (; j + 2 * L <= s.wo; j += 2 * L) {
    V acc[CB][2];
    for (int q = 0; q < CB; ++q) acc[q][0] = acc[q][1] = S::set1(bias ? bias[co0 + q] : T(0));
    for (int64_t ci = 0; ci < s.ci; ++ci)
      for (int64_t a = 0; a < s.k; ++a) {
        const T* xr = xpad + ((n * s.ci + ci) * s.hp + i + a) * s.wp + j;
        const T* wr = w + co0 * taps + (ci * s.k + a) * s.k;
        for (int64_t c = 0; c < s.k; ++c) {
          const V x0 = S::load(xr + c), x1 = S::load(xr + c + L);
          for (int q = 0; q < CB; ++q) {
            const V wv = S::set1(wr[q * taps + c]);
            acc[q][0] += wv * x0;
            acc[q][1] += wv * x1;
          }
        }
      }
    for (int q = 0; q < CB; ++q) {
      T* o = out + ((n * s.co + co0 + q) * s.ho + i) * s.wo + j;
      S::store(o, acc[q][0]);
      S::store(o + L, acc[q][1]);
    }
  }
  for (; j < s.wo; ++j)  // the columns left over after whole vector pairs
    for (int q = 0; q < CB; ++q) {
      T sum = bias ? bias[co0 + q] : T(0);
      for (int64_t ci = 0; ci < s.ci; ++ci)
        for (int64_t a = 0; a < s.k; ++a)
          for (int64_t c = 0; c < s.k; ++c)
            sum += w[(co0 + q) * taps + (ci * s.k + a) * s.k + c] * xpad[((n * s.ci + ci) * s.hp + i + a) * s.wp + j + c];
      out[((n * s.co + co0 + q) * s.ho + i) * s.wo + j] = sum;
    }
}

template <typename T, int Bytes>
LIPKIT_INLINE void rows_body(const T* xpad, const T* w, const T* bias, T* out, const Shape& s, int64_t r0, int64_t r1) {
  for (int64_t r = r0; r < r1; ++r) {
    const int64_t n = r / s.ho, i = r % s.ho;
    int64_t co = 0;
    if (s.co % 5 == 0)  // the presets' hidden widths (5, 30, 45, 60): no tail
      for (; co < s.co; co += 5) row_block<T, Bytes, 5>(xpad, w, bias, out, s, co, n, i);
    for (; co + 4 <= s.co; co += 4) row_block<T, Bytes, 4>(xpad, w, bias, out, s, co, n, i);
    for (; co < s.co; ++co) row_block<T, Bytes, 1>(xpad, w, bias, out, s, co, n, i);
  }
}

template <typename T>
LIPKIT_TARGET_AVX2 void rows_avx2(const T* xpad, const T* w, const T* bias, T* out, const Shape& s, int64_t r0,
                                  int64_t r1) {
  rows_body<T, 32>(xpad, w, bias, out, s, r0, r1);
}

template <typename T>
void rows_portable(const T* xpad, const T* w, const T* bias, T* out, const Shape& s, int64_t r0, int64_t r1) {
  rows_body<T, 16>(xpad, w, bias, out, s, r0, r1);
}

}  // namespace

at::Tensor conv2d_direct_forward(const at::Tensor& xpad, const at::Tensor& w, const at::Tensor& bias) {
  const Shape s{xpad.size(1), xpad.size(2), xpad.size(3), w.size(0), w.size(2),
                xpad.size(2) - w.size(2) + 1, xpad.size(3) - w.size(2) + 1};
  auto out = at::empty({xpad.size(0), s.co, s.ho, s.wo}, xpad.options());
  const double* x = xpad.data_ptr<double>();
  const double* wp = w.data_ptr<double>();
  const double* b = bias.defined() ? bias.data_ptr<double>() : nullptr;
  double* o = out.data_ptr<double>();
  const bool avx2 = use_avx2();
  at::parallel_for(0, xpad.size(0) * s.ho, 1, [&](int64_t r0, int64_t r1) {
    if (avx2) rows_avx2<double>(x, wp, b, o, s, r0, r1);
    else rows_portable<double>(x, wp, b, o, s, r0, r1);
  });
  return out;
}

}  // namespace lipkit::kernels::cpu
