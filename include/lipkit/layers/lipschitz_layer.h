#pragma once
// The contract every lipkit layer states: in which norm it is Lipschitz, and with what constant.

#include <torch/types.h>
#include <torch/utils.h>

#include <limits>
#include <string>
#include <vector>

namespace lipkit {

/// The norm a Lipschitz guarantee is stated in (same norm on input and output).
enum class Norm { L2, Linf };

std::string to_string(Norm norm);

/// "l2" or "linf" (the names configs, the CLI and reports use). throws: c10::Error naming the text.
Norm parse_norm(const std::string& name);

/// Mixin implemented by every lipkit module next to torch::nn::Cloneable.
///
/// ensures: in eval mode, ||f(x) - f(y)|| <= lipschitz_bound(norm) * ||x - y|| for all x, y
///          (up to floating-point rounding). A bound of infinity means "no guarantee in this norm".
class LipschitzLayer {
 public:
  virtual ~LipschitzLayer() = default;
  /// Proven upper bound of the layer's Lipschitz constant in `norm`, in eval mode.
  virtual double lipschitz_bound(Norm norm) const = 0;
};

constexpr double kNoBound = std::numeric_limits<double>::infinity();

/// Makes every lipkit layer recompute its eval-mode caches (proven bounds, folded weights) on next use.
/// Caches are keyed on autograd's version counter, which a write through `weight.data()` or a
/// detached alias does not bump: every certifying entry point (certified_radius, interval_certified,
/// attack_and_check, certify, model_bound, upper_bound) calls this first, so such writes are seen.
/// Call it yourself after such a write if you use the layers' plain eval forward as a certificate.
void invalidate_eval_caches();

namespace detail {

/// Throws a c10::Error naming `layer`, unless x has rank `rank` (rank < 0: any rank >= 2), size `channels` in dim 1
/// (skipped when channels < 0) and the dtype of `like`. `shape` is the expected shape in words,
/// e.g. "(N, 32, H, W)".
void check_input(const torch::Tensor& x, const char* layer, int64_t rank, int64_t channels,
                 const torch::Tensor& like, const char* shape);

/// Key that changes whenever one of the tensors is replaced or modified in place through autograd
/// (optimizer step, load, copy_, ->to()) or invalidate_eval_caches() is called.
struct VersionKey {
  std::vector<const void*> impls;
  std::vector<uint32_t> versions;
  std::vector<int64_t> extra;
  bool operator==(const VersionKey& o) const {
    return impls == o.impls && versions == o.versions && extra == o.extra;
  }
};
VersionKey version_key(std::initializer_list<torch::Tensor> tensors,
                       std::vector<int64_t> extra = {});

/// An eval-mode bound recomputed only when its key changes (weights updated, loaded, moved, or
/// another input size).
class CachedBound {
 public:
  template <typename Compute>
  double get(VersionKey key, Compute&& compute) {
    if (!(key == key_)) {
      value_ = compute();
      key_ = std::move(key);
    }
    return value_;
  }

 private:
  VersionKey key_;
  double value_ = 0.0;
};

/// True when a cached eval-mode quantity may be used: eval mode and no gradient to the weights wanted.
bool can_use_eval_cache(bool is_training, const torch::Tensor& weight);

/// An eval-mode tensor (folded weights, T^-1) kept while its key stays the same; computed afresh,
/// with autograd, whenever can_use_eval_cache(is_training, weight) is false.
class CachedTensor {
 public:
  template <typename Compute>
  torch::Tensor get(bool is_training, const torch::Tensor& weight, VersionKey key, Compute&& compute) {
    if (!can_use_eval_cache(is_training, weight)) return compute();
    if (!(key == key_)) {
      torch::NoGradGuard no_grad;
      value_ = compute();
      key_ = std::move(key);
    }
    return value_;
  }

 private:
  VersionKey key_;
  torch::Tensor value_;
};

}  // namespace detail
}  // namespace lipkit
