#include "lipkit/models/presets.h"

#include <torch/torch.h>

#include "lipkit/lipkit.h"

namespace lipkit::models {

namespace {
ModelSpec residual(const std::string& family, int64_t conv, int64_t dense, int64_t width,
                   int64_t dense_hidden) {
  ModelSpec s;
  s.family = family;
  s.conv_layers = conv;
  s.dense_layers = dense;
  s.width = width;
  s.dense_hidden = dense_hidden;
  return s;
}
// SortNet MLP: depth distance layers of the given width (official ell_inf_models.py)
ModelSpec sortnet(int64_t depth, int64_t width, double q, double identity) {
  ModelSpec s;
  s.family = "sortnet";
  s.conv_layers = 0;
  s.dense_layers = depth;
  s.width = width;
  s.q = q;
  s.identity_init = identity;
  s.head = "distance";
  return s;
}
}  // namespace

std::vector<std::string> preset_names() {
  return {"cpl-s", "cpl-m", "cpl-l", "cpl-xl", "sll-s", "sll-m", "sll-l", "sll-xl",
          "aol-s", "cpl-fmnist", "sll-fmnist", "aol-fmnist", "aol-spline-fmnist", "sll-spline-fmnist", "plain-fmnist", "monotonic-autompg",
          "sortnet-mnist", "sortnet-mnist-0.3", "sortnet-cifar10-2", "sortnet-cifar10-8",
          "sortnet-fmnist", "linfdist-fmnist", "dp-fmnist"};
}

ModelSpec model_preset(const std::string& name) {
  // Sizes of the official SLL code; CPL-S as in its own code (width 30), larger CPL sizes as SLL's.
  if (name == "cpl-s") return residual("cpl", 20, 7, 30, 2048);
  if (name == "cpl-m") return residual("cpl", 30, 10, 60, 2048);
  if (name == "cpl-l") return residual("cpl", 50, 10, 90, 2048);
  if (name == "cpl-xl") return residual("cpl", 70, 15, 120, 2048);
  if (name == "sll-s") return residual("sll", 20, 7, 45, 2048);
  if (name == "sll-m") return residual("sll", 30, 10, 60, 2048);
  if (name == "sll-l") return residual("sll", 50, 10, 90, 2048);
  if (name == "sll-xl") return residual("sll", 70, 15, 120, 2048);
  if (name == "aol-s") {  // AOL-Small: 12 convs of 192 channels, 16 kept channels, 14 dense layers
    ModelSpec s = residual("aol", 12, 14, 192, 0);
    s.conv_hidden = 16;
    s.head = "first";
    return s;
  }
  // lipkit's small presets for 28x28 grayscale: minutes per epoch on 2 cores (docs/RESULTS.md).
  if (name == "cpl-fmnist") return residual("cpl", 4, 3, 16, 1024);
  if (name == "sll-fmnist") return residual("sll", 4, 3, 16, 1024);
  if (name == "aol-fmnist") {  // LLN head: trains far faster than first-k in a few epochs
    ModelSpec s = residual("aol", 4, 4, 64, 0);
    s.conv_hidden = 16;
    return s;
  }
  if (name == "aol-spline-fmnist") {  // the same net with a learnable spline per channel for MaxMin (identity init)
    ModelSpec s = model_preset("aol-fmnist");
    s.activation = "spline";
    return s;
  }
  if (name == "sll-spline-fmnist") {  // monotone splines inside the dense residuals
    ModelSpec s = model_preset("sll-fmnist");
    s.activation = "spline";
    return s;
  }
  if (name == "monotonic-autompg") {  // the monotonic-network papers' Auto MPG setting
    ModelSpec s;
    s.family = "monotonic";
    s.conv_layers = 0;
    s.dense_layers = 3;
    s.width = 32;
    s.lambda = 2.0;
    s.decreasing = {"Displacement", "Horsepower", "Weight_in_lbs"};
    s.num_classes = 1;
    return s;
  }
  if (name == "plain-fmnist") {  // an ordinary CNN, certified only through `--bound`
    ModelSpec s = residual("plain", 3, 1, 16, 256);
    s.head = "linear";
    return s;
  }
  // The papers' SortNet MLPs (commands folder of the official code)
  if (name == "sortnet-mnist") return sortnet(5, 5120, 0.7, 10);
  if (name == "sortnet-mnist-0.3") return sortnet(5, 5120, 0.75, 10);
  if (name == "sortnet-cifar10-2") return sortnet(6, 5120, 0.75, 0);
  if (name == "sortnet-cifar10-8") return sortnet(6, 5120, 0.85, 0);
  // lipkit's small ones for 28x28 (docs/RESULTS.md): width 512; without the identity init, which
  // slowed SortNet's random-subset training down in short runs (it helps the plain l_inf-dist net)
  if (name == "sortnet-fmnist") return sortnet(5, 512, 0.7, 0);
  if (name == "linfdist-fmnist") {
    ModelSpec s = sortnet(5, 512, 1.0, 10);
    s.family = "linfdist";
    return s;
  }
  if (name == "dp-fmnist") {  // lip-dp's private MLP: clipped input, 3 projected dense layers, GroupSort
    ModelSpec s;
    s.family = "dp";
    s.conv_layers = 0;
    s.dense_layers = 3;
    s.width = 256;
    s.group_size = 2;
    s.input_norm = 20.0;
    return s;
  }
  std::string known;
  for (const auto& n : preset_names()) known += (known.empty() ? "" : ", ") + n;
  TORCH_CHECK(false, "unknown model preset '", name, "'; known presets: ", known);
}

namespace {
torch::nn::Sequential distance_model(const ModelSpec& s, const std::vector<double>& mean) {
  TORCH_CHECK(s.dense_layers >= 2, "model.dense_layers (the depth of a ", s.family,
              " net) must be >= 2, got ", s.dense_layers);
  TORCH_CHECK(s.width >= 1, "model.width must be >= 1, got ", s.width);
  TORCH_CHECK(s.q > 0 && s.q <= 1, "model.q (keep probability) must be in (0, 1], got ", s.q);
  TORCH_CHECK(s.sort_k >= 1 && s.sort_k <= 64, "model.sort_k must be in [1, 64], got ", s.sort_k);
  TORCH_CHECK(s.identity_init >= 0, "model.identity_init must be >= 0, got ", s.identity_init);
  const bool sort = s.family == "sortnet";
  torch::nn::Sequential net;
  net->push_back("normalize", InputNormalization(InputNormalizationOptions(mean, s.std)));
  net->push_back("flatten", torch::nn::Flatten());
  const int64_t pixels = s.in_channels * s.image_size * s.image_size;
  // the first layer is a plain l_inf-distance layer in both families (official SortMLPModel)
  net->push_back(LinfDistLinear(LinfDistLinearOptions(pixels, s.width).identity_init(s.identity_init)));
  net->push_back(MeanShift(s.width));
  for (int64_t i = 0; i + 2 < s.dense_layers; ++i) {
    if (sort) {
      net->push_back(SortNetLinear(SortNetLinearOptions(s.width, s.width).q(s.q).k(s.sort_k)
                                       .identity_init(s.identity_init).seed(static_cast<uint64_t>(i + 1))));
    } else {
      net->push_back(LinfDistLinear(LinfDistLinearOptions(s.width, s.width).identity_init(s.identity_init)));
    }
    net->push_back(MeanShift(s.width));
  }
  if (sort) {
    net->push_back("last", SortNetLinear(SortNetLinearOptions(s.width, s.num_classes).q(s.q).k(s.sort_k)
                                             .bias(true).seed(static_cast<uint64_t>(s.dense_layers))));
  } else {
    net->push_back("last", LinfDistLinear(LinfDistLinearOptions(s.width, s.num_classes).bias(true)));
  }
  net->push_back("logits", NegatedDistance());
  return net;
}
}  // namespace

namespace {
std::vector<double> input_mean(const ModelSpec& s) {
  std::vector<double> mean = s.mean.empty() ? std::vector<double>(s.in_channels, 0.0) : s.mean;
  TORCH_CHECK(static_cast<int64_t>(mean.size()) == s.in_channels, "model.mean has ", mean.size(),
              " values for ", s.in_channels, " input channels");
  return mean;
}

void check_activation(const ModelSpec& s) {
  const std::string own = s.family == "aol" ? "maxmin" : (s.family == "cpl" || s.family == "sll") ? "relu" : "";
  TORCH_CHECK(s.activation.empty() || (!own.empty() && (s.activation == own || s.activation == "spline")),
              "model.activation must be ", own.empty() ? "empty for the " + s.family + " family (it has no activation option)"
                                                       : own + " or spline for the " + s.family + " family",
              ", got '", s.activation, "'");
}

void check_image_spec(const ModelSpec& s) {
  TORCH_CHECK(s.head == "lln" || s.head == "first" || s.head == "linear",
              "model.head must be lln, first or linear, got '", s.head, "'");
  TORCH_CHECK(s.pool >= 1 && s.image_size % s.pool == 0, "model.pool (", s.pool,
              ") must divide the image size (", s.image_size, ")");
  TORCH_CHECK(s.width >= s.in_channels, "model.width (", s.width,
              ") must be at least the input channels (", s.in_channels, ")");
  TORCH_CHECK(s.conv_layers >= 0 && s.dense_layers >= 0, "model.conv_layers and model.dense_layers must be >= 0, got ",
              s.conv_layers, " and ", s.dense_layers);
}

// Conv2d + ReLU, average pooling, Linear + ReLU: no Lipschitz control. Returns the feature count.
int64_t plain_body(torch::nn::Sequential& net, const ModelSpec& s) {
  namespace nn = torch::nn;
  const int64_t side = s.image_size / s.pool;
  int64_t c = s.in_channels;
  for (int64_t i = 0; i < s.conv_layers; ++i) {
    net->push_back(nn::Conv2d(nn::Conv2dOptions(c, s.width, 3).padding(1)));
    net->push_back(nn::ReLU());
    c = s.width;
  }
  net->push_back(nn::AvgPool2d(nn::AvgPool2dOptions(s.pool)));
  net->push_back(nn::Flatten());
  int64_t features = c * side * side;
  for (int64_t i = 0; i < s.dense_layers; ++i) {
    net->push_back(nn::Linear(features, s.dense_hidden));
    net->push_back(nn::ReLU());
    features = s.dense_hidden;
  }
  return features;
}

// The activation of `channels` channels between two AOL layers: MaxMin or a LinearSpline.
torch::nn::AnyModule aol_activation(const ModelSpec& s, int64_t channels) {
  if (s.activation != "spline") return torch::nn::AnyModule(MaxMin());
  return torch::nn::AnyModule(LinearSpline(
      LinearSplineOptions(channels).num_knots(s.spline_knots).grid(s.spline_grid).init(s.spline_init)));
}

int64_t aol_body(torch::nn::Sequential& net, const ModelSpec& s) {
  const int64_t side = s.image_size / s.pool, c0 = s.in_channels * s.pool * s.pool;
  TORCH_CHECK(s.activation == "spline" || s.width % 2 == 0, "model.width must be even for MaxMin, got ", s.width);
  TORCH_CHECK(s.conv_hidden <= s.width, "model.conv_hidden (kept channels) must be <= width, got ",
              s.conv_hidden, " > ", s.width);
  net->push_back("unshuffle", PixelUnshuffle(s.pool));
  net->push_back(AolConv2d(AolConv2dOptions(c0, s.width).kernel_size(1)));
  net->push_back(aol_activation(s, s.width));
  for (int64_t i = 0; i < s.conv_layers; ++i) {
    net->push_back(AolConv2d(s.width, s.width));
    net->push_back(aol_activation(s, s.width));
  }
  net->push_back(AolConv2d(AolConv2dOptions(s.width, s.width).kernel_size(1)));
  net->push_back(FirstChannels(s.conv_hidden));
  net->push_back(torch::nn::Flatten());
  const int64_t features = s.conv_hidden * side * side;
  TORCH_CHECK(s.activation == "spline" || features % 2 == 0, "AOL dense width (conv_hidden * side^2 = ", features,
              ") must be even for MaxMin");
  for (int64_t i = 0; i < s.dense_layers; ++i) {
    net->push_back(AolLinear(features, features));
    net->push_back(aol_activation(s, features));
  }
  return features;
}

// The monotonic net: standardisation, then the residual around a lambda-Lipschitz (l1 -> l_inf) body.
torch::nn::Sequential monotonic_model(const ModelSpec& s) {
  TORCH_CHECK(s.dense_layers >= 2, "model.dense_layers (the depth of a monotonic net) must be >= 2, got ",
              s.dense_layers);
  TORCH_CHECK(s.width >= 1 && s.width % s.group_size == 0, "model.width (", s.width,
              ") must be a positive multiple of model.group_size (", s.group_size, ")");
  TORCH_CHECK(s.lambda > 0, "model.lambda must be positive, got ", s.lambda);
  std::vector<int64_t> c = s.monotone.empty() ? std::vector<int64_t>(s.in_channels, 0) : s.monotone;
  const auto values = static_cast<int64_t>(c.size());
  TORCH_CHECK(values == s.in_channels || values == s.in_channels * s.num_classes, "model.monotone has ", values,
              " values for ", s.in_channels, " features and ", s.num_classes, " outputs (one row, or one per output)");
  const double per = std::pow(s.lambda, 1.0 / s.dense_layers);
  auto layer = [&](int64_t in, int64_t out, const char* kind) {
    return LipschitzLinear(LipschitzLinearOptions(in, out).kind(kind).lipschitz(per));
  };
  torch::nn::Sequential body(layer(s.in_channels, s.width, "one-inf"));
  for (int64_t i = 0; i + 2 < s.dense_layers; ++i) {
    body->push_back(GroupSort(GroupSortOptions(s.group_size)));
    body->push_back(layer(s.width, s.width, "inf"));
  }
  body->push_back(GroupSort(GroupSortOptions(s.group_size)));
  body->push_back(layer(s.width, s.num_classes, "inf"));
  auto constraints = torch::tensor(c).view({-1, s.in_channels}).expand({s.num_classes, -1}).contiguous();
  torch::nn::Sequential net;
  net->push_back("normalize", InputNormalization(InputNormalizationOptions(input_mean(s), s.std)));
  net->push_back("monotonic", MonotonicResidual(body, MonotonicResidualOptions(constraints).lipschitz(s.lambda)));
  return net;
}

// The private MLP (lip-dp): mean subtraction, flatten, input clipping to norm input_norm, then
// DpLinear + GroupSort layers and a DpLinear head; every parametrised layer has a sensitivity bound.
torch::nn::Sequential dp_model(const ModelSpec& s) {
  TORCH_CHECK(s.dense_layers >= 1, "model.dense_layers of a dp net must be >= 1, got ", s.dense_layers);
  TORCH_CHECK(s.width >= 1 && s.width % s.group_size == 0, "model.width (", s.width,
              ") must be a positive multiple of model.group_size (", s.group_size, ")");
  torch::nn::Sequential net;
  net->push_back("normalize", InputNormalization(InputNormalizationOptions(input_mean(s), s.std)));
  net->push_back("flatten", torch::nn::Flatten());
  net->push_back("clip", DpBoundedInput(s.input_norm));
  int64_t in = s.in_channels * s.image_size * s.image_size;
  for (int64_t i = 0; i + 1 < s.dense_layers; ++i) {
    net->push_back(DpLinear(in, s.width));
    net->push_back(GroupSort(GroupSortOptions(s.group_size)));
    in = s.width;
  }
  net->push_back("head", DpLinear(in, s.num_classes));
  return net;
}

// CPL or SLL: channel padding, residual convs, sum pooling, residual dense layers.
int64_t residual_body(torch::nn::Sequential& net, const ModelSpec& s) {
  const bool cpl = s.family == "cpl";
  const std::string act = s.activation == "spline" ? "spline" : "relu";
  const int64_t side = s.image_size / s.pool;
  net->push_back("pad", PadChannels(s.in_channels, s.width));
  for (int64_t i = 0; i < s.conv_layers; ++i) {
    if (cpl) net->push_back(CplConv2d(s.width, s.conv_hidden));
    else net->push_back(SllConv2d(s.width, s.conv_hidden));
  }
  net->push_back("pool", SumPool2d(s.pool));
  net->push_back("flatten", torch::nn::Flatten());
  const int64_t features = s.width * side * side;
  for (int64_t i = 0; i < s.dense_layers; ++i) {
    if (cpl) {
      net->push_back(CplLinear(CplLinearOptions(features, s.dense_hidden).activation(act).spline_knots(s.spline_knots)
                                   .spline_grid(s.spline_grid)));
    } else {
      net->push_back(SllLinear(SllLinearOptions(features, s.dense_hidden).activation(act).spline_knots(s.spline_knots)
                                   .spline_grid(s.spline_grid)));
    }
  }
  return features;
}

void add_head(torch::nn::Sequential& net, const ModelSpec& s, int64_t features) {
  if (s.head == "lln") {
    net->push_back("head", NormalizedLinear(features, s.num_classes));
  } else if (s.head == "linear") {
    net->push_back("head", torch::nn::Linear(features, s.num_classes));
  } else {
    TORCH_CHECK(features >= s.num_classes, "head 'first' needs at least ", s.num_classes,
                " features, the body has ", features);
    net->push_back("head", FirstChannels(s.num_classes));
  }
}
}  // namespace

torch::nn::Sequential build_model(const ModelSpec& s) {
  TORCH_CHECK(s.family == "cpl" || s.family == "sll" || s.family == "aol" || s.family == "plain" ||
                  s.family == "sortnet" || s.family == "linfdist" || s.family == "monotonic" || s.family == "dp",
              "model.family must be cpl, sll, aol, plain, sortnet, linfdist, monotonic or dp, got '", s.family, "'");
  check_activation(s);
  if (s.family == "monotonic") return monotonic_model(s);
  if (s.family == "dp") return dp_model(s);
  if (s.family == "sortnet" || s.family == "linfdist") return distance_model(s, input_mean(s));
  check_image_spec(s);
  torch::nn::Sequential net;
  net->push_back("normalize", InputNormalization(InputNormalizationOptions(input_mean(s), s.std)));
  const int64_t features = s.family == "plain" ? plain_body(net, s)
                           : s.family == "aol" ? aol_body(net, s)
                                               : residual_body(net, s);
  add_head(net, s, features);
  return net;
}

}  // namespace lipkit::models
