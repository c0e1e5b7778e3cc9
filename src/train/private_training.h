#pragma once
// Differentially private steps for the training loop (internal): the configuration checked before
// training, the noise multiplier fixed (given or calibrated), the Gaussian mechanism applied to the
// summed gradient of each Poisson batch, and the privacy spent accounted step by step.

#include <torch/torch.h>

#include <nlohmann/json.hpp>

#include "lipkit/dp/accountant.h"
#include "lipkit/dp/mechanism.h"
#include "lipkit/train/config.h"

namespace lipkit::train::detail {

class PrivateTraining {
 public:
  /// throws: c10::Error, before any training, when the model or the loss has no sensitivity bound,
  /// when sigma = 0 without `no_privacy`, or when no sigma reaches dp.epsilon in the configured epochs.
  PrivateTraining(const TrainConfig& config, torch::nn::Sequential& model, int64_t examples, int64_t classes,
                  bool no_privacy);
  double sampling_rate() const { return q_; }
  int64_t steps_per_epoch() const;
  /// Re-accounts the steps already taken (resume).
  void restore(int64_t steps_done);
  /// False when one more step would spend more than dp.epsilon.
  bool budget_allows_step() const;
  /// The model's grads hold the batch's summed per-example gradients (the loss summed, not averaged):
  /// adds the noise for the current weights' sensitivities, divides by the expected batch size q N, and
  /// accounts the step. `step` seeds the noise, so a resumed run draws the same noise.
  void privatize(torch::nn::Sequential& model, int64_t step);
  double epsilon() const;
  double sigma() const { return sigma_; }
  /// The accounting for the checkpoint and `lipkit info`.
  nlohmann::json meta() const;

 private:
  const DpSpec spec_;
  double q_ = 0, sigma_ = 0, loss_lipschitz_ = 0;
  int64_t examples_ = 0;
  uint64_t seed_ = 0;
  dp::NoiseMode mode_;
  dp::RdpAccountant accountant_;
};

}  // namespace lipkit::train::detail
