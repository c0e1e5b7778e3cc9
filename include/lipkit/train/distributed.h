#pragma once
// Several training processes, one model, on PyTorch's own distributed engine (c10d): a TCPStore
// rendezvous and a Gloo process group, joined from the environment torchrun gives its workers
// (RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, MASTER_PORT). On CUDA each rank uses cuda:LOCAL_RANK and,
// where lipkit was built with NCCL (an official CUDA LibTorch and nccl.h: LIPKIT_NCCL), a NCCL process
// group; that path is compile-guarded and has never run on the project's CPU-only machines.

#include <torch/types.h>

#include <chrono>
#include <memory>
#include <utility>
#include <vector>

namespace lipkit::train {

struct DistributedOptions {
  int64_t bucket_mb = 25;  ///< gradients per all-reduce, at most this many MiB (several parameters each)
  std::chrono::milliseconds timeout{std::chrono::minutes(5)};  ///< a collective waiting longer fails
  /// Where the model's tensors live. cuda without an index: cuda:LOCAL_RANK (one GPU per local worker).
  torch::Device device = torch::kCPU;
};

class Distributed {
 public:
  /// The group of the torchrun environment, or nullptr when WORLD_SIZE is unset or 1 (one process).
  /// throws: c10::Error naming the variable when the environment is incomplete or invalid (WORLD_SIZE
  /// without RANK, RANK >= WORLD_SIZE, no MASTER_PORT), or when the rendezvous fails (port in use, a
  /// worker missing past the timeout).
  static std::shared_ptr<Distributed> from_environment(const DistributedOptions& options = {});

  int64_t rank() const { return rank_; }
  int64_t world() const { return world_; }
  int64_t local_rank() const { return local_rank_; }
  /// Workers on this machine (LOCAL_WORLD_SIZE, default WORLD_SIZE): they share its cores.
  int64_t local_world() const { return local_world_; }
  /// This rank's device (cuda:LOCAL_RANK for options.device cuda), made the current one.
  torch::Device device() const { return device_; }
  /// "gloo" or "nccl" (CUDA tensors with LIPKIT_NCCL).
  const char* backend() const;

  /// Averages the gradients of `params` over the ranks, overlapped with backward: hooks on `params`
  /// start a bucket's all-reduce (buckets of at most bucket_mb, in reverse order, as backward produces
  /// them) as soon as backward has produced the last gradient in it. Active between arm() and
  /// finish_gradients() only.
  void attach(const std::vector<torch::Tensor>& params);
  void arm();
  /// Waits for the bucket all-reduces (launching those whose parameters got no gradient, as zeros)
  /// and writes the averaged gradients into the parameters' .grad. throws: c10::Error naming the
  /// failed peer or the timeout.
  void finish_gradients();
  /// Rank 0's values of these tensors on every rank, in place.
  void broadcast(const std::vector<torch::Tensor>& tensors);
  /// The mean over the ranks of these tensors, in place.
  void average(const std::vector<torch::Tensor>& tensors);
  /// The mean over the ranks of a tensor of equal shape on every rank, differentiable: its backward
  /// averages the incoming gradients over the ranks (synchronised batch statistics, as SyncBatchNorm).
  torch::Tensor synchronized_mean(const torch::Tensor& local);
  /// The sum over the ranks of one number (stop flags, counts).
  double sum(double value);
  /// Seconds this process has spent in all-reduces so far (the communication share of a step).
  double communication_seconds() const { return comm_seconds_; }

 private:
  void all_reduce(torch::Tensor& flat);
  struct Group;  // the c10d store and process group
  std::shared_ptr<Group> group_;
  void launch(size_t bucket);
  struct Bucket {
    std::vector<size_t> params;
    std::vector<torch::Tensor> grads;
    size_t ready = 0;
    bool launched = false;
    torch::Tensor flat;
  };
  std::vector<torch::Tensor> attached_;
  std::vector<std::pair<size_t, size_t>> slot_of_;  // parameter -> (bucket, position in it)
  std::vector<Bucket> buckets_;
  bool armed_ = false;
  int64_t rank_ = 0, world_ = 1, local_rank_ = 0, local_world_ = 1, bucket_bytes_ = 0;
  torch::Device device_ = torch::kCPU;
  double comm_seconds_ = 0;
};

}  // namespace lipkit::train
