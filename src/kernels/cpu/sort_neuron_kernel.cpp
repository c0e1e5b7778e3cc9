// SortNet neuron at evaluation (the deterministic, truncated form): the K largest |x_i - w_i| of
// each (b, m) pair, weighted q (1-q)^k and renormalized to sum 1. A sorted top-K list per pair
// with a threshold test per element (almost every element is rejected by one compare). Also the
// interval bounds over a box, used by certification: order statistics are monotone, so the top-K
// of per-coordinate upper (lower) distances bound the neuron from above (below).

#include <ATen/ATen.h>

#include <algorithm>
#include <cmath>
#include <limits>

#include "kernels/cpu/dist_kernels.h"
#include "kernels/cpu/simd.h"
#include "kernels/cpu/tiling.h"

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

// Top-k over one pair of the values vals(i) (a vector at i) / val1(i) (a scalar). First a cheap
// lower bound of the k-th largest: the k-th largest of the maxima of 2k disjoint blocks (k distinct
// elements are at least that large). Then only lanes at or above it are pushed, by their mask bits,
// so the branchy insertion touches a dozen or so elements instead of every lane of every vector.
template <typename S, typename T, typename Vals, typename Val1>
LIPKIT_INLINE void topk_scan(int64_t N, const Vals& vals, const Val1& val1, TopK<T>& top) {
  using V = typename S::V;
  constexpr int L = S::kLanes;
  const int64_t nv = N / L;
  T floor = -1;
  const int64_t blocks = 2 * top.k;
  if (top.k > 1 && nv >= 2 * blocks) {
    T maxima[2 * kMaxK];
    for (int64_t blk = 0; blk < blocks; ++blk) {
      const int64_t v0 = nv * blk / blocks, v1 = nv * (blk + 1) / blocks;
      V m = vals(v0 * L);
      for (int64_t v = v0 + 1; v < v1; ++v) m = S::max(m, vals(v * L));
      maxima[blk] = S::hmax(m);
    }
    std::nth_element(maxima, maxima + top.k - 1, maxima + blocks, [](T a, T b) { return a > b; });
    floor = std::nextafter(maxima[top.k - 1], T(-1));  // lanes equal to the bound must pass the strict test
  }
  auto push_lanes = [&](const V& d, int64_t i) {
    unsigned bits = S::mask_greater(d, S::set1(std::max(floor, top.val[top.k - 1])));
    while (bits) {
      const int l = __builtin_ctz(bits);
      bits &= bits - 1;
      top.push(d[l], static_cast<int32_t>(i + l));
    }
  };
  int64_t i = 0;
  for (; i + L <= N; i += L) push_lanes(vals(i), i);
  for (; i < N; ++i) top.push(val1(i), static_cast<int32_t>(i));
}

template <typename S, typename T>
LIPKIT_INLINE void scan_pair(const T* xr, const T* wr, int64_t N, TopK<T>& top) {
  topk_scan<S>(
      N, [&](int64_t i) { return S::abs(S::load(xr + i) - S::load(wr + i)); },
      [&](int64_t i) { return std::abs(xr[i] - wr[i]); }, top);
}

// Top-k of the per-coordinate largest and smallest |x_i - w_i| over x_i in [l_i, u_i]; single
// subtractions, so every value is the correctly rounded bound (no drift from a center/radius form).
template <typename S, typename T>
LIPKIT_INLINE void scan_box(const T* lr, const T* ur, const T* wr, int64_t N, TopK<T>& hi, TopK<T>& lo) {
  topk_scan<S>(
      N, [&](int64_t i) { auto w = S::load(wr + i); return S::max(S::load(ur + i) - w, w - S::load(lr + i)); },
      [&](int64_t i) { return std::max(ur[i] - wr[i], wr[i] - lr[i]); }, hi);
  topk_scan<S>(
      N,
      [&](int64_t i) {
        auto w = S::load(wr + i);
        return S::max(S::set1(0), S::max(S::load(lr + i) - w, w - S::load(ur + i)));
      },
      [&](int64_t i) { return std::max({T(0), lr[i] - wr[i], wr[i] - ur[i]}); }, lo);
}

template <typename T>
void scan_pair_portable(const T* xr, const T* wr, int64_t N, TopK<T>& top) { scan_pair<Simd<T, 16>>(xr, wr, N, top); }
template <typename T>
void scan_box_portable(const T* lr, const T* ur, const T* wr, int64_t N, TopK<T>& hi, TopK<T>& lo) {
  scan_box<Simd<T, 16>>(lr, ur, wr, N, hi, lo);
}
#if LIPKIT_HAS_AVX2_PATH
template <typename T>
LIPKIT_TARGET_AVX2 void scan_pair_avx2(const T* xr, const T* wr, int64_t N, TopK<T>& top) {
  scan_pair<Simd<T, 32>>(xr, wr, N, top);
}
template <typename T>
LIPKIT_TARGET_AVX2 void scan_box_avx2(const T* lr, const T* ur, const T* wr, int64_t N, TopK<T>& hi, TopK<T>& lo) {
  scan_box<Simd<T, 32>>(lr, ur, wr, N, hi, lo);
}
#endif

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
    auto scan = &scan_pair_portable<scalar_t>;
#if LIPKIT_HAS_AVX2_PATH
    if (use_avx2()) scan = &scan_pair_avx2<scalar_t>;
#endif
    Tiling(B, M, N, sizeof(scalar_t), 1).run_pairs([&](int64_t b, int64_t m) {
      TopK<scalar_t> top(static_cast<int>(k));
      scan(xp + b * N, wp + m * N, N, top);
      yp[b * M + m] = top.weighted(c.data());
      std::copy(top.id, top.id + k, ip + (b * M + m) * k);
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
    auto scan = &scan_box_portable<scalar_t>;
#if LIPKIT_HAS_AVX2_PATH
    if (use_avx2()) scan = &scan_box_avx2<scalar_t>;
#endif
    Tiling(B, M, N, sizeof(scalar_t), 1).run_pairs([&](int64_t b, int64_t m) {
      TopK<scalar_t> top_hi(static_cast<int>(k)), top_lo(static_cast<int>(k));
      scan(lp + b * N, up + b * N, wp + m * N, N, top_hi, top_lo);
      hi[b * M + m] = top_hi.weighted(c.data());
      lo[b * M + m] = top_lo.weighted(c.data());
    });
  });
  return {ylo, yhi};
}

}  // namespace lipkit::kernels::cpu
