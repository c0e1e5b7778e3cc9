#pragma once
// Process-wide runtime settings.

namespace lipkit {

/// Sets LibTorch's intra-op thread count. n <= 0 means: LIPKIT_NUM_THREADS if set, else
/// OMP_NUM_THREADS if set, else every core of the machine (LibTorch itself starts with 1 here).
/// Returns the number of threads in effect.
int configure_threads(int n = 0);

}  // namespace lipkit
