// l_inf-distance layer on the CPU: y[b, m] = max_i |x[b, i] - w[m, i]|.
// Register tile of 2 x rows by 4 w rows, vectors along i. The arg-max is tracked per vector lane at
// the granularity of a chunk of 16 vectors (one compare and blend per chunk, not per element); the
// winning chunk is rescanned at the end, so the index costs a few percent, and memory stays
// O(B x M): no B x M x N intermediate is ever formed.

#include <ATen/ATen.h>

#include <algorithm>

#include "kernels/cpu/dist_kernels.h"
#include "kernels/cpu/simd.h"
#include "kernels/cpu/tiling.h"

namespace lipkit::kernels::cpu {
namespace {

constexpr int kRows = 2, kCols = 4, kChunk = 16;

template <typename S, bool kIndex, typename T>
LIPKIT_INLINE void linf_block(const T* x, const T* w, T* y, int32_t* idx, int64_t N, int64_t M,
                              int64_t b0, int64_t b1, int64_t m0, int64_t m1) {
  using V = typename S::V;
  using I = typename S::I;
  constexpr int L = S::kLanes;
  const int64_t nv = N / L * L;
  for (int64_t b = b0; b < b1; b += kRows) {
    const T* xr[kRows];
    for (int r = 0; r < kRows; ++r) xr[r] = x + std::min(b + r, b1 - 1) * N;
    for (int64_t m = m0; m < m1; m += kCols) {
      const T* wr[kCols];
      for (int j = 0; j < kCols; ++j) wr[j] = w + std::min(m + j, m1 - 1) * N;
      V run[kRows][kCols];
      I chunk[kRows][kCols];
      for (int r = 0; r < kRows; ++r)
        for (int j = 0; j < kCols; ++j) run[r][j] = S::set1(0), chunk[r][j] = S::iset1(0);
      for (int64_t c = 0; c < nv; c += kChunk * L) {
        const int64_t ce = std::min<int64_t>(nv, c + kChunk * L);
        V acc[kRows][kCols];
        {
          V wv[kCols];
          for (int j = 0; j < kCols; ++j) wv[j] = S::load(wr[j] + c);
          for (int r = 0; r < kRows; ++r) {
            const V xv = S::load(xr[r] + c);
            for (int j = 0; j < kCols; ++j) acc[r][j] = S::abs(xv - wv[j]);
          }
        }
        for (int64_t i = c + L; i < ce; i += L) {
          V wv[kCols];
          for (int j = 0; j < kCols; ++j) wv[j] = S::load(wr[j] + i);
          for (int r = 0; r < kRows; ++r) {
            const V xv = S::load(xr[r] + i);
            for (int j = 0; j < kCols; ++j) acc[r][j] = S::max(acc[r][j], S::abs(xv - wv[j]));
          }
        }
        for (int r = 0; r < kRows; ++r)
          for (int j = 0; j < kCols; ++j) {
            if (kIndex) chunk[r][j] = acc[r][j] > run[r][j] ? S::iset1(c) : chunk[r][j];
            run[r][j] = S::max(run[r][j], acc[r][j]);
          }
      }
      for (int r = 0; r < kRows && b + r < b1; ++r) {
        for (int j = 0; j < kCols && m + j < m1; ++j) {
          const T* xp = xr[r];
          const T* wp = wr[j];
          T best = nv > 0 ? S::hmax(run[r][j]) : T(-1);
          int64_t arg = -1;
          if (kIndex && nv > 0) {
            int64_t c0 = nv;  // earliest chunk where a lane reached the maximum
            for (int l = 0; l < L; ++l)
              if (run[r][j][l] == best) c0 = std::min<int64_t>(c0, chunk[r][j][l]);
            const int64_t ce = std::min<int64_t>(nv, c0 + kChunk * L);
            for (int l = 0; l < L; ++l) {  // only the lanes holding the maximum, one element per vector
              if (!(run[r][j][l] == best && chunk[r][j][l] == c0)) continue;
              for (int64_t i = c0 + l; i < ce && (arg < 0 || i < arg); i += L)
                if (std::abs(xp[i] - wp[i]) == best) {
                  arg = i;
                  break;
                }
            }
          }
          for (int64_t i = nv; i < N; ++i) {  // the tail shorter than a vector
            const T d = std::abs(xp[i] - wp[i]);
            if (d > best) best = d, arg = i;
          }
          y[(b + r) * M + m + j] = best;
          if (kIndex) idx[(b + r) * M + m + j] = static_cast<int32_t>(arg);
        }
      }
    }
  }
}

template <typename T, bool kIndex>
void linf_forward_portable(const T* x, const T* w, T* y, int32_t* idx, int64_t N, int64_t M,
                           int64_t b0, int64_t b1, int64_t m0, int64_t m1) {
  linf_block<Simd<T, 16>, kIndex>(x, w, y, idx, N, M, b0, b1, m0, m1);
}

#if LIPKIT_HAS_AVX2_PATH
template <typename T, bool kIndex>
LIPKIT_TARGET_AVX2 void linf_forward_avx2(const T* x, const T* w, T* y, int32_t* idx, int64_t N,
                                          int64_t M, int64_t b0, int64_t b1, int64_t m0, int64_t m1) {
  linf_block<Simd<T, 32>, kIndex>(x, w, y, idx, N, M, b0, b1, m0, m1);
}
#endif

template <typename T, bool kIndex>
void linf_forward_typed(const at::Tensor& x, const at::Tensor& w, at::Tensor& y, at::Tensor& idx) {
  const int64_t B = x.size(0), N = x.size(1), M = w.size(0);
  const T* xp = x.data_ptr<T>();
  const T* wp = w.data_ptr<T>();
  T* yp = y.data_ptr<T>();
  int32_t* ip = kIndex ? idx.data_ptr<int32_t>() : nullptr;
  auto fn = &linf_forward_portable<T, kIndex>;
#if LIPKIT_HAS_AVX2_PATH
  if (use_avx2()) fn = &linf_forward_avx2<T, kIndex>;
#endif
  Tiling(B, M, N, sizeof(T), kCols).run([&](int64_t b0, int64_t b1, int64_t m0, int64_t m1) {
    fn(xp, wp, yp, ip, N, M, b0, b1, m0, m1);
  });
}

template <typename T>
void linf_backward_typed(const at::Tensor& g, const at::Tensor& x, const at::Tensor& w,
                         const at::Tensor& idx, at::Tensor& gx, at::Tensor& gw) {
  const int64_t B = x.size(0), N = x.size(1), M = w.size(0);
  const T* gp = g.data_ptr<T>();
  const T* xp = x.data_ptr<T>();
  const T* wp = w.data_ptr<T>();
  const int32_t* ip = idx.data_ptr<int32_t>();
  auto sign = [](T d) { return T((d > 0) - (d < 0)); };  // 0 at a tie of x and w, as d|z|/dz in torch
  if (gx.defined()) {
    T* out = gx.data_ptr<T>();
    at::parallel_for(0, B, 16, [&](int64_t b0, int64_t b1) {
      for (int64_t b = b0; b < b1; ++b)
        for (int64_t m = 0; m < M; ++m) {
          const int64_t i = ip[b * M + m];
          out[b * N + i] += gp[b * M + m] * sign(xp[b * N + i] - wp[m * N + i]);
        }
    });
  }
  if (gw.defined()) {
    T* out = gw.data_ptr<T>();
    at::parallel_for(0, M, 16, [&](int64_t m0, int64_t m1) {
      for (int64_t m = m0; m < m1; ++m)
        for (int64_t b = 0; b < B; ++b) {
          const int64_t i = ip[b * M + m];
          out[m * N + i] -= gp[b * M + m] * sign(xp[b * N + i] - wp[m * N + i]);
        }
    });
  }
}

}  // namespace

std::tuple<at::Tensor, at::Tensor> linf_dist_forward(const at::Tensor& x, const at::Tensor& w,
                                                     bool with_index) {
  auto y = at::empty({x.size(0), w.size(0)}, x.options());
  at::Tensor idx;
  if (with_index) idx = at::empty({x.size(0), w.size(0)}, x.options().dtype(at::kInt));
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "linf_dist_forward", [&] {
    if (with_index)
      linf_forward_typed<scalar_t, true>(x, w, y, idx);
    else
      linf_forward_typed<scalar_t, false>(x, w, y, idx);
  });
  return {y, idx};
}

std::tuple<at::Tensor, at::Tensor> linf_dist_backward(const at::Tensor& grad_y, const at::Tensor& x,
                                                      const at::Tensor& w, const at::Tensor& index) {
  auto gx = at::zeros_like(x);
  auto gw = at::zeros_like(w);
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "linf_dist_backward",
                             [&] { linf_backward_typed<scalar_t>(grad_y, x, w, index, gx, gw); });
  return {gx, gw};
}

}  // namespace lipkit::kernels::cpu
