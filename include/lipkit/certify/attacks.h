#pragma once
// PGD attacks that check every certificate: a point certified at r must not flip under any attack
// of radius r.

#include <torch/nn/modules/container/sequential.h>
#include <torch/types.h>

#include "lipkit/certify/certify.h"
#include "lipkit/data/dataset.h"
#include "lipkit/layers/lipschitz_layer.h"

namespace lipkit::certify {

struct PgdOptions {
  Norm norm = Norm::L2;
  double eps = 36.0 / 255.0;
  int64_t steps = 50;
  double step_size = 0.0;  // 0: 2.5 eps / steps
  bool random_start = true;
  uint64_t seed = 0;
};

/// Projected gradient ascent on the margin max_{j != y} f_j - f_y inside the eps-ball of `norm`,
/// clipped to the pixel box [0, 1]. Returns, per point, the iterate with the largest margin seen.
torch::Tensor pgd_attack(torch::nn::Sequential& model, const torch::Tensor& x, const torch::Tensor& y,
                         const PgdOptions& options);

struct AttackReport {
  int64_t total = 0;
  int64_t clean_correct = 0;
  int64_t robust_correct = 0;   // still correct after the attack
  int64_t certified = 0;        // certified at eps
  int64_t violations = 0;       // certified at eps, yet flipped by the attack: must be 0
  double max_perturbation = 0;  // largest ||delta|| used, a check that the attack stayed in the ball
  bool proven = false;          // the certificate checked rests on a proven bound
  std::string bound_source;
};

/// Attacks the network certify() certifies (the float64 copy of `model` built by a Certificate with
/// `certificate`: same bound, slack, IBP rule and re-estimation) with PGD at radius options.eps, and
/// counts the points certified at eps that the attack flips (a tie counts as a flip): must be 0. The
/// search runs on a float32 copy of that network when the model is float32; every candidate is
/// judged on the float64 network.
AttackReport attack_and_check(torch::nn::Sequential& model, const data::Dataset& data, const PgdOptions& options,
                              const CertifyOptions& certificate, int64_t batch_size = 250);
/// The same against the default certificate in the attack's norm (the lipkit layers' own bounds).
AttackReport attack_and_check(torch::nn::Sequential& model, const data::Dataset& data, const PgdOptions& options);

}  // namespace lipkit::certify
