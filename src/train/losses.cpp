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

torch::Tensor mixture_loss(const torch::Tensor& logits, const torch::Tensor& y, double eps, double lam,
                           const torch::Tensor& scale) {
  TORCH_CHECK(eps > 0, "mixture loss: eps must be positive, got ", eps);
  auto fy = logits.gather(1, y.view({-1, 1}));
  auto worst = (logits - fy + 2 * eps) / (2 * eps);
  worst = worst.masked_fill(torch::one_hot(y, logits.size(1)).to(torch::kBool), -1e9);
  auto hinge = std::get<0>(worst.max(1)).clamp(0.0, 1.0).mean();
  if (lam <= 0) return hinge;
  auto scaled = scale.defined() ? logits * scale : logits;
  return hinge + lam * torch::cross_entropy_loss(scaled, y);
}

torch::Tensor compute_loss(const LossSpec& spec, const torch::Tensor& logits, const torch::Tensor& y,
                           const LossState& state) {
  if (spec.name == "mixture")
    return mixture_loss(logits, y, std::max(state.eps, 1e-6), state.lam, state.ce_scale);
  if (spec.name == "offset_ce") return offset_cross_entropy(logits, y, spec.offset, spec.temperature);
  if (spec.name == "multi_margin") return multi_margin_loss(logits, y, spec.margin);
  if (spec.name == "ce") return torch::cross_entropy_loss(logits, y);
  TORCH_CHECK(false, "loss.name must be offset_ce, multi_margin, ce or mixture, got '", spec.name, "'");
}

}  // namespace lipkit::train
