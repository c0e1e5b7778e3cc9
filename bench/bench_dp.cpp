// Private training without clipping (lip-dp) against ordinary training and against DP-SGD with
// per-example clipping (the Opacus way: per-example gradients materialised, clipped, summed, noised), on
// the same model (preset dp-fmnist: 784 -> 256 -> 256 -> 10) and the same accountant's sigma, in one
// process: time per step and the resident-set peak of each (measured phase by phase).
//
//   build/bench/bench_dp [--batch 4096] [--steps 20]
//
// Peaks are VmHWM after a reset at the start of each phase (plain, lip-dp, clipping, in that order); the
// heap a phase keeps (configure_allocator) counts in the next phases' peaks.
#include <torch/torch.h>

#include <chrono>
#include <cstdio>
#include <cstring>

#include "lipkit/dp/accountant.h"
#include "lipkit/dp/mechanism.h"
#include "lipkit/dp/sensitivity.h"
#include "lipkit/layers/dp_linear.h"
#include "lipkit/models/presets.h"
#include "lipkit/runtime.h"
#include "lipkit/train/losses.h"

using namespace lipkit;

namespace {
using Clock = std::chrono::steady_clock;

torch::nn::Sequential make_model() {
  auto s = models::model_preset("dp-fmnist");
  s.in_channels = 1;
  s.image_size = 28;
  s.num_classes = 10;
  s.mean = {0.5};
  torch::manual_seed(0);
  return models::build_model(s);
}

train::LossSpec loss_spec() {
  train::LossSpec l;
  l.name = "offset_ce";
  return l;
}

// Ordinary training: mean loss, backward, Adam, projection.
void plain_step(torch::nn::Sequential& m, torch::optim::Adam& opt, const torch::Tensor& x, const torch::Tensor& y) {
  opt.zero_grad();
  train::compute_loss(loss_spec(), m->forward(x), y).backward();
  opt.step();
  dp::project(*m);
}

// lip-dp: summed loss, backward, analytic sensitivities, noise, Adam, projection.
void lipdp_step(torch::nn::Sequential& m, torch::optim::Adam& opt, const torch::Tensor& x, const torch::Tensor& y,
                double sigma, at::Generator& gen) {
  opt.zero_grad();
  (train::compute_loss(loss_spec(), m->forward(x), y) * double(x.size(0))).backward();
  dp::add_noise(dp::sensitivities(m, dp::loss_lipschitz("offset_ce", 10)), sigma, dp::NoiseMode::Global, gen);
  for (auto& p : m->parameters()) p.mutable_grad().div_(double(x.size(0)));
  opt.step();
  dp::project(*m);
}

// DP-SGD with per-example clipping: the forward keeps each DpLinear's input and output; the backward of
// the summed loss gives the outputs' per-example gradients, from which every per-example weight gradient
// is materialised (B x out x in), its joint norm over all layers taken, clipped to C, and summed; physical
// batches of `chunk` examples bound the memory (Opacus's BatchMemoryManager); then noise on the sum.
void clipping_step(torch::nn::Sequential& m, torch::optim::Adam& opt, const torch::Tensor& x, const torch::Tensor& y,
                   double sigma, double clip, at::Generator& gen, int64_t chunk) {
  std::vector<DpLinearImpl*> layers;
  for (const auto& child : m->children())
    if (auto* d = child->as<DpLinearImpl>()) layers.push_back(d);
  std::vector<torch::Tensor> sum_w(layers.size()), sum_b(layers.size());
  for (size_t l = 0; l < layers.size(); ++l) {
    sum_w[l] = torch::zeros_like(layers[l]->weight);
    sum_b[l] = torch::zeros_like(layers[l]->bias);
  }
  for (int64_t s0 = 0; s0 < x.size(0); s0 += chunk) {
    const int64_t b = std::min(chunk, x.size(0) - s0);
    std::vector<torch::Tensor> inputs, outputs;
    auto h = x.narrow(0, s0, b);
    for (auto& any : *m) {
      const bool dense = any.ptr()->as<DpLinearImpl>() != nullptr;
      if (dense) inputs.push_back(h.detach());
      h = any.forward(h);
      if (dense) {
        h.retain_grad();
        outputs.push_back(h);
      }
    }
    m->zero_grad();
    (train::compute_loss(loss_spec(), h, y.narrow(0, s0, b)) * double(b)).backward();
    std::vector<torch::Tensor> gw;
    auto sq = torch::zeros({b});
    for (size_t l = 0; l < layers.size(); ++l) {
      gw.push_back(torch::einsum("bo,bi->boi", {outputs[l].grad(), inputs[l]}));  // per-example weight gradients
      sq = sq + gw.back().pow(2).sum({1, 2}) + outputs[l].grad().pow(2).sum(1);
    }
    auto factor = (clip / (sq.sqrt() + 1e-6)).clamp_max(1.0);
    torch::NoGradGuard no_grad;
    for (size_t l = 0; l < layers.size(); ++l) {
      sum_w[l] += (gw[l] * factor.view({-1, 1, 1})).sum(0);
      sum_b[l] += (outputs[l].grad() * factor.view({-1, 1})).sum(0);
    }
  }
  torch::NoGradGuard no_grad;
  for (size_t l = 0; l < layers.size(); ++l) {
    sum_w[l] += at::normal(0.0, sigma * clip, sum_w[l].sizes(), gen);
    sum_b[l] += at::normal(0.0, sigma * clip, sum_b[l].sizes(), gen);
    layers[l]->weight.mutable_grad() = sum_w[l] / double(x.size(0));
    layers[l]->bias.mutable_grad() = sum_b[l] / double(x.size(0));
  }
  opt.step();
  dp::project(*m);
}

struct Result {
  double ms = 0, peak_mb = 0;
};

template <typename Step>
Result time_steps(int64_t steps, Step&& step) {
  step();  // warm-up
  reset_peak_rss();
  const auto t0 = Clock::now();
  for (int64_t i = 0; i < steps; ++i) step();
  return {std::chrono::duration<double, std::milli>(Clock::now() - t0).count() / double(steps), peak_rss_mb()};
}
}  // namespace

int main(int argc, char** argv) {
  configure_allocator();
  const int threads = configure_threads();
  int64_t batch = 4096, steps = 20;
  for (int i = 1; i + 1 < argc; ++i) {
    if (!std::strcmp(argv[i], "--batch")) batch = std::atoll(argv[i + 1]);
    if (!std::strcmp(argv[i], "--steps")) steps = std::atoll(argv[i + 1]);
  }
  const double q = double(batch) / 60000;
  const double sigma = dp::calibrate_sigma(q, 10 * std::llround(1 / q), 3.0, 1e-5);
  std::printf("bench_dp: dp-fmnist (784 -> 256 -> 256 -> 10), batch %ld (q %.4f), sigma %.4f (epsilon 3 in 10 "
              "epochs), %ld steps, %d threads\n\n",
              (long)batch, q, sigma, (long)steps, threads);
  torch::manual_seed(1);
  auto x = torch::rand({batch, 1, 28, 28}), y = torch::randint(0, 10, {batch}, torch::kLong);
  auto gen = at::make_generator<at::CPUGeneratorImpl>(2);
  const char* names[] = {"non-private (same model)", "lip-dp (no clipping)", "DP-SGD, per-example clipping"};
  Result r[3];
  for (int mode = 0; mode < 3; ++mode) {
    auto m = make_model();
    torch::optim::Adam opt(m->parameters(), torch::optim::AdamOptions(1e-3));
    r[mode] = time_steps(steps, [&] {
      if (mode == 0) plain_step(m, opt, x, y);
      if (mode == 1) lipdp_step(m, opt, x, y, sigma, gen);
      if (mode == 2) clipping_step(m, opt, x, y, sigma, 1.0, gen, 512);
    });
  }
  std::printf("%-32s %10s %12s %10s %12s\n", "training step", "ms/step", "images/s", "vs plain", "peak RSS MB");
  for (int mode = 0; mode < 3; ++mode)
    std::printf("%-32s %10.1f %12.0f %9.2fx %12.0f\n", names[mode], r[mode].ms, batch * 1000.0 / r[mode].ms,
                r[mode].ms / r[0].ms, r[mode].peak_mb);
  std::printf("\nlip-dp is %.2fx faster than per-example clipping\n", r[2].ms / r[1].ms);
  return 0;
}
