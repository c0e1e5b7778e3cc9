#pragma once
// Process-wide runtime settings.

#include <c10/core/Device.h>

#include <functional>
#include <string>

namespace lipkit {

/// Sets LibTorch's intra-op thread count. n <= 0 means: LIPKIT_NUM_THREADS if set, else
/// OMP_NUM_THREADS if set, else every core of the machine (LibTorch itself starts with 1 here).
/// Returns the number of threads in effect.
int configure_threads(int n = 0);

/// The device named by `spec`: "cpu", "cuda" (the current CUDA device; in a distributed run,
/// cuda:LOCAL_RANK) or "cuda:N". throws: c10::Error naming `spec` when it is not one of those, when
/// this LibTorch has no CUDA or no GPU is visible (Debian's libtorch-dev is CPU-only), or when N is
/// not below the number of CUDA devices.
c10::Device parse_device(const std::string& spec);

/// Re-executes this program (argv, through /proc/self/exe) with GOMP_SPINCOUNT=1000 unless the
/// environment already sets GOMP_SPINCOUNT or OMP_WAIT_POLICY: OpenMP (libgomp) reads it once, when it
/// loads, so it cannot be changed later in the process. By default an idle OpenMP thread spins 300,000
/// times before it sleeps, and two jobs that each use every core spin on each other's cores: measured
/// on 2 cores, two concurrent cpl-s trainings ran at 29% of a solo run each by default and at 53-54%
/// with 1000 spins, a solo run unchanged (139 vs 142 img/s) and aol-s certification too (9.4-9.7 s vs
/// 9.9 s), where a fully passive policy (no spinning) cost 70%. Returns only when it did not re-execute.
void exec_with_short_openmp_spin(char** argv);

/// Keeps large freed blocks in the heap for reuse (glibc: mmap threshold and trim threshold raised to
/// 1 GiB). By default every tensor above 32 MiB is a fresh mmap, and each op on it pays page faults:
/// measured here, an elementwise op on a 63 MB tensor took 34 ms instead of 4, and a CPL-M training
/// step at batch 256 ran 1.6x slower. No-op on other C libraries.
void configure_allocator();

/// Writes `path` atomically: write(tmp) fills a temporary file beside it, renamed over `path` only
/// when write returns; when it throws, the temporary is removed and `path` is untouched. Never a
/// half-written file under `path` (checkpoints, reports, plots, predictions, exports).
/// throws: c10::Error naming `path` when the rename fails.
void write_atomically(const std::string& path, const std::function<void(const std::string& tmp)>& write);

/// The process's resident-set peak (VmHWM) in MB, and its reset (Linux /proc; 0 and a no-op elsewhere):
/// how the benchmarks measure the peak memory of one phase.
double peak_rss_mb();
void reset_peak_rss();

}  // namespace lipkit
