#pragma once
// Training-step and inference throughput of a model, with peak memory: what `lipkit bench` reports.

#include <torch/nn/modules/container/sequential.h>

#include <vector>

#include "lipkit/models/presets.h"

namespace lipkit::train {

struct Throughput {
  double train_images_per_second = 0;
  double infer_images_per_second = 0;
  double train_peak_rss_mb = 0;  // process resident-set peak during the training steps
  double infer_peak_rss_mb = 0;
};

/// Times `steps` eval forwards (no grad, eval mode: the certification path), then `steps` Adam
/// training steps (forward, loss, backward, update), on random inputs of (batch, C, H, W), after two
/// warm-up steps each; call it in a fresh process for meaningful peaks. Peak RSS is read from /proc (VmHWM, reset before each phase) where available.
Throughput measure_throughput(torch::nn::Sequential& model, std::vector<int64_t> input_shape,
                              int64_t steps);

/// The same architecture without the Lipschitz constraints: every residual layer becomes its two
/// plain weight layers with a ReLU (conv C->hidden, ReLU, conv hidden->C; Linear likewise), the
/// head a plain Linear. Same weight shapes, same FLOPs for the matrix products. Distance nets
/// (sortnet, linfdist): an MLP of Linear + ReLU layers with the distance layers' weight shapes.
torch::nn::Sequential plain_counterpart(const models::ModelSpec& spec);

/// One row of `lipkit bench`: a preset at a batch size on random 3x32x32 inputs, 10 classes, against
/// its plain counterpart measured in the same process.
struct PresetBenchmark {
  Throughput ours, plain;
  double train_ratio = 0, infer_ratio = 0;  // lipkit time / plain time
  double gflops = 0;                        // achieved in training: 3 x forward FLOPs x images/s
};
PresetBenchmark benchmark_preset(const std::string& preset, int64_t batch, int64_t steps);

/// Multiply-add FLOPs (2 per MAC) of one forward pass for one image, counting the matrix products
/// of the residual layers (conv/dense and their adjoint) and the head; for distance nets 2 ops per
/// (input, output) pair of each layer.
double forward_flops(const models::ModelSpec& spec);

}  // namespace lipkit::train
