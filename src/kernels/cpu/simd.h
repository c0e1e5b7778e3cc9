#pragma once
// Portable SIMD through GCC/Clang vector extensions: one kernel body is instantiated with 32-byte
// vectors inside functions compiled for AVX2 (target attribute) and with 16-byte vectors for the
// baseline ISA; dispatch picks one at run time. Avx512d gives the float64 convolution a 64-byte body.

#pragma GCC diagnostic ignored "-Wpsabi"  // helpers are always inlined: no vector crosses an ABI edge

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <type_traits>

#define LIPKIT_INLINE inline __attribute__((always_inline))
#if defined(__x86_64__) || defined(__i386__)
#define LIPKIT_HAS_AVX2_PATH 1
#define LIPKIT_TARGET_AVX2 __attribute__((target("avx2,fma")))
#define LIPKIT_TARGET_AVX512 __attribute__((target("avx512f,avx2,fma")))
#include <immintrin.h>
#else
#define LIPKIT_HAS_AVX2_PATH 0
#define LIPKIT_TARGET_AVX2
#endif

namespace lipkit::kernels::cpu {

/// True when the AVX2 path is compiled in, the CPU has AVX2 and FMA, and it is not switched off.
bool use_avx2();
/// True when use_avx2() and the CPU has AVX-512F, and that is not switched off either.
bool use_avx512();

template <typename T, int Bytes>
struct Simd {
  using Int = std::conditional_t<sizeof(T) == 4, int32_t, int64_t>;
  typedef T V __attribute__((vector_size(Bytes)));
  typedef Int I __attribute__((vector_size(Bytes)));
  using Scalar = T;
  static constexpr int kLanes = Bytes / static_cast<int>(sizeof(T));

  static LIPKIT_INLINE V load(const T* p) {
    V v;
    std::memcpy(&v, p, sizeof v);
    return v;
  }
  static LIPKIT_INLINE void store(T* p, V v) { std::memcpy(p, &v, sizeof v); }
  // a - 0 is a for every a: one broadcast (0 + a costs an add, as it turns -0 into +0)
  static LIPKIT_INLINE V set1(T a) { return a - V{}; }
  static LIPKIT_INLINE I iset1(Int a) { return I{} + a; }
  static LIPKIT_INLINE V abs(V v) { return (V)((I)v & iset1(std::numeric_limits<Int>::max())); }
  static LIPKIT_INLINE V max(V a, V b) { return a > b ? a : b; }
  static LIPKIT_INLINE V min(V a, V b) { return a < b ? a : b; }
  /// |mag| with the sign of sgn (mag >= 0)
  static LIPKIT_INLINE V with_sign_of(V mag, V sgn) {
    return (V)((I)mag ^ ((I)sgn & iset1(std::numeric_limits<Int>::min())));
  }
  /// bit l set where lane l of a is greater than lane l of b (movemask on x86)
  static LIPKIT_INLINE unsigned mask_greater(V a, V b) {
#if defined(__x86_64__)
    V m = (V)(a > b);
    if constexpr (Bytes == 32 && sizeof(T) == 4) return static_cast<unsigned>(__builtin_ia32_movmskps256(m));
    if constexpr (Bytes == 32 && sizeof(T) == 8) return static_cast<unsigned>(__builtin_ia32_movmskpd256(m));
    if constexpr (Bytes == 16 && sizeof(T) == 4) return static_cast<unsigned>(__builtin_ia32_movmskps(m));
    if constexpr (Bytes == 16 && sizeof(T) == 8) return static_cast<unsigned>(__builtin_ia32_movmskpd(m));
#endif
    I m2 = a > b;
    unsigned bits = 0;
    for (int l = 0; l < kLanes; ++l) bits |= (m2[l] != 0 ? 1u : 0u) << l;
    return bits;
  }
  static LIPKIT_INLINE T hmax(V v) {
    T m = v[0];
    for (int l = 1; l < kLanes; ++l) m = v[l] > m ? v[l] : m;
    return m;
  }
  static LIPKIT_INLINE T hsum(V v) {
    T s = v[0];
    for (int l = 1; l < kLanes; ++l) s += v[l];
    return s;
  }
};

#if LIPKIT_HAS_AVX2_PATH
/// Simd's load, store, set1 and max for 8 doubles, in intrinsics: GCC builds a 64-byte broadcast
/// written with vector extensions lane by lane (8 inserts), which made a generic 64-byte body slower
/// than the AVX2 one. Only for functions compiled with LIPKIT_TARGET_AVX512. Not always_inline: GCC
/// would refuse that at the generic caller's call, before the caller is inlined into such a function.
struct Avx512d {
  using Scalar = double;
  typedef double V __attribute__((vector_size(64)));
  static constexpr int kLanes = 8;
  static LIPKIT_TARGET_AVX512 V load(const double* p) { return (V)_mm512_loadu_pd(p); }
  static LIPKIT_TARGET_AVX512 void store(double* p, V v) { _mm512_storeu_pd(p, (__m512d)v); }
  static LIPKIT_TARGET_AVX512 V set1(double a) { return (V)_mm512_set1_pd(a); }
  /// a > b ? a : b, as Simd::max (MAXPD returns its second operand on ties and NaN)
  static LIPKIT_TARGET_AVX512 V max(V a, V b) { return (V)_mm512_max_pd((__m512d)a, (__m512d)b); }
};
#endif

/// The base at or below which a^e (0 <= a <= 1, e >= 1) is dropped as 0: tiny^(1/e) with tiny = 2^-100 in
/// float and 2^-1000 in double, so every power and partial product ipow forms stays a normal number.
/// Subnormal arithmetic costs 20x and more on some x86 CPUs (measured: the l_p layer at p = 1000 ran
/// 52 img/s against 1,100 at p = 8); the dropped terms change a sum of terms <= 1 whose largest is 1
/// by at most N * tiny, far below the type's rounding.
template <typename T>
T underflow_cutoff(double e) {
  const double tiny = sizeof(T) == 4 ? 0x1p-100 : 0x1p-1000;
  return e >= 1 ? static_cast<T>(std::pow(tiny, 1.0 / e)) : T(0);
}

/// a where a > c, else 0 (0 is a normal number: the squarings that follow stay fast). Returns false
/// when every lane was dropped: the caller can skip the power (at p = 1000 the cutoff is 0.933 of the
/// largest term, so most vectors have nothing left).
template <typename S, int n>
LIPKIT_INLINE bool drop_below(typename S::V (&a)[n], typename S::V c) {
  unsigned any = 0;
  for (int k = 0; k < n; ++k) any |= S::mask_greater(a[k], c);
  if (!any) return false;
  for (int k = 0; k < n; ++k) a[k] = a[k] > c ? a[k] : S::set1(0);
  return true;
}

/// a^e for an integer e >= 0 by repeated squaring, on `n` vectors at once (the bit loop runs once
/// per group, not per vector). e == 0 gives 1 where a > 0 and 0 where a == 0 (d|z|/dz at 0 is 0).
template <typename S, int n>
LIPKIT_INLINE void ipow(typename S::V (&a)[n], uint32_t e) {
  using V = typename S::V;
  V r[n];
  if (e == 0) {
    for (int k = 0; k < n; ++k) a[k] = a[k] > S::set1(0) ? S::set1(1) : S::set1(0);
    return;
  }
  while (!(e & 1u)) {
    for (int k = 0; k < n; ++k) a[k] *= a[k];
    e >>= 1;
  }
  for (int k = 0; k < n; ++k) r[k] = a[k];
  e >>= 1;
  while (e) {
    for (int k = 0; k < n; ++k) a[k] *= a[k];
    if (e & 1u)
      for (int k = 0; k < n; ++k) r[k] *= a[k];
    e >>= 1;
  }
  for (int k = 0; k < n; ++k) a[k] = r[k];
}

}  // namespace lipkit::kernels::cpu
