#pragma once
// Batches in a seeded order, prepared one batch ahead on a worker thread.

#include <torch/types.h>

#include <future>

#include "lipkit/data/dataset.h"
#include "lipkit/data/transforms.h"

namespace lipkit::data {

struct Batch {
  torch::Tensor x;  // float (B, C, H, W) in [0, 1]
  torch::Tensor y;  // int64 (B)
  int64_t index = 0;
};

struct LoaderOptions {
  int64_t batch_size = 256;
  bool shuffle = false;
  bool drop_last = false;
  uint64_t seed = 0;
  Augment augment;
  /// > 0: Poisson sampling (private training): every batch includes each example independently with
  /// this probability, drawn from (seed, epoch, batch); round(1 / rate) batches per epoch, of varying
  /// size (empty ones included); batch_size, shuffle and drop_last are then unused.
  double poisson_rate = 0;
  /// Distributed training: this process's share of every batch, shard of shards equal slices of the
  /// global batch (the global order is the one-process order; a last partial batch loses its
  /// remainder, < shards examples, so every rank gets the same count).
  int64_t shard = 0, shards = 1;
};

class BatchLoader {
 public:
  BatchLoader(const Dataset& data, LoaderOptions options);
  ~BatchLoader();
  /// Starts epoch `epoch`: its order depends only on (seed, epoch); batches before `start_batch` are
  /// skipped (resuming mid-epoch gives the same batches as an uninterrupted run).
  void start_epoch(int64_t epoch, int64_t start_batch = 0);
  /// The next batch of the epoch; false at its end.
  bool next(Batch& out);
  int64_t batches_per_epoch() const;

 private:
  torch::Tensor indices(int64_t b) const;  // the examples of batch b of the current epoch
  Batch make_batch(int64_t b) const;
  const Dataset& data_;
  LoaderOptions options_;
  torch::Tensor order_;
  int64_t epoch_ = 0, next_ = 0;
  std::future<Batch> pending_;
};

}  // namespace lipkit::data
