#include "train/private_training.h"

#include <cmath>
#include <cstdio>
#include <limits>

namespace lipkit::train::detail {

PrivateTraining::PrivateTraining(const TrainConfig& config, torch::nn::Sequential& model, int64_t examples,
                                 int64_t classes, bool no_privacy)
    : spec_(config.dp), examples_(examples), seed_(config.seed), mode_(dp::parse_noise_mode(config.dp.mode)) {
  q_ = spec_.sampling_rate > 0 ? spec_.sampling_rate : std::min(1.0, double(config.batch_size) / double(examples));
  loss_lipschitz_ = dp::loss_lipschitz(config.loss.name, classes);
  dp::sensitivities(model, loss_lipschitz_);  // refuses, by name, what cannot be bounded
  const int64_t total = steps_per_epoch() * config.epochs;
  if (spec_.noise_multiplier >= 0) {
    sigma_ = spec_.noise_multiplier;
  } else {
    sigma_ = dp::calibrate_sigma(q_, total, spec_.epsilon, spec_.delta);
  }
  TORCH_CHECK(sigma_ > 0 || no_privacy, "dp.noise_multiplier 0 adds no noise: the run would not be private; ",
              "pass --no-privacy to train so for debugging (the checkpoint then records epsilon = infinity)");
}

int64_t PrivateTraining::steps_per_epoch() const { return std::max<int64_t>(1, std::llround(1.0 / q_)); }

void PrivateTraining::restore(int64_t steps_done) {
  if (sigma_ > 0) accountant_.step(q_, sigma_, steps_done);
}

bool PrivateTraining::budget_allows_step() const {
  if (spec_.epsilon <= 0 || sigma_ == 0) return true;  // no budget given, or --no-privacy
  return accountant_.epsilon_after(q_, sigma_, 1, spec_.delta).epsilon <= spec_.epsilon * (1 + 1e-9);
}

void PrivateTraining::privatize(torch::nn::Sequential& model, int64_t step) {
  const auto layers = dp::sensitivities(model, loss_lipschitz_);
  auto gen = at::make_generator<at::CPUGeneratorImpl>(seed_ * 0x9e3779b97f4a7c15ULL + static_cast<uint64_t>(step) + 1);
  dp::add_noise(layers, sigma_, mode_, gen);
  torch::NoGradGuard no_grad;
  const double expected = q_ * double(examples_);
  for (auto& p : model->parameters())
    if (p.grad().defined()) p.mutable_grad().div_(expected);
  if (sigma_ > 0) accountant_.step(q_, sigma_);
}

double PrivateTraining::epsilon() const {
  if (sigma_ == 0) return std::numeric_limits<double>::infinity();
  return accountant_.steps() == 0 ? 0.0 : accountant_.epsilon(spec_.delta).epsilon;
}

nlohmann::json PrivateTraining::meta() const {
  const double eps = epsilon();
  return {{"private", sigma_ > 0},
          {"epsilon", std::isinf(eps) ? nlohmann::json("inf") : nlohmann::json(eps)},
          {"epsilon_budget", spec_.epsilon},
          {"delta", spec_.delta},
          {"noise_multiplier", sigma_},
          {"sampling_rate", q_},
          {"steps", accountant_.steps()},
          {"mode", spec_.mode},
          {"loss_lipschitz", loss_lipschitz_},
          {"accounting", "RDP of the Poisson-subsampled Gaussian (Mironov et al. 2019), improved conversion"}};
}

}  // namespace lipkit::train::detail
