#include "lipkit/train/throughput.h"

#include "lipkit/runtime.h"

#include <torch/torch.h>

#include <chrono>
#include <fstream>
#include <string>

namespace lipkit::train {

namespace {
using Clock = std::chrono::steady_clock;
}  // namespace

Throughput measure_throughput(torch::nn::Sequential& model, std::vector<int64_t> shape, int64_t steps) {
  Throughput t;
  const int64_t batch = shape[0];
  auto x = torch::rand(shape);
  auto y = torch::randint(0, 10, {batch}, torch::kLong);
  // Inference first: in a fresh process its peak is the model plus eval activations, not the heap
  // that training leaves behind.
  {
    model->eval();
    torch::NoGradGuard no_grad;
    reset_peak_rss();
    model->forward(x);  // warm-up; also computes and caches the eval-mode bounds
    model->forward(x);
    auto t0 = Clock::now();
    for (int64_t i = 0; i < steps; ++i) model->forward(x);
    t.infer_images_per_second = batch * steps / std::chrono::duration<double>(Clock::now() - t0).count();
    t.infer_peak_rss_mb = peak_rss_mb();
  }
  torch::optim::Adam opt(model->parameters(), torch::optim::AdamOptions(1e-4));
  model->train();
  auto step = [&] {
    opt.zero_grad();
    auto loss = torch::cross_entropy_loss(model->forward(x), y);
    loss.backward();
    opt.step();
  };
  reset_peak_rss();
  step();  // warm-up (allocations, oneDNN primitive creation)
  step();
  auto t0 = Clock::now();
  for (int64_t i = 0; i < steps; ++i) step();
  t.train_images_per_second = batch * steps / std::chrono::duration<double>(Clock::now() - t0).count();
  t.train_peak_rss_mb = peak_rss_mb();
  return t;
}

namespace {
bool distance_family(const models::ModelSpec& s) { return s.family == "sortnet" || s.family == "linfdist"; }
// (in, out) of each layer of a distance net: pixels -> width, (depth - 2) x width -> width, width -> classes
std::vector<std::pair<int64_t, int64_t>> distance_layers(const models::ModelSpec& s) {
  std::vector<std::pair<int64_t, int64_t>> l{{s.in_channels * s.image_size * s.image_size, s.width}};
  for (int64_t i = 0; i + 2 < s.dense_layers; ++i) l.emplace_back(s.width, s.width);
  l.emplace_back(s.width, s.num_classes);
  return l;
}
}  // namespace

torch::nn::Sequential plain_counterpart(const models::ModelSpec& s) {
  namespace nn = torch::nn;
  nn::Sequential net;
  if (distance_family(s)) {  // an MLP with the same weight shapes
    net->push_back(nn::Flatten());
    for (const auto& [in, out] : distance_layers(s)) {
      net->push_back(nn::Linear(in, out));
      net->push_back(nn::ReLU());
    }
    return net;
  }
  const int64_t side = s.image_size / s.pool;
  net->push_back(nn::Conv2d(nn::Conv2dOptions(s.in_channels, s.width, 1)));  // stands for channel padding
  for (int64_t i = 0; i < s.conv_layers; ++i) {
    net->push_back(nn::Conv2d(nn::Conv2dOptions(s.width, s.conv_hidden, 3).padding(1)));
    net->push_back(nn::ReLU());
    net->push_back(nn::Conv2d(nn::Conv2dOptions(s.conv_hidden, s.width, 3).padding(1).bias(false)));
  }
  net->push_back(nn::AvgPool2d(nn::AvgPool2dOptions(s.pool)));
  net->push_back(nn::Flatten());
  const int64_t f = s.width * side * side;
  for (int64_t i = 0; i < s.dense_layers; ++i) {
    net->push_back(nn::Linear(f, s.dense_hidden));
    net->push_back(nn::ReLU());
    net->push_back(nn::Linear(nn::LinearOptions(s.dense_hidden, f).bias(false)));
  }
  net->push_back(nn::Linear(f, s.num_classes));
  return net;
}

double forward_flops(const models::ModelSpec& s) {
  if (distance_family(s)) {  // two ops per (input, output) pair, as a matrix product's multiply-add
    double flops = 0;
    for (const auto& [in, out] : distance_layers(s)) flops += 2.0 * in * out;
    return flops;
  }
  const double hw = double(s.image_size) * s.image_size;
  const double side = double(s.image_size) / s.pool;
  const double f = s.width * side * side;
  double flops = 0;
  flops += s.conv_layers * 2.0 * (2.0 * s.width * s.conv_hidden * 9 * hw);  // conv + adjoint
  flops += s.dense_layers * 2.0 * (2.0 * f * s.dense_hidden);
  flops += 2.0 * f * s.num_classes;
  return flops;
}

PresetBenchmark benchmark_preset(const std::string& preset, int64_t batch, int64_t steps) {
  auto spec = models::model_preset(preset);
  spec.in_channels = 3;
  spec.image_size = 32;
  spec.num_classes = 10;
  torch::manual_seed(0);
  auto model = models::build_model(spec);
  PresetBenchmark b;
  b.ours = measure_throughput(model, {batch, 3, 32, 32}, steps);
  auto plain = plain_counterpart(spec);
  b.plain = measure_throughput(plain, {batch, 3, 32, 32}, steps);
  b.train_ratio = b.plain.train_images_per_second / b.ours.train_images_per_second;
  b.infer_ratio = b.plain.infer_images_per_second / b.ours.infer_images_per_second;
  // training ~ 3 forward passes of matrix products (forward, input grad, weight grad)
  b.gflops = 3 * forward_flops(spec) * b.ours.train_images_per_second / 1e9;
  return b;
}

}  // namespace lipkit::train
