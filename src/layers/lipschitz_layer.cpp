#include "lipkit/layers/lipschitz_layer.h"

#include <torch/torch.h>

#include <atomic>
#include <sstream>

namespace lipkit {

namespace {
std::atomic<int64_t> cache_generation{0};
}  // namespace

void invalidate_eval_caches() { ++cache_generation; }

std::string to_string(Norm norm) { return norm == Norm::L2 ? "l2" : "linf"; }

Norm parse_norm(const std::string& name) {
  if (name == "l2") return Norm::L2;
  if (name == "linf") return Norm::Linf;
  TORCH_CHECK(false, "norm must be l2 or linf, got '", name, "'");
}

namespace detail {

namespace {
std::string shape_of(const torch::Tensor& x) {
  std::ostringstream s;
  s << x.sizes();
  return s.str();
}
}  // namespace

void check_input(const torch::Tensor& x, const char* layer, int64_t rank, int64_t channels,
                 const torch::Tensor& like, const char* shape) {
  TORCH_CHECK(x.defined(), "lipkit::", layer, ": input tensor is undefined");
  TORCH_CHECK((rank < 0 ? x.dim() >= 2 : x.dim() == rank) && (channels < 0 || x.size(1) == channels), "lipkit::", layer,
              ": expected input of shape ", shape, ", got ", shape_of(x));
  TORCH_CHECK(x.scalar_type() == like.scalar_type(), "lipkit::", layer, ": expected input dtype ",
              like.scalar_type(), " (the layer's dtype), got ", x.scalar_type(),
              "; convert the input or call ->to(dtype) on the model");
  TORCH_CHECK(x.device() == like.device(), "lipkit::", layer, ": input is on ", x.device(),
              " but the layer is on ", like.device());
}

VersionKey version_key(std::initializer_list<torch::Tensor> tensors, std::vector<int64_t> extra) {
  VersionKey k;
  for (const auto& t : tensors) {
    k.impls.push_back(t.unsafeGetTensorImpl());
    k.impls.push_back(t.defined() ? t.data_ptr() : nullptr);
    k.versions.push_back(t._version());
    k.extra.push_back(static_cast<int64_t>(t.scalar_type()));
    k.extra.push_back(static_cast<int64_t>(t.device().type()));
    k.extra.push_back(static_cast<int64_t>(t.device().index()));
  }
  k.extra.insert(k.extra.end(), extra.begin(), extra.end());
  k.extra.push_back(cache_generation.load());
  return k;
}

bool can_use_eval_cache(bool is_training, const torch::Tensor& weight) {
  return !is_training && !(torch::GradMode::is_enabled() && weight.requires_grad());
}

}  // namespace detail
}  // namespace lipkit
