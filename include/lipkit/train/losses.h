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

/// SortNet / l_inf-dist net v2 "mixture": mean clamp(max_{j != y} (f_j - f_y + 2 eps) / (2 eps), 0, 1)
/// + lam CE(scale * f, y). A clipped hinge asking for the l_inf margin 2 eps of a 1-Lipschitz-in-
/// l_inf model (f = -distances), plus a cross-entropy term whose weight lam decays during training.
torch::Tensor mixture_loss(const torch::Tensor& logits, const torch::Tensor& y, double eps, double lam,
                           const torch::Tensor& scale);

/// Values of a loss that change during training.
struct LossState {
  double eps = 0;          // current hinge eps (mixture)
  double lam = 0;          // current CE weight (mixture)
  torch::Tensor ce_scale;  // learnable CE temperature (NegatedDistance::scale); undefined: 1
};

struct LossSpec {
  std::string name = "offset_ce";  // offset_ce | multi_margin | ce | mixture
  double margin = 0.7;
  double offset = 2.1213203435596424;  // 1.5 sqrt(2)
  double temperature = 0.25;
  // mixture: eps of the hinge (pixel units, usually 2-3x the certified radius), CE weight lam0 ->
  // lam_end (geometric, following the p schedule's progress)
  double eps = 0.3;
  double lam0 = 0.1, lam_end = 0.001;
};

torch::Tensor compute_loss(const LossSpec& spec, const torch::Tensor& logits, const torch::Tensor& y,
                           const LossState& state = {});

}  // namespace lipkit::train
