#pragma once
// The papers' training losses for certified margins.

#include <torch/types.h>

#include <string>

namespace lipkit::train {

/// CPL: (1/C) sum_{j != y} max(0, margin - f_y + f_j), averaged over the batch
/// (torch's multi_margin_loss with p = 1).
torch::Tensor multi_margin_loss(const torch::Tensor& logits, const torch::Tensor& y, double margin);

/// SLL / AOL: T * CE((f - offset * onehot(y)) / T, y). The offset asks for a margin; the temperature
/// sets how hard. SLL: offset 1.5 sqrt(2), T = 0.25; AOL: offset sqrt(2), T = 0.25.
torch::Tensor offset_cross_entropy(const torch::Tensor& logits, const torch::Tensor& y,
                                   double offset, double temperature);

struct LossSpec {
  std::string name = "offset_ce";  // offset_ce | multi_margin | ce
  double margin = 0.7;
  double offset = 2.1213203435596424;  // 1.5 sqrt(2)
  double temperature = 0.25;
};

torch::Tensor compute_loss(const LossSpec& spec, const torch::Tensor& logits, const torch::Tensor& y);

}  // namespace lipkit::train
