#include "lipkit/data/loader.h"

#include <torch/torch.h>

namespace lipkit::data {

namespace {
uint64_t mix(uint64_t a, uint64_t b) {  // splitmix-style combination for per-epoch/batch seeds
  uint64_t z = a + 0x9e3779b97f4a7c15ULL * (b + 1);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}
}  // namespace

BatchLoader::BatchLoader(const Dataset& data, LoaderOptions options)
    : data_(data), options_(options) {
  TORCH_CHECK(options_.batch_size > 0, "BatchLoader: batch_size must be positive, got ",
              options_.batch_size);
  TORCH_CHECK(data_.size() > 0, "BatchLoader: data set ", data_.name, " is empty");
  TORCH_CHECK(options_.poisson_rate >= 0 && options_.poisson_rate <= 1, "BatchLoader: poisson_rate must be in [0, 1], ",
              "got ", options_.poisson_rate);
  TORCH_CHECK(options_.shards >= 1 && options_.shard >= 0 && options_.shard < options_.shards, "BatchLoader: shard ",
              options_.shard, " of ", options_.shards, " is not a shard");
  TORCH_CHECK(options_.shards == 1 || options_.poisson_rate == 0, "BatchLoader: Poisson batches are not sharded");
  TORCH_CHECK(options_.batch_size >= options_.shards, "BatchLoader: batch_size ", options_.batch_size,
              " is smaller than the ", options_.shards, " shards it is split into");
}

BatchLoader::~BatchLoader() {
  if (pending_.valid()) pending_.wait();
}

int64_t BatchLoader::batches_per_epoch() const {
  if (options_.poisson_rate > 0) return std::max<int64_t>(1, std::llround(1.0 / options_.poisson_rate));
  const int64_t n = data_.size(), b = options_.batch_size;
  return options_.drop_last ? std::max<int64_t>(n / b, 1) : (n + b - 1) / b;
}

void BatchLoader::start_epoch(int64_t epoch, int64_t start_batch) {
  if (pending_.valid()) pending_.wait();
  pending_ = {};
  epoch_ = epoch;
  if (options_.shuffle) {
    auto gen = at::make_generator<at::CPUGeneratorImpl>(mix(options_.seed, epoch));
    order_ = torch::randperm(data_.size(), gen, torch::kLong);
  } else {
    order_ = torch::arange(data_.size(), torch::kLong);
  }
  next_ = start_batch;
}

torch::Tensor BatchLoader::indices(int64_t b) const {
  if (options_.poisson_rate <= 0) {
    const int64_t start = b * options_.batch_size;
    return order_.narrow(0, start, std::min(options_.batch_size, data_.size() - start));
  }
  auto gen = at::make_generator<at::CPUGeneratorImpl>(mix(mix(options_.seed ^ 0x5d1f7a3cULL, epoch_), b));
  return (torch::rand({data_.size()}, gen, torch::kDouble) < options_.poisson_rate).nonzero().view(-1);
}

Batch BatchLoader::make_batch(int64_t b) const {
  auto idx = indices(b);
  Batch batch;
  batch.index = b;
  auto x = to_float(data_.images.index_select(0, idx));
  batch.x = idx.numel() ? augment(x, options_.augment, mix(mix(options_.seed, epoch_), b)) : x;
  batch.y = data_.labels.index_select(0, idx);
  if (options_.shards > 1) {  // the whole batch is drawn (and augmented) as one process would, then sliced
    const int64_t chunk = idx.numel() / options_.shards;
    batch.x = batch.x.narrow(0, options_.shard * chunk, chunk);
    batch.y = batch.y.narrow(0, options_.shard * chunk, chunk);
  }
  return batch;
}

bool BatchLoader::next(Batch& out) {
  const int64_t total = batches_per_epoch();
  if (next_ >= total) return false;
  out = pending_.valid() ? pending_.get() : make_batch(next_);
  ++next_;
  if (next_ < total) pending_ = std::async(std::launch::async, [this, b = next_] { return make_batch(b); });
  return true;
}

}  // namespace lipkit::data
