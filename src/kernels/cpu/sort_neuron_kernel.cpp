// SortNet neuron at evaluation (the deterministic, truncated form): the K largest |x_i - w_i| of
// each (b, m) pair, weighted q (1-q)^k and renormalized to sum 1. Wide rows take the tiled path
// (block maxima for a tile of pairs, then a rescan of only the blocks that can hold the top K);
// short ones a sorted top-K list per pair with a threshold test per element. Also the interval
// bounds over a box, used by certification: order statistics are monotone, so the top-K of
// per-coordinate upper (lower) distances bound the neuron from above (below).

#include <ATen/ATen.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <memory>
#include <type_traits>
#include <vector>

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

// The element values both paths rank, from rows a and b of the input and w: |x - w| for a pair (a = x,
// b unused); for a box [a, b] = [l, u], the largest (FarEnd) and smallest (NearEnd) |x - w| over x in
// it, each a single subtraction, so every value is the correctly rounded bound (no drift from a
// center/radius form).
struct AbsDiff {
  template <typename S, typename V>
  static LIPKIT_INLINE V vec(V a, V, V w) { return S::abs(a - w); }
  template <typename T>
  static LIPKIT_INLINE T one(T a, T, T w) { return std::abs(a - w); }
};
struct FarEnd {
  template <typename S, typename V>
  static LIPKIT_INLINE V vec(V l, V u, V w) { return S::max(u - w, w - l); }
  template <typename T>
  static LIPKIT_INLINE T one(T l, T u, T w) { return std::max(u - w, w - l); }
};
struct NearEnd {
  template <typename S, typename V>
  static LIPKIT_INLINE V vec(V l, V u, V w) { return S::max(S::set1(0), S::max(l - w, w - u)); }
  template <typename T>
  static LIPKIT_INLINE T one(T l, T u, T w) { return std::max({T(0), l - w, w - u}); }
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

// Top-k of E over one pair: rows a and b of the input, w.
template <typename S, typename E, typename T>
LIPKIT_INLINE void scan_elem(const T* ar, const T* br, const T* wr, int64_t N, TopK<T>& top) {
  topk_scan<S>(
      N, [&](int64_t i) { return E::template vec<S>(S::load(ar + i), S::load(br + i), S::load(wr + i)); },
      [&](int64_t i) { return E::one(ar[i], br[i], wr[i]); }, top);
}

template <typename S, typename T>
LIPKIT_INLINE void scan_pair(const T* xr, const T* wr, int64_t N, TopK<T>& top) {
  scan_elem<S, AbsDiff>(xr, xr, wr, N, top);
}

// Top-k of the per-coordinate largest and smallest |x_i - w_i| over x_i in [l_i, u_i].
template <typename S, typename T>
LIPKIT_INLINE void scan_box(const T* lr, const T* ur, const T* wr, int64_t N, TopK<T>& hi, TopK<T>& lo) {
  scan_elem<S, FarEnd>(lr, ur, wr, N, hi);
  scan_elem<S, NearEnd>(lr, ur, wr, N, lo);
}

// The tiled path for wide rows: (1) block maxima of |x - w| over G disjoint blocks of bs elements,
// for a register tile of kTileRows x rows by kTileVecs vectors of w rows at once (w packed transposed,
// so a lane is a pair); (2) per pair, the k-th largest block maximum, lane by lane: a lower bound of
// the k-th largest element, since k blocks hold at least that much; (3) per pair, rescan only the
// blocks whose maximum reaches it, appending the elements above it without branches, then rank those
// few (about k + 1) by vector compares. Every element at or above the true k-th value is in those
// blocks and is appended in index order, so values, order and tie-broken indices equal the full scan's.
constexpr int kTileRows = 4, kTileVecs = 2, kTilePairs = kTileRows * kTileVecs, kBlocksPerK = 6;

// Per-thread buffers, 64-byte aligned by hand: std::vector<V> drops V's alignment attribute, and
// alignof(V) reads 16 in these baseline-ISA templates even where the AVX2 caller assumes 32.
template <typename T>
struct Scratch {
  std::vector<char> raw;
  T *bm, *top, *val;  // block maxima (G x pairs); the selection network (k x pairs); candidates (N + 2 L + 8)
  int32_t *id, *list;  // candidate positions (N + 2 L + 8); blocks to scan (G8 + 8)
  uint8_t* above;  // per vector of pairs, per block: the lanes whose block maximum reaches their k-th
  int64_t G8;      // G rounded up to 8
  Scratch(int64_t G, int64_t N, int64_t lanes) : G8((G + 7) / 8 * 8) {
    const size_t nb = G * kTilePairs * lanes, nt = kMaxK * kTilePairs * lanes, nv = N + 2 * lanes + 8;
    raw.resize((nb + nt + nv) * sizeof(T) + (nv + G8 + 8) * sizeof(int32_t) + kTilePairs * G8 + 64);
    void* p = raw.data();
    size_t space = raw.size();
    bm = static_cast<T*>(std::align(64, raw.size() - 64, p, space));
    top = bm + nb, val = top + nt;
    id = reinterpret_cast<int32_t*>(val + nv), list = id + nv;
    above = reinterpret_cast<uint8_t*>(list + G8 + 8);
  }
};

template <typename S, typename E, typename T>
LIPKIT_INLINE void block_maxima(const T* const* ar, const T* const* br, const T* panel, int64_t N, int64_t bs,
                                T* bm) {
  using V = typename S::V;
  constexpr int L = S::kLanes, W = kTileVecs * L;
  for (int64_t i0 = 0; i0 < N; i0 += bs, bm += kTilePairs * L) {
    V acc[kTileRows][kTileVecs];
    for (int r = 0; r < kTileRows; ++r)
      for (int c = 0; c < kTileVecs; ++c) acc[r][c] = S::set1(0);
    for (int64_t i = i0; i < std::min(N, i0 + bs); ++i) {
      V wv[kTileVecs];
      for (int c = 0; c < kTileVecs; ++c) wv[c] = S::load(panel + i * W + c * L);
      for (int r = 0; r < kTileRows; ++r) {
        // broadcasts: x - 0 is x, so no add is emitted (0 + x is not, for x = -0)
        const V av = ar[r][i] - V{}, bv = br[r][i] - V{};
        for (int c = 0; c < kTileVecs; ++c) acc[r][c] = S::max(acc[r][c], E::template vec<S>(av, bv, wv[c]));
      }
    }
    for (int r = 0; r < kTileRows; ++r)
      for (int c = 0; c < kTileVecs; ++c) S::store(bm + (r * kTileVecs + c) * L, acc[r][c]);
  }
}

// Lane by lane, the k-th largest of each pair's G block maxima: a sorted insertion network run on
// all vectors of the tile together (independent chains), skipping blocks that beat no current k-th.
template <typename S, typename T>
LIPKIT_INLINE void kth_largest(const T* bm, int64_t G, int k, T* top) {
  using V = typename S::V;
  constexpr int L = S::kLanes;
  for (int t = 0; t < k * kTilePairs; ++t) S::store(top + t * L, S::set1(-1));
  T* last = top + (k - 1) * kTilePairs * L;
  for (int64_t g = 0; g < G; ++g) {
    V d[kTilePairs];
    unsigned any = 0;
    for (int p = 0; p < kTilePairs; ++p) {
      d[p] = S::load(bm + (g * kTilePairs + p) * L);
      any |= S::mask_greater(d[p], S::load(last + p * L));
    }
    if (!any) continue;
    for (int t = 0; t < k; ++t)
      for (int p = 0; p < kTilePairs; ++p) {
        T* slot = top + (t * kTilePairs + p) * L;
        const V r = S::load(slot);
        S::store(slot, S::max(r, d[p]));
        d[p] = S::min(r, d[p]);
      }
  }
}

// The largest value below v >= 0 (v = 0: the negative subnormal): strict tests against it keep v.
template <typename T>
LIPKIT_INLINE T just_below(T v) {
  using U = std::conditional_t<sizeof(T) == 4, uint32_t, uint64_t>;
  if (!(v > 0)) return -std::numeric_limits<T>::denorm_min();
  U bits;
  std::memcpy(&bits, &v, sizeof v);
  --bits;
  std::memcpy(&v, &bits, sizeof v);
  return v;
}

// 8 x 8 table for AVX2's lane permute: entry m lists the set bits of m, in order.
struct PackTable {
  int32_t perm[256][8];
  constexpr PackTable() : perm() {
    for (int m = 0; m < 256; ++m) {
      int n = 0;
      for (int l = 0; l < 8; ++l)
        if (m >> l & 1) perm[m][n++] = l;
    }
  }
};
constexpr PackTable kPack{};

// Appends the lanes of d selected by bits, and their positions i + lane, at vals[n], ids[n] without a
// branch; returns the new count. May write up to kLanes entries past it (the buffers have room).
template <typename S, typename T>
LIPKIT_INLINE int append_selected(T* vals, int32_t* ids, typename S::V d, int64_t i, unsigned bits, int n) {
#if defined(__x86_64__)
  if constexpr (S::kLanes == 8 && sizeof(T) == 4) {
    typename S::I perm, pos = {0, 1, 2, 3, 4, 5, 6, 7};
    std::memcpy(&perm, kPack.perm[bits], sizeof perm);
    pos += static_cast<int32_t>(i);
    S::store(vals + n, __builtin_ia32_permvarsf256(d, perm));
    const auto packed = __builtin_ia32_permvarsi256(pos, perm);
    std::memcpy(ids + n, &packed, sizeof packed);
    return n + __builtin_popcount(bits);
  }
#endif
  for (int l = 0; l < S::kLanes; ++l) {
    vals[n] = d[l];
    ids[n] = static_cast<int32_t>(i + l);
    n += (bits >> l) & 1;
  }
  return n;
}

// The k largest of n candidates given in index order, sorted, ties by lower index, into top: each
// candidate's rank is counted with vector compares (no data-dependent branch). Many candidates (ties
// at the floor) take the sorted insertion instead.
template <typename S, typename T>
LIPKIT_INLINE void select_top(T* val, const int32_t* id, int n, TopK<T>& top) {
  constexpr int L = S::kLanes;
  if (n > 4 * kMaxK) {
    for (int j = 0; j < n; ++j) top.push(val[j], id[j]);
    return;
  }
  for (int q = n; q < std::max(n, L) + L; ++q) val[q] = T(-2);  // below every |x - w|: pads the vectors read
  if (n <= 2 * L) {  // the usual case (about k + 1 candidates): both vectors stay in registers
    const auto u0 = S::load(val), u1 = S::load(val + L);
    for (int j = 0; j < n; ++j) {
      const auto v = S::set1(val[j]);
      const unsigned before = (1u << j) - 1;
      const unsigned ge = ~(S::mask_greater(v, u0) | S::mask_greater(v, u1) << L);
      const unsigned gt = S::mask_greater(u0, v) | S::mask_greater(u1, v) << L;
      const int rank = __builtin_popcount((ge & before) | (gt & ~before));
      if (rank < top.k) top.val[rank] = val[j], top.id[rank] = id[j];
    }
    return;
  }
  for (int j = 0; j < n; ++j) {
    const auto v = S::set1(val[j]);
    int rank = 0;
    for (int q = 0; q < n; q += L) {
      const auto u = S::load(val + q);
      // before j: the ones >= v rank above it; after j: the ones > v
      const int ahead = std::min(std::max(j - q, 0), L);  // lanes of this vector before j
      const unsigned before = (1u << ahead) - 1;
      const unsigned above = (~S::mask_greater(v, u) & before) | (S::mask_greater(u, v) & ~before);
      rank += __builtin_popcount(above & ((1u << L) - 1));
    }
    if (rank < top.k) top.val[rank] = val[j], top.id[rank] = id[j];
  }
}

// Appends the elements of block g above floor (f: floor in every lane); returns the new count.
template <typename S, typename E, typename T>
LIPKIT_INLINE int scan_block(const T* ap, const T* bp, const T* wp, int64_t N, int64_t bs, int64_t g,
                             typename S::V f, T floor, Scratch<T>& s, int n) {
  constexpr int L = S::kLanes;
  const int64_t i0 = g * bs, i1 = std::min(N, i0 + bs);
  int64_t i = i0;
  for (; i + L <= i1; i += L) {
    const auto d = E::template vec<S>(S::load(ap + i), S::load(bp + i), S::load(wp + i));
    n = append_selected<S>(s.val, s.id, d, i, S::mask_greater(d, f), n);
  }
  for (; i < i1; ++i) {
    s.val[n] = E::one(ap[i], bp[i], wp[i]);
    s.id[n] = static_cast<int32_t>(i);
    n += s.val[n] > floor;
  }
  return n;
}

// Per vector p of the tile and block g, the lanes whose block maximum is at least their k-th largest
// (above[p * G8 + g], bit l for lane l); the rest of G8 is 0.
template <typename S, typename T>
LIPKIT_INLINE void mark_blocks(const T* bm, const T* kth, int64_t G, Scratch<T>& s) {
  constexpr int L = S::kLanes;
  std::fill(s.above, s.above + kTilePairs * s.G8, uint8_t{0});
  for (int64_t g = 0; g < G; ++g)
    for (int p = 0; p < kTilePairs; ++p)
      s.above[p * s.G8 + g] = static_cast<uint8_t>(
          ~S::mask_greater(S::load(kth + p * L), S::load(bm + (g * kTilePairs + p) * L)) & ((1u << L) - 1));
}

// Top-k of the pair in lane l of vector p from the blocks marked for it, whose elements above floor
// (a lower bound of its k-th largest) are the candidates.
template <typename S, typename E, typename T>
LIPKIT_INLINE void scan_blocks(const T* ap, const T* bp, const T* wp, int64_t N, int64_t bs, const uint8_t* above,
                               int l, T floor, Scratch<T>& s, TopK<T>& top) {
  // the list of marked blocks, built without a data-dependent branch (a mispredicted exit per word of
  // blocks would also discard the loads in flight)
  int nb = 0;
  for (int64_t g0 = 0; g0 < s.G8; g0 += 8) {
    uint64_t bytes;
    std::memcpy(&bytes, above + g0, 8);
    // bit l of 8 bytes gathered into one byte, bit j for block g0 + j
    const unsigned marked = (((bytes >> l) & 0x0101010101010101ull) * 0x0102040810204080ull) >> 56;
    for (int t = 0; t < 8; ++t) s.list[nb + t] = kPack.perm[marked][t] + static_cast<int32_t>(g0);
    nb += __builtin_popcount(marked);
  }
  int n = 0;
  const auto f = S::set1(floor);
  for (int j = 0; j < nb; ++j) n = scan_block<S, E>(ap, bp, wp, N, bs, s.list[j], f, floor, s, n);
  select_top<S>(s.val, s.id, n, top);
}

struct SortOut {
  const double* c;
  int64_t M;
  int k;
  void* y;
  int32_t* idx;  // null: values only
};

// One tile: input rows b.. (of a and b, clamped to b1), w rows m.. (the panel of wt holding them,
// N x tile, packed).
template <typename S, typename E, typename T>
LIPKIT_INLINE void sort_tile(const T* in_a, const T* in_b, const T* w, const T* wt, int64_t N, int64_t bs,
                             int64_t b, int64_t b1, int64_t m, int64_t m1, Scratch<T>& s, const SortOut& out) {
  constexpr int L = S::kLanes;
  const int64_t G = (N + bs - 1) / bs;
  const T *ar[kTileRows], *br[kTileRows];
  for (int r = 0; r < kTileRows; ++r) {
    const int64_t row = std::min(b + r, b1 - 1) * N;
    ar[r] = in_a + row, br[r] = in_b + row;
  }
  block_maxima<S, E>(ar, br, wt + m * N, N, bs, s.bm);
  kth_largest<S>(s.bm, G, out.k, s.top);
  const T* kth = s.top + (out.k - 1) * kTilePairs * L;
  mark_blocks<S>(s.bm, kth, G, s);
  for (int r = 0; r < kTileRows && b + r < b1; ++r)
    for (int c = 0; c < kTileVecs; ++c)
      for (int l = 0; l < L && m + c * L + l < m1; ++l) {
        const int64_t bb = b + r, mm = m + c * L + l, lane = (r * kTileVecs + c) * L + l;
        TopK<T> top(out.k);
        scan_blocks<S, E>(ar[r], br[r], w + mm * N, N, bs, s.above + (r * kTileVecs + c) * s.G8, l,
                          just_below(kth[lane]), s, top);
        static_cast<T*>(out.y)[bb * out.M + mm] = top.weighted(out.c);
        if (out.idx) std::copy(top.id, top.id + out.k, out.idx + (bb * out.M + mm) * out.k);
      }
}

template <typename S, typename E, typename T>
LIPKIT_INLINE void sort_items(const T* in_a, const T* in_b, const T* w, const T* wt, int64_t N, int64_t bs,
                              int64_t b0, int64_t b1, int64_t m0, int64_t m1, const SortOut& out) {
  Scratch<T> s((N + bs - 1) / bs, N, S::kLanes);
  for (int64_t b = b0; b < b1; b += kTileRows)
    for (int64_t m = m0; m < m1; m += kTileVecs * S::kLanes)
      sort_tile<S, E>(in_a, in_b, w, wt, N, bs, b, b1, m, m1, s, out);
}

template <typename E, typename T>
void sort_items_portable(const T* a, const T* b, const T* w, const T* wt, int64_t N, int64_t bs, int64_t b0,
                         int64_t b1, int64_t m0, int64_t m1, const SortOut& out) {
  sort_items<Simd<T, 16>, E>(a, b, w, wt, N, bs, b0, b1, m0, m1, out);
}
#if LIPKIT_HAS_AVX2_PATH
template <typename E, typename T>
LIPKIT_TARGET_AVX2 void sort_items_avx2(const T* a, const T* b, const T* w, const T* wt, int64_t N, int64_t bs,
                                        int64_t b0, int64_t b1, int64_t m0, int64_t m1, const SortOut& out) {
  sort_items<Simd<T, 32>, E>(a, b, w, wt, N, bs, b0, b1, m0, m1, out);
}
#endif

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

// Block size of the tiled path for rows of N (a multiple of the vector, about kBlocksPerK k blocks),
// or 0 when the rows are too short for at least 2k blocks (then the per-pair scan runs).
inline int64_t tiled_block_size(int64_t N, int64_t k, int64_t L) {
  const int64_t bs = L * std::max<int64_t>(1, (N + L * kBlocksPerK * k - 1) / (L * kBlocksPerK * k));
  return (N + bs - 1) / bs >= 2 * k ? bs : 0;
}

// The SIMD width the tiled path uses for T (its block size and panel width depend on it).
template <typename T>
int64_t tiled_lanes() {
#if LIPKIT_HAS_AVX2_PATH
  if (use_avx2()) return 32 / sizeof(T);
#endif
  return 16 / sizeof(T);
}

// w in panels of kTileVecs vectors of rows (zero rows pad the last), each stored transposed (N x
// panel width): the block maxima read it contiguously. One packing serves every pass over w.
template <typename T>
at::Tensor pack_panels(const at::Tensor& w) {
  const int64_t M = w.size(0), N = w.size(1), tile = kTileVecs * tiled_lanes<T>(), Mp = (M + tile - 1) / tile * tile;
  return at::constant_pad_nd(w, {0, 0, 0, Mp - M}).view({Mp / tile, tile, N}).transpose(1, 2).contiguous();
}

// The tiled path: the top-k of E(a, b, w) for every pair, into out (indices too unless out.idx is
// null); wt = pack_panels<T>(w).
template <typename E, typename T>
void sort_tiled(const at::Tensor& a, const at::Tensor& b, const at::Tensor& w, const at::Tensor& wt, int64_t bs,
                const SortOut& out) {
  const int64_t B = a.size(0), N = a.size(1), M = w.size(0);
  auto items = &sort_items_portable<E, T>;
#if LIPKIT_HAS_AVX2_PATH
  if (use_avx2()) items = &sort_items_avx2<E, T>;
#endif
  const T *ap = a.data_ptr<T>(), *bp = b.data_ptr<T>(), *wp = w.data_ptr<T>(), *wtp = wt.data_ptr<T>();
  Tiling(B, M, N, sizeof(T), kTileVecs * tiled_lanes<T>()).run([&](int64_t b0, int64_t b1, int64_t m0, int64_t m1) {
    items(ap, bp, wp, wtp, N, bs, b0, b1, m0, m1, out);
  });
}

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
    if (const int64_t bs = tiled_block_size(N, k, tiled_lanes<scalar_t>())) {
      sort_tiled<AbsDiff, scalar_t>(x, x, w, pack_panels<scalar_t>(w), bs,
                                    SortOut{c.data(), M, static_cast<int>(k), yp, ip});
      return;
    }
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
    // lower <= upper (the caller's precondition) makes every value >= 0, as the tiled path needs
    if (const int64_t bs = tiled_block_size(N, k, tiled_lanes<scalar_t>())) {
      const auto wt = pack_panels<scalar_t>(w);
      sort_tiled<FarEnd, scalar_t>(lower, upper, w, wt, bs, SortOut{c.data(), M, static_cast<int>(k), hi, nullptr});
      sort_tiled<NearEnd, scalar_t>(lower, upper, w, wt, bs, SortOut{c.data(), M, static_cast<int>(k), lo, nullptr});
      return;
    }
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
