#pragma once
// The Gaussian mechanism of private training without clipping: noise added to the summed gradient,
// scaled by the layers' analytic sensitivities (dp/sensitivity.h), and the projection after the step.

#include <ATen/core/Generator.h>
#include <torch/nn/module.h>

#include <string>
#include <vector>

#include "lipkit/dp/sensitivity.h"

namespace lipkit::dp {

/// global: N(0, (sigma Delta)^2) on every coordinate, Delta = sqrt(sum_l Delta_l^2) (one mechanism of
/// noise multiplier sigma). per_layer: N(0, (sigma sqrt(L) Delta_l)^2) on layer l's coordinates: the
/// layers' gradients rescaled by 1 / (sqrt(L) Delta_l) have joint sensitivity 1, so this is also one
/// Gaussian mechanism of multiplier sigma, with noise proportional to each layer's own sensitivity.
enum class NoiseMode { Global, PerLayer };
NoiseMode parse_noise_mode(const std::string& name);  // "global" | "per_layer"; throws naming the text

/// Adds the noise to the parameters' .grad, which must hold the SUM of the per-example gradients
/// (an undefined .grad counts as zero: an empty Poisson batch still gets its noise).
void add_noise(const std::vector<LayerSensitivity>& layers, double sigma, NoiseMode mode, at::Generator& gen);

/// DpLinear::project on every DpLinear of `model` (after each optimizer step).
void project(torch::nn::Module& model);

}  // namespace lipkit::dp
