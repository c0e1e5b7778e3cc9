#include "lipkit/data/transforms.h"

#include <torch/torch.h>

#include <random>

namespace lipkit::data {

torch::Tensor to_float(const torch::Tensor& pixels) { return pixels.to(torch::kFloat).div_(255.0); }

torch::Tensor augment(const torch::Tensor& batch, const Augment& aug, uint64_t seed) {
  if (!aug.enabled()) return batch;
  std::mt19937_64 rng(seed);
  const int64_t n = batch.size(0), h = batch.size(2), w = batch.size(3), p = aug.crop_padding;
  auto src = p > 0 ? torch::constant_pad_nd(batch, {p, p, p, p}, 0.0) : batch;
  auto out = torch::empty_like(batch);
  std::uniform_int_distribution<int64_t> shift(0, 2 * p);
  std::bernoulli_distribution coin(0.5);
  for (int64_t i = 0; i < n; ++i) {
    const int64_t dy = shift(rng), dx = shift(rng);
    auto img = src[i].narrow(1, dy, h).narrow(2, dx, w);
    if (aug.flip && coin(rng)) img = img.flip({2});
    out[i].copy_(img);
  }
  return out;
}

}  // namespace lipkit::data
