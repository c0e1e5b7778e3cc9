#include "lipkit/train/losses.h"

#include <torch/torch.h>

namespace lipkit::train {

torch::Tensor multi_margin_loss(const torch::Tensor& logits, const torch::Tensor& y, double margin) {
  return torch::multi_margin_loss(logits, y, /*p=*/1, margin, /*weight=*/{}, at::Reduction::Mean);
}

torch::Tensor offset_cross_entropy(const torch::Tensor& logits, const torch::Tensor& y,
                                   double offset, double temperature) {
  auto onehot = torch::one_hot(y, logits.size(1)).to(logits.scalar_type());
  return temperature * torch::cross_entropy_loss((logits - offset * onehot) / temperature, y);
}

torch::Tensor compute_loss(const LossSpec& spec, const torch::Tensor& logits, const torch::Tensor& y) {
  if (spec.name == "offset_ce") return offset_cross_entropy(logits, y, spec.offset, spec.temperature);
  if (spec.name == "multi_margin") return multi_margin_loss(logits, y, spec.margin);
  if (spec.name == "ce") return torch::cross_entropy_loss(logits, y);
  TORCH_CHECK(false, "loss.name must be offset_ce, multi_margin or ce, got '", spec.name, "'");
}

}  // namespace lipkit::train
