#pragma once
// Training-time augmentation, seeded per batch so a run (and a resumed run) is reproducible.

#include <torch/types.h>

#include <cstdint>

namespace lipkit::data {

struct Augment {
  /// random crop back to the original size after zero-padding each side by this many pixels (0: off)
  int64_t crop_padding = 0;
  /// random horizontal flip with probability 1/2
  bool flip = false;
  bool enabled() const { return crop_padding > 0 || flip; }
};

/// Applies `aug` to a float batch (N, C, H, W), drawing from a generator seeded with `seed`.
torch::Tensor augment(const torch::Tensor& batch, const Augment& aug, uint64_t seed);

/// uint8 (N, C, H, W) pixels -> float in [0, 1].
torch::Tensor to_float(const torch::Tensor& pixels);

}  // namespace lipkit::data
