// Run-time choice between the AVX-512, AVX2 and portable kernel bodies.

#include <atomic>

#include "kernels/cpu/simd.h"
#include "lipkit/kernels/dist.h"

namespace lipkit::kernels {
namespace {
bool detected() {
#if LIPKIT_HAS_AVX2_PATH
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#else
  return false;
#endif
}
bool detected_avx512() {
#if LIPKIT_HAS_AVX2_PATH
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx512f");
#else
  return false;
#endif
}
std::atomic<bool> g_allowed{true}, g_allowed_avx512{true};
}  // namespace

bool avx2_available() {
  static const bool has = detected();
  return has;
}

bool set_avx2_enabled(bool enabled) { return g_allowed.exchange(enabled); }

bool avx512_available() {
  static const bool has = detected_avx512();
  return has;
}

bool set_avx512_enabled(bool enabled) { return g_allowed_avx512.exchange(enabled); }

namespace cpu {
bool use_avx2() { return g_allowed.load(std::memory_order_relaxed) && avx2_available(); }
bool use_avx512() { return use_avx2() && g_allowed_avx512.load(std::memory_order_relaxed) && avx512_available(); }
}  // namespace cpu

}  // namespace lipkit::kernels
