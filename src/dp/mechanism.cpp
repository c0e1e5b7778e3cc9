#include "lipkit/dp/mechanism.h"

#include <torch/torch.h>

#include <cmath>

#include "lipkit/layers/dp_linear.h"

namespace lipkit::dp {

NoiseMode parse_noise_mode(const std::string& name) {
  if (name == "global") return NoiseMode::Global;
  if (name == "per_layer") return NoiseMode::PerLayer;
  TORCH_CHECK(false, "dp.mode must be global or per_layer, got '", name, "'");
}

void add_noise(const std::vector<LayerSensitivity>& layers, double sigma, NoiseMode mode, at::Generator& gen) {
  TORCH_CHECK(sigma >= 0 && std::isfinite(sigma), "dp::add_noise: sigma must be >= 0 and finite, got ", sigma);
  const double global = global_sensitivity(layers), per = std::sqrt(double(layers.size()));
  torch::NoGradGuard no_grad;
  for (const auto& l : layers) {
    const double std = sigma * (mode == NoiseMode::Global ? global : per * l.bound);
    for (auto p : l.parameters) {
      if (!p.grad().defined()) p.mutable_grad() = torch::zeros_like(p);
      // drawn on the CPU in the gradient's dtype (float32 Gaussian noise, as DP-SGD libraries add it)
      auto noise = at::normal(0.0, std, p.sizes(), gen, p.grad().options().device(torch::kCPU));
      p.mutable_grad().add_(noise.to(p.grad().device()));
    }
  }
}

void project(torch::nn::Module& model) {
  for (auto& m : model.modules(/*include_self=*/true))
    if (auto* d = m->as<DpLinearImpl>()) d->project();
}

}  // namespace lipkit::dp
