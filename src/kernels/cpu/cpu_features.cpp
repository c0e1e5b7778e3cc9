// Run-time choice between the AVX2 and the portable kernel bodies.

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
std::atomic<bool> g_allowed{true};
}  // namespace

bool avx2_available() {
  static const bool has = detected();
  return has;
}

bool set_avx2_enabled(bool enabled) { return g_allowed.exchange(enabled); }

namespace cpu {
bool use_avx2() { return g_allowed.load(std::memory_order_relaxed) && avx2_available(); }
}  // namespace cpu

}  // namespace lipkit::kernels
