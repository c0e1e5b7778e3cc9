#pragma once
// The papers' architectures, built from a ModelSpec (JSON-editable via configs/*.json).

#include <torch/nn/modules/container/sequential.h>

#include <string>
#include <vector>

namespace lipkit::models {

/// CPL/SLL (official SLL code): InputNormalization (mean only) -> PadChannels(in -> width) ->
/// conv_layers x residual conv (width, hidden conv_hidden, 3x3) -> SumPool2d(pool) -> Flatten ->
/// dense_layers x residual dense (width * (size/pool)^2, hidden dense_hidden) -> head.
/// AOL (patchwise, Prach & Lampert): PixelUnshuffle(pool) -> AolConv2d 1x1 (-> width) + MaxMin ->
/// conv_layers x (AolConv2d 3x3 + MaxMin) -> AolConv2d 1x1 -> FirstChannels(conv_hidden) -> Flatten
/// -> dense_layers x (AolLinear + MaxMin) -> head.
/// plain (an ordinary CNN, no Lipschitz control): InputNormalization -> conv_layers x (Conv2d 3x3
/// -> width, ReLU) -> AvgPool2d(pool) -> Flatten -> dense_layers x (Linear -> dense_hidden, ReLU) -> head;
/// certified only through a computed bound (lipschitz::upper_bound, `lipkit certify --bound gram`).
/// sortnet (SortNet MLP, Zhang et al. 2022): InputNormalization -> Flatten -> LinfDistLinear(pixels
/// -> width) -> MeanShift -> (dense_layers - 2) x (SortNetLinear(width -> width, q) -> MeanShift) ->
/// SortNetLinear(width -> classes, q, bias) -> NegatedDistance. linfdist: the same with every layer
/// a LinfDistLinear (the l_inf-dist net; q unused). Both are 1-Lipschitz in l_inf; head unused.
/// activation: "" (the family's own), or "spline": learnable LinearSplines (Ducotterd et al. 2024)
/// with spline_knots knots spaced spline_grid apart. aol: one per channel in place of every MaxMin,
/// initialised as spline_init (identity | relu | absolute_value | maxmin). cpl / sll: inside the dense
/// residual layers only, monotone (slopes in [0, 1], what their proofs need), ReLU init; the conv
/// layers keep ReLU. Other families take no activation option.
/// monotonic (Kitouni et al. 2023, tables): InputNormalization (the training rows' mean and std per
/// feature) -> MonotonicResidual(lambda, constraints `monotone`) around LipschitzLinear(in -> width,
/// one-inf) -> (dense_layers - 2) x (GroupSort(group_size), LipschitzLinear(width -> width, inf)) ->
/// GroupSort -> LipschitzLinear(width -> num_classes, inf), each layer lambda^(1/dense_layers).
/// in_channels is the number of (encoded) features; `increasing` / `decreasing` name features (for
/// every output, or per output in `monotonic_outputs`: the official 2-D constraint matrix) and are
/// resolved into `monotone` (+1 / -1 / 0 per feature, or per output and feature, row-major) from the data.
/// dp (Bethune et al. 2024, private training without clipping): InputNormalization (mean) -> Flatten
/// -> DpBoundedInput(input_norm) -> (dense_layers - 1) x (DpLinear(-> width), GroupSort(group_size))
/// -> DpLinear(-> num_classes). 1-Lipschitz in l2 (certified as the others), and every parametrised
/// layer has an analytic per-example gradient bound (dp/sensitivity.h).
/// head: "lln" (NormalizedLinear, certified with the per-pair rule), "first" (FirstChannels) or
/// "linear" (a plain Linear, for plain networks).
/// The features an output is monotone in (names, resolved from the data).
struct MonotoneSet {
  std::vector<std::string> increasing, decreasing;
};

struct ModelSpec {
  std::string family = "sll";  // cpl | sll | aol | plain | sortnet | linfdist | monotonic | dp
  int64_t conv_layers = 20;
  int64_t dense_layers = 7;
  int64_t width = 45;
  int64_t conv_hidden = 5;
  int64_t dense_hidden = 2048;
  int64_t pool = 4;
  std::string head = "lln";
  // sortnet / linfdist: keep probability, identity init of layers with in <= out, eval order stats
  double q = 0.7;
  double identity_init = 10.0;
  int64_t sort_k = 10;
  // the activation ("" | "maxmin" for aol | "relu" for cpl/sll | "spline"), and the splines' grid
  std::string activation;
  int64_t spline_knots = 51;
  double spline_grid = 0.1;
  std::string spline_init = "identity";
  // monotonic: lambda, the GroupSort group, the constrained features (names) and their resolution
  double lambda = 1.0;
  int64_t group_size = 2;
  std::vector<std::string> increasing, decreasing;
  std::vector<MonotoneSet> monotonic_outputs;  // one per output; empty: increasing / decreasing for all
  std::vector<int64_t> monotone;  // features, or outputs x features: +1 / -1 / 0
  // dp: the l2 norm every (normalised, flattened) input is clipped to
  double input_norm = 10.0;
  // Filled from the data set at build time.
  int64_t in_channels = 3;
  int64_t image_size = 32;
  int64_t num_classes = 10;
  std::vector<double> mean;  // per-channel input mean subtracted inside the model
  std::vector<double> std;   // empty: no division (Lipschitz 1 w.r.t. pixels)
};

/// Named presets: cpl-s/m/l/xl, sll-s/m/l/xl, aol-s (CIFAR sizes), and cpl-fmnist, sll-fmnist,
/// aol-fmnist (small, for 28x28 grayscale on 2 cores), aol-spline-fmnist and sll-spline-fmnist (the
/// same with learnable spline activations), plain-fmnist (an ordinary CNN); SortNet:
/// sortnet-mnist (eps 0.1 setting), sortnet-mnist-0.3, sortnet-cifar10-2, sortnet-cifar10-8 (the
/// paper MLPs, width 5120), sortnet-fmnist and linfdist-fmnist (small, lipkit's); monotonic-autompg; dp-fmnist (a private
/// MLP). throws: c10::Error listing the known names.
ModelSpec model_preset(const std::string& name);
std::vector<std::string> preset_names();

/// Builds the model. throws: c10::Error when the spec is inconsistent (image size not divisible by
/// pool, unknown family or head), naming the field.
torch::nn::Sequential build_model(const ModelSpec& spec);

}  // namespace lipkit::models
