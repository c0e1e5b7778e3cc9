#include "lipkit/runtime.h"

#include <fstream>
#include <string>

#include <ATen/Parallel.h>
#include <torch/cuda.h>
#include <c10/util/Exception.h>

#include <cstdio>
#include <unistd.h>

#include <cstdlib>
#if defined(__GLIBC__)
#include <malloc.h>
#endif
#include <string>
#include <thread>

namespace lipkit {

namespace {
int env_int(const char* name) {
  const char* v = std::getenv(name);
  if (v == nullptr || *v == '\0') return 0;
  try {
    return std::stoi(v);
  } catch (...) {
    return 0;
  }
}
}  // namespace

int configure_threads(int n) {
  if (n <= 0) n = env_int("LIPKIT_NUM_THREADS");
  if (n <= 0) n = env_int("OMP_NUM_THREADS");
  if (n <= 0) n = static_cast<int>(std::thread::hardware_concurrency());
  if (n <= 0) n = 1;
  at::set_num_threads(n);
  return at::get_num_threads();
}

c10::Device parse_device(const std::string& spec) {
  c10::optional<c10::Device> d;
  try {
    d = c10::Device(spec);
  } catch (const c10::Error&) {
  }
  TORCH_CHECK(d && (d->is_cpu() || d->is_cuda()) && !(d->is_cpu() && d->has_index() && d->index() != 0),
              "device '", spec, "' is not one lipkit runs on: use cpu, cuda or cuda:N");
  if (d->is_cpu()) return c10::Device(c10::kCPU);
  const auto n = static_cast<int64_t>(torch::cuda::device_count());
  TORCH_CHECK(n > 0, "device '", spec, "': this LibTorch has no CUDA or no CUDA GPU is visible (Debian's libtorch-dev "
              "is CPU-only; build lipkit against an official CUDA LibTorch with CMAKE_PREFIX_PATH, docs/distributed.md)");
  TORCH_CHECK(!d->has_index() || d->index() < n, "device '", spec, "': this machine has ", n,
              " CUDA device(s), cuda:0 to cuda:", n - 1);
  return *d;
}

void exec_with_short_openmp_spin(char** argv) {
  if (std::getenv("OMP_WAIT_POLICY") != nullptr || std::getenv("GOMP_SPINCOUNT") != nullptr) return;
  ::setenv("GOMP_SPINCOUNT", "1000", 1);
  ::execv("/proc/self/exe", argv);  // returns only on failure: then run on with the default policy
}

void configure_allocator() {
#if defined(__GLIBC__)
  mallopt(M_MMAP_THRESHOLD, 1 << 30);
  mallopt(M_TRIM_THRESHOLD, 1 << 30);
#endif
}

void reset_peak_rss() { std::ofstream("/proc/self/clear_refs") << "5"; }

double peak_rss_mb() {
  std::ifstream status("/proc/self/status");
  std::string key;
  while (status >> key) {
    if (key == "VmHWM:") {
      double kb = 0;
      status >> kb;
      return kb / 1024.0;
    }
    std::getline(status, key);
  }
  return 0.0;
}

void write_atomically(const std::string& path, const std::function<void(const std::string& tmp)>& write) {
  const std::string tmp = path + ".tmp." + std::to_string(::getpid());
  try {
    write(tmp);
  } catch (...) {
    std::remove(tmp.c_str());
    throw;
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    std::remove(tmp.c_str());
    TORCH_CHECK(false, path, ": cannot move the written file into place (rename from ", tmp, " failed)");
  }
}

}  // namespace lipkit
