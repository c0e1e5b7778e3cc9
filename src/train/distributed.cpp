#include "lipkit/train/distributed.h"

#include <c10/core/impl/DeviceGuardImplInterface.h>
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#ifdef LIPKIT_NCCL  // set by CMake with a CUDA LibTorch and nccl.h (also defines USE_C10D_NCCL)
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#endif
#include <torch/cuda.h>
#include <torch/torch.h>

#include <cstdlib>
#include <string>

namespace lipkit::train {

// One backend per run: Gloo (CPU tensors, and CUDA tensors in a build without NCCL) or NCCL.
struct Distributed::Group {
  c10::intrusive_ptr<c10d::Store> store;
  c10::intrusive_ptr<c10d::ProcessGroupGloo> gloo;
#ifdef LIPKIT_NCCL
  c10::intrusive_ptr<c10d::ProcessGroupNCCL> nccl;
#endif
  std::vector<c10::intrusive_ptr<c10d::Work>> pending;  // bucket all-reduces in flight, in launch order

  c10::intrusive_ptr<c10d::Work> allreduce(std::vector<torch::Tensor>& v) {
#ifdef LIPKIT_NCCL
    if (nccl) return nccl->allreduce(v);
#endif
    return gloo->allreduce(v);
  }
  c10::intrusive_ptr<c10d::Work> broadcast(std::vector<torch::Tensor>& v) {
#ifdef LIPKIT_NCCL
    if (nccl) return nccl->broadcast(v);
#endif
    return gloo->broadcast(v);
  }
  void connect(const std::string& host, int rank, int world, const torch::Device& device,
               std::chrono::milliseconds timeout) {
#ifdef LIPKIT_NCCL
    if (device.is_cuda()) {
      // without asynchronous error handling a dead peer would hang NCCL instead of failing at the timeout
      ::setenv("NCCL_ASYNC_ERROR_HANDLING", "1", 0), ::setenv("TORCH_NCCL_ASYNC_ERROR_HANDLING", "1", 0);
      auto o = c10d::ProcessGroupNCCL::Options::create();
      o->timeout = timeout;
      nccl = c10::make_intrusive<c10d::ProcessGroupNCCL>(store, rank, world, o);
      return;
    }
#endif
    auto o = c10d::ProcessGroupGloo::Options::create(timeout);
    o->devices.push_back(c10d::ProcessGroupGloo::createDeviceForHostname(host == "localhost" ? "127.0.0.1" : host));
    gloo = c10::make_intrusive<c10d::ProcessGroupGloo>(store, rank, world, o);
  }
};

namespace {
// An integer environment variable; `fallback` when unset; a named error when not a number in range.
int64_t env_int(const char* name, int64_t fallback, int64_t lo, int64_t hi) {
  const char* v = std::getenv(name);
  if (v == nullptr || *v == '\0') return fallback;
  char* end = nullptr;
  const long long x = std::strtoll(v, &end, 10);
  TORCH_CHECK(end != v && *end == '\0' && x >= lo && x <= hi, "distributed: environment variable ", name, "='", v,
              "' must be an integer in [", lo, ", ", hi, "]");
  return x;
}

// Runs a collective and waits, turning c10d's failures (a peer gone, the timeout) into one message.
void run(const c10::intrusive_ptr<c10d::Work>& work, const char* what, int64_t rank) {
  try {
    work->wait();
  } catch (const std::exception& e) {
    TORCH_CHECK(false, "distributed: ", what, " failed on rank ", rank,
                " (another worker exited or stopped answering within the timeout): ", e.what());
  }
}
}  // namespace

std::shared_ptr<Distributed> Distributed::from_environment(const DistributedOptions& options) {
  const int64_t world = env_int("WORLD_SIZE", 1, 1, 1 << 16);
  if (world == 1) return nullptr;
  TORCH_CHECK(std::getenv("RANK") != nullptr, "distributed: WORLD_SIZE=", world,
              " but RANK is not set (launch every worker with RANK, WORLD_SIZE, MASTER_ADDR and MASTER_PORT, as torchrun "
              "does, or use lipkit train --nproc N)");
  auto d = std::make_shared<Distributed>();
  d->world_ = world;
  d->rank_ = env_int("RANK", 0, 0, world - 1);
  d->local_rank_ = env_int("LOCAL_RANK", d->rank_, 0, world - 1);
  d->local_world_ = env_int("LOCAL_WORLD_SIZE", world, 1, world);
  TORCH_CHECK(std::getenv("MASTER_PORT") != nullptr, "distributed: MASTER_PORT is not set (rank 0's rendezvous port)");
  const auto port = static_cast<uint16_t>(env_int("MASTER_PORT", 0, 1, 65535));
  const char* addr = std::getenv("MASTER_ADDR");
  const std::string host = addr != nullptr && *addr != '\0' ? addr : "127.0.0.1";
  TORCH_CHECK(options.bucket_mb > 0, "distributed: bucket size must be positive, got ", options.bucket_mb, " MiB");
  d->bucket_bytes_ = options.bucket_mb << 20;
  d->device_ = options.device;
  if (d->device_.is_cuda()) {  // one GPU per local worker, as torchrun/DDP users set it
    if (!d->device_.has_index()) d->device_ = torch::Device(torch::kCUDA, static_cast<c10::DeviceIndex>(d->local_rank_));
    const auto n = static_cast<int64_t>(torch::cuda::device_count());
    TORCH_CHECK(d->device_.index() < n, "distributed: rank ", d->rank_, " (LOCAL_RANK ", d->local_rank_, ") needs ",
                d->device_, " but this machine has ", n, " CUDA device(s)");
    c10::impl::getDeviceGuardImpl(torch::kCUDA)->setDevice(d->device_);
  }
  d->group_ = std::make_shared<Group>();
  c10d::TCPStoreOptions so;
  so.port = port;
  so.isServer = d->rank_ == 0;
  so.numWorkers = static_cast<size_t>(world);
  so.timeout = options.timeout;
  try {
    d->group_->store = c10::make_intrusive<c10d::TCPStore>(host, so);
    d->group_->connect(host, static_cast<int>(d->rank_), static_cast<int>(world), d->device_, options.timeout);
  } catch (const std::exception& e) {
    TORCH_CHECK(false, "distributed: rank ", d->rank_, " of ", world, " could not join at ", host, ":", port,
                " (port in use, wrong MASTER_ADDR, or a worker missing past the timeout): ", e.what());
  }
  return d;
}

const char* Distributed::backend() const {
#ifdef LIPKIT_NCCL
  if (group_->nccl) return "nccl";
#endif
  return "gloo";
}

void Distributed::all_reduce(torch::Tensor& flat) {
  const auto t0 = std::chrono::steady_clock::now();
  std::vector<torch::Tensor> v{flat};
  run(group_->allreduce(v), "all-reduce", rank_);
  comm_seconds_ += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

void Distributed::attach(const std::vector<torch::Tensor>& params) {
  attached_ = params;
  slot_of_.assign(params.size(), {0, 0});
  buckets_.clear();
  int64_t bytes = bucket_bytes_;
  for (size_t k = params.size(); k-- > 0;) {  // backward meets the last layers first
    const auto& p = params[k];
    const int64_t b = p.numel() * static_cast<int64_t>(p.element_size());
    if (buckets_.empty() || bytes + b > bucket_bytes_ || p.scalar_type() != attached_[buckets_.back().params[0]].scalar_type()) {
      buckets_.emplace_back();
      bytes = 0;
    }
    slot_of_[k] = {buckets_.size() - 1, buckets_.back().params.size()};
    buckets_.back().params.push_back(k);
    bytes += b;
  }
  for (size_t k = 0; k < params.size(); ++k) {
    params[k].register_hook([this, k](const torch::Tensor& g) {
      if (!armed_) return;  // a backward outside a training step (none today) stays local
      const auto [index, position] = slot_of_[k];
      auto& bucket = buckets_[index];
      bucket.grads[position] = g.detach();
      if (++bucket.ready == bucket.params.size()) launch(index);
    });
  }
}

void Distributed::arm() {
  for (auto& b : buckets_) b.grads.assign(b.params.size(), torch::Tensor()), b.ready = 0, b.launched = false;
  group_->pending.clear();
  armed_ = true;
}

void Distributed::launch(size_t index) {
  auto& b = buckets_[index];
  std::vector<torch::Tensor> parts;
  for (size_t i = 0; i < b.params.size(); ++i) {
    const auto& p = attached_[b.params[i]];
    parts.push_back(b.grads[i].defined() ? b.grads[i].reshape({-1}) : torch::zeros({p.numel()}, p.options()));
  }
  b.flat = torch::cat(parts);
  b.launched = true;
  std::vector<torch::Tensor> v{b.flat};
  group_->pending.push_back(group_->allreduce(v));
}

void Distributed::finish_gradients() {
  armed_ = false;
  for (size_t i = 0; i < buckets_.size(); ++i)  // parameters without a gradient this step: zeros
    if (!buckets_[i].launched) launch(i);
  const auto t0 = std::chrono::steady_clock::now();
  for (auto& w : group_->pending) run(w, "all-reduce", rank_);
  comm_seconds_ += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  group_->pending.clear();
  for (auto& b : buckets_) {
    b.flat.div_(static_cast<double>(world_));
    int64_t offset = 0;
    for (size_t i = 0; i < b.params.size(); ++i) {
      auto& p = const_cast<torch::Tensor&>(attached_[b.params[i]]);
      auto slice = b.flat.narrow(0, offset, p.numel()).view_as(p);
      if (p.mutable_grad().defined()) p.mutable_grad().copy_(slice);
      else p.mutable_grad() = slice.clone();
      offset += p.numel();
    }
    b.grads.clear();
    b.flat = torch::Tensor();
  }
}

void Distributed::broadcast(const std::vector<torch::Tensor>& tensors) {
  for (const auto& t : tensors) {
    std::vector<torch::Tensor> v{t};
    run(group_->broadcast(v), "broadcast", rank_);
  }
}

void Distributed::average(const std::vector<torch::Tensor>& tensors) {
  for (auto t : tensors) {
    all_reduce(t);
    t.div_(static_cast<double>(world_));
  }
}

namespace {
// mean over ranks; backward: the mean over ranks of the gradients (each rank's loss depends on every
// rank's statistic, and the trainer averages the parameter gradients once more afterwards)
struct SynchronizedMean : torch::autograd::Function<SynchronizedMean> {
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& local, Distributed* d) {
    ctx->saved_data["d"] = reinterpret_cast<int64_t>(d);
    auto t = local.detach().clone();
    d->average({t});
    return t;
  }
  static torch::autograd::tensor_list backward(torch::autograd::AutogradContext* ctx, torch::autograd::tensor_list g) {
    auto* d = reinterpret_cast<Distributed*>(ctx->saved_data["d"].toInt());
    auto t = g[0].contiguous().clone();
    d->average({t});
    return {t, torch::Tensor()};
  }
};
}  // namespace

torch::Tensor Distributed::synchronized_mean(const torch::Tensor& local) { return SynchronizedMean::apply(local, this); }

double Distributed::sum(double value) {
  auto t = torch::full({1}, value, torch::TensorOptions(torch::kDouble).device(device_));
  all_reduce(t);
  return t.item<double>();
}

}  // namespace lipkit::train
