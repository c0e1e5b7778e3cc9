#include "lipkit/models/description.h"

#include <torch/torch.h>

#include <functional>
#include <map>

#include "lipkit/lipkit.h"

namespace lipkit::models {

using nlohmann::json;
namespace nn = torch::nn;

namespace {

// ------------------------------------------------------------------------------------ options in

// An option of a described module: the value, or `fallback` when absent, naming the field on error.
template <typename T>
T field(const json& d, const char* key, T fallback) {
  const auto& o = d.contains("options") ? d.at("options") : json::object();
  if (!o.contains(key)) return fallback;
  try {
    return o.at(key).get<T>();
  } catch (const json::exception& e) {
    TORCH_CHECK(false, d.value("type", std::string("?")), ".options.", key, ": wrong type (", e.what(), ")");
  }
}

template <typename T>
T required(const json& d, const char* key) {
  const auto& o = d.contains("options") ? d.at("options") : json::object();
  TORCH_CHECK(o.contains(key), d.value("type", std::string("?")), ".options.", key, ": missing");
  return field<T>(d, key, T{});
}

const json& child(const json& d, const std::string& name) {
  if (d.contains("children") && d.at("children").is_array())
    for (const auto& c : d.at("children"))
      if (c.value("name", std::string()) == name) return c;
  TORCH_CHECK(false, d.value("type", std::string("?")), ": missing child '", name, "'");
}

using Builder = std::function<nn::AnyModule(const json&)>;

template <typename Holder>
nn::AnyModule held(Holder h) {
  return nn::AnyModule(std::move(h));
}

const std::map<std::string, Builder>& builders() {
  static const std::map<std::string, Builder> table = {
      {"CplLinear", [](const json& d) {
         CplLinearOptions o(required<int64_t>(d, "features"), field<int64_t>(d, "hidden", 0));
         o.eps(field(d, "eps", o.eps())).train_iters(field(d, "train_iters", o.train_iters()))
             .activation(field(d, "activation", o.activation())).spline_knots(field(d, "spline_knots", o.spline_knots()))
             .spline_grid(field(d, "spline_grid", o.spline_grid()));
         return held(CplLinear(o));
       }},
      {"CplConv2d", [](const json& d) {
         CplConv2dOptions o(required<int64_t>(d, "channels"), field<int64_t>(d, "hidden", 0));
         o.kernel_size(field(d, "kernel_size", o.kernel_size())).eps(field(d, "eps", o.eps()))
             .train_iters(field(d, "train_iters", o.train_iters()));
         return held(CplConv2d(o));
       }},
      {"SllLinear", [](const json& d) {
         SllLinearOptions o(required<int64_t>(d, "features"), field<int64_t>(d, "hidden", 0));
         o.activation(field(d, "activation", o.activation())).spline_knots(field(d, "spline_knots", o.spline_knots()))
             .spline_grid(field(d, "spline_grid", o.spline_grid()));
         return held(SllLinear(o));
       }},
      {"SllConv2d", [](const json& d) {
         SllConv2dOptions o(required<int64_t>(d, "channels"), field<int64_t>(d, "hidden", 0));
         o.kernel_size(field(d, "kernel_size", o.kernel_size())).cancel_q(field(d, "cancel_q", o.cancel_q()));
         return held(SllConv2d(o));
       }},
      {"AolLinear", [](const json& d) {
         AolLinearOptions o(required<int64_t>(d, "in_features"), required<int64_t>(d, "out_features"));
         o.bias(field(d, "bias", o.bias())).eps(field(d, "eps", o.eps()));
         return held(AolLinear(o));
       }},
      {"AolConv2d", [](const json& d) {
         AolConv2dOptions o(required<int64_t>(d, "in_channels"), required<int64_t>(d, "out_channels"));
         o.kernel_size(field(d, "kernel_size", o.kernel_size())).bias(field(d, "bias", o.bias())).eps(field(d, "eps", o.eps()));
         return held(AolConv2d(o));
       }},
      {"SpectralLinear", [](const json& d) {
         SpectralLinearOptions o(required<int64_t>(d, "in_features"), required<int64_t>(d, "out_features"));
         o.bias(field(d, "bias", o.bias())).train_iters(field(d, "train_iters", o.train_iters()));
         return held(SpectralLinear(o));
       }},
      {"SpectralConv2d", [](const json& d) {
         SpectralConv2dOptions o(required<int64_t>(d, "in_channels"), required<int64_t>(d, "out_channels"));
         o.kernel_size(field(d, "kernel_size", o.kernel_size())).bias(field(d, "bias", o.bias()))
             .train_iters(field(d, "train_iters", o.train_iters()));
         return held(SpectralConv2d(o));
       }},
      {"OrthogonalLinear", [](const json& d) {
         OrthogonalLinearOptions o(required<int64_t>(d, "in_features"), required<int64_t>(d, "out_features"));
         o.bias(field(d, "bias", o.bias()));
         return held(OrthogonalLinear(o));
       }},
      {"GroupSort", [](const json& d) { return held(GroupSort(GroupSortOptions(required<int64_t>(d, "group_size")))); }},
      {"MaxMin", [](const json&) { return held(MaxMin()); }},
      {"LinfDistLinear", [](const json& d) {
         LinfDistLinearOptions o(required<int64_t>(d, "in_features"), required<int64_t>(d, "out_features"));
         o.bias(field(d, "bias", o.bias())).identity_init(field(d, "identity_init", o.identity_init()))
             .init_std(field(d, "init_std", o.init_std()));
         return held(LinfDistLinear(o));
       }},
      {"SortNetLinear", [](const json& d) {
         SortNetLinearOptions o(required<int64_t>(d, "in_features"), required<int64_t>(d, "out_features"));
         o.q(field(d, "q", o.q())).k(field(d, "k", o.k())).bias(field(d, "bias", o.bias()))
             .identity_init(field(d, "identity_init", o.identity_init())).init_std(field(d, "init_std", o.init_std()))
             .seed(field(d, "seed", o.seed()));
         return held(SortNetLinear(o));
       }},
      {"NegatedDistance", [](const json&) { return held(NegatedDistance()); }},
      {"MeanShift", [](const json& d) {
         MeanShiftOptions o(required<int64_t>(d, "features"));
         o.momentum(field(d, "momentum", o.momentum()));
         return held(MeanShift(o));
       }},
      {"LinearSpline", [](const json& d) {
         LinearSplineOptions o(required<int64_t>(d, "num_channels"));
         o.num_knots(field(d, "num_knots", o.num_knots())).grid(field(d, "grid", o.grid())).init(field(d, "init", o.init()))
             .lipschitz(field(d, "lipschitz", o.lipschitz())).scaling(field(d, "scaling", o.scaling()))
             .monotone(field(d, "monotone", o.monotone())).project(field(d, "project", o.project()));
         return held(LinearSpline(o));
       }},
      {"LipschitzLinear", [](const json& d) {
         LipschitzLinearOptions o(required<int64_t>(d, "in_features"), required<int64_t>(d, "out_features"));
         o.bias(field(d, "bias", o.bias())).kind(field(d, "kind", o.kind())).lipschitz(field(d, "lipschitz", o.lipschitz()))
             .vectorwise(field(d, "vectorwise", o.vectorwise()));
         return held(LipschitzLinear(o));
       }},
      {"DpLinear", [](const json& d) {
         DpLinearOptions o(required<int64_t>(d, "in_features"), required<int64_t>(d, "out_features"));
         o.bias(field(d, "bias", o.bias())).bound_iters(field(d, "bound_iters", o.bound_iters()))
             .project_iters(field(d, "project_iters", o.project_iters()));
         return held(DpLinear(o));
       }},
      {"DpBoundedInput", [](const json& d) { return held(DpBoundedInput(required<double>(d, "norm"))); }},
      {"InputNormalization", [](const json& d) {
         return held(InputNormalization(InputNormalizationOptions(required<std::vector<double>>(d, "mean"),
                                                                  field(d, "std", std::vector<double>{}))));
       }},
      {"PadChannels", [](const json& d) {
         return held(PadChannels(PadChannelsOptions(required<int64_t>(d, "in_channels"), required<int64_t>(d, "out_channels"))));
       }},
      {"SumPool2d", [](const json& d) { return held(SumPool2d(SumPool2dOptions(required<int64_t>(d, "kernel_size")))); }},
      {"PixelUnshuffle", [](const json& d) { return held(PixelUnshuffle(PixelUnshuffleOptions(required<int64_t>(d, "factor")))); }},
      {"FirstChannels", [](const json& d) { return held(FirstChannels(FirstChannelsOptions(required<int64_t>(d, "count")))); }},
      {"NormalizedLinear", [](const json& d) {
         NormalizedLinearOptions o(required<int64_t>(d, "in_features"), required<int64_t>(d, "out_features"));
         o.bias(field(d, "bias", o.bias()));
         return held(NormalizedLinear(o));
       }},
      {"Residual", [](const json& d) { return held(Residual(build_sequential(child(d, "branch")))); }},
      {"MonotonicResidual", [](const json& d) {
         auto rows = required<std::vector<std::vector<double>>>(d, "constraints");
         TORCH_CHECK(!rows.empty() && !rows[0].empty(), "MonotonicResidual.options.constraints: empty");
         auto c = torch::empty({static_cast<int64_t>(rows.size()), static_cast<int64_t>(rows[0].size())}, torch::kDouble);
         for (size_t i = 0; i < rows.size(); ++i) {
           TORCH_CHECK(rows[i].size() == rows[0].size(), "MonotonicResidual.options.constraints: ragged rows");
           c[i] = torch::tensor(rows[i], torch::kDouble);
         }
         MonotonicResidualOptions o(c);
         o.lipschitz(field(d, "lipschitz", o.lipschitz()));
         return held(MonotonicResidual(build_sequential(child(d, "body")), o));
       }},
      // LibTorch modules (ordinary networks, bounded by lipschitz::upper_bound)
      {"Linear", [](const json& d) {
         return held(nn::Linear(nn::LinearOptions(required<int64_t>(d, "in_features"), required<int64_t>(d, "out_features"))
                                    .bias(field(d, "bias", true))));
       }},
      {"Conv2d", [](const json& d) {
         return held(nn::Conv2d(nn::Conv2dOptions(required<int64_t>(d, "in_channels"), required<int64_t>(d, "out_channels"),
                                                  required<std::vector<int64_t>>(d, "kernel_size"))
                                    .stride(field(d, "stride", std::vector<int64_t>{1, 1}))
                                    .padding(field(d, "padding", std::vector<int64_t>{0, 0}))
                                    .bias(field(d, "bias", true))));
       }},
      {"BatchNorm1d", [](const json& d) {
         return held(nn::BatchNorm1d(nn::BatchNorm1dOptions(required<int64_t>(d, "num_features"))
                                         .eps(field(d, "eps", 1e-5)).momentum(field(d, "momentum", 0.1))
                                         .affine(field(d, "affine", true))));
       }},
      {"BatchNorm2d", [](const json& d) {
         return held(nn::BatchNorm2d(nn::BatchNorm2dOptions(required<int64_t>(d, "num_features"))
                                         .eps(field(d, "eps", 1e-5)).momentum(field(d, "momentum", 0.1))
                                         .affine(field(d, "affine", true))));
       }},
      {"AvgPool2d", [](const json& d) {
         auto k = required<std::vector<int64_t>>(d, "kernel_size");
         return held(nn::AvgPool2d(nn::AvgPool2dOptions(k).stride(field(d, "stride", k))
                                       .padding(field(d, "padding", std::vector<int64_t>{0, 0}))));
       }},
      {"MaxPool2d", [](const json& d) {
         auto k = required<std::vector<int64_t>>(d, "kernel_size");
         return held(nn::MaxPool2d(nn::MaxPool2dOptions(k).stride(field(d, "stride", k))
                                       .padding(field(d, "padding", std::vector<int64_t>{0, 0}))));
       }},
      {"Flatten", [](const json& d) {
         return held(nn::Flatten(nn::FlattenOptions().start_dim(field<int64_t>(d, "start_dim", 1))
                                     .end_dim(field<int64_t>(d, "end_dim", -1))));
       }},
      {"ReLU", [](const json&) { return held(nn::ReLU()); }},
      {"Tanh", [](const json&) { return held(nn::Tanh()); }},
      {"Sigmoid", [](const json&) { return held(nn::Sigmoid()); }},
      {"Identity", [](const json&) { return held(nn::Identity()); }},
      {"Dropout", [](const json& d) { return held(nn::Dropout(field(d, "p", 0.5))); }},
      {"LeakyReLU", [](const json& d) {
         return held(nn::LeakyReLU(nn::LeakyReLUOptions().negative_slope(field(d, "negative_slope", 0.01))));
       }},
  };
  return table;
}

// ----------------------------------------------------------------------------------- options out

std::vector<int64_t> pair(torch::ExpandingArray<2> a) { return {(*a)[0], (*a)[1]}; }

json options_of(const nn::Module& m, std::string& type) {
#define LIPKIT_IS(T) (type = #T, m.as<T##Impl>())
  if (const auto* p = LIPKIT_IS(CplLinear)) {
    const auto& o = p->options;
    return {{"features", o.features()}, {"hidden", o.hidden()}, {"eps", o.eps()}, {"train_iters", o.train_iters()},
            {"activation", o.activation()}, {"spline_knots", o.spline_knots()}, {"spline_grid", o.spline_grid()}};
  }
  if (const auto* p = LIPKIT_IS(CplConv2d)) {
    const auto& o = p->options;
    return {{"channels", o.channels()}, {"hidden", o.hidden()}, {"kernel_size", o.kernel_size()}, {"eps", o.eps()},
            {"train_iters", o.train_iters()}};
  }
  if (const auto* p = LIPKIT_IS(SllLinear)) {
    const auto& o = p->options;
    return {{"features", o.features()}, {"hidden", o.hidden()}, {"activation", o.activation()},
            {"spline_knots", o.spline_knots()}, {"spline_grid", o.spline_grid()}};
  }
  if (const auto* p = LIPKIT_IS(SllConv2d)) {
    const auto& o = p->options;
    return {{"channels", o.channels()}, {"hidden", o.hidden()}, {"kernel_size", o.kernel_size()}, {"cancel_q", o.cancel_q()}};
  }
  if (const auto* p = LIPKIT_IS(AolLinear)) {
    const auto& o = p->options;
    return {{"in_features", o.in_features()}, {"out_features", o.out_features()}, {"bias", o.bias()}, {"eps", o.eps()}};
  }
  if (const auto* p = LIPKIT_IS(AolConv2d)) {
    const auto& o = p->options;
    return {{"in_channels", o.in_channels()}, {"out_channels", o.out_channels()}, {"kernel_size", o.kernel_size()},
            {"bias", o.bias()}, {"eps", o.eps()}};
  }
  if (const auto* p = LIPKIT_IS(SpectralLinear)) {
    const auto& o = p->options;
    return {{"in_features", o.in_features()}, {"out_features", o.out_features()}, {"bias", o.bias()},
            {"train_iters", o.train_iters()}};
  }
  if (const auto* p = LIPKIT_IS(SpectralConv2d)) {
    const auto& o = p->options;
    return {{"in_channels", o.in_channels()}, {"out_channels", o.out_channels()}, {"kernel_size", o.kernel_size()},
            {"bias", o.bias()}, {"train_iters", o.train_iters()}};
  }
  if (const auto* p = LIPKIT_IS(OrthogonalLinear)) {
    const auto& o = p->options;
    return {{"in_features", o.in_features()}, {"out_features", o.out_features()}, {"bias", o.bias()}};
  }
  if (const auto* p = LIPKIT_IS(GroupSort)) return {{"group_size", p->options.group_size()}};
  if (LIPKIT_IS(MaxMin)) return json::object();
  if (const auto* p = LIPKIT_IS(LinfDistLinear)) {
    const auto& o = p->options;
    return {{"in_features", o.in_features()}, {"out_features", o.out_features()}, {"bias", o.bias()},
            {"identity_init", o.identity_init()}, {"init_std", o.init_std()}};
  }
  if (const auto* p = LIPKIT_IS(SortNetLinear)) {
    const auto& o = p->options;
    return {{"in_features", o.in_features()}, {"out_features", o.out_features()}, {"q", o.q()}, {"k", o.k()},
            {"bias", o.bias()}, {"identity_init", o.identity_init()}, {"init_std", o.init_std()}, {"seed", o.seed()}};
  }
  if (LIPKIT_IS(NegatedDistance)) return json::object();
  if (const auto* p = LIPKIT_IS(MeanShift)) return {{"features", p->options.features()}, {"momentum", p->options.momentum()}};
  if (const auto* p = LIPKIT_IS(LinearSpline)) {
    const auto& o = p->options;
    return {{"num_channels", o.num_channels()}, {"num_knots", o.num_knots()}, {"grid", o.grid()}, {"init", o.init()},
            {"lipschitz", o.lipschitz()}, {"scaling", o.scaling()}, {"monotone", o.monotone()}, {"project", o.project()}};
  }
  if (const auto* p = LIPKIT_IS(LipschitzLinear)) {
    const auto& o = p->options;
    return {{"in_features", o.in_features()}, {"out_features", o.out_features()}, {"bias", o.bias()},
            {"kind", o.kind()}, {"lipschitz", o.lipschitz()}, {"vectorwise", o.vectorwise()}};
  }
  if (const auto* p = LIPKIT_IS(DpLinear)) {
    const auto& o = p->options;
    return {{"in_features", o.in_features()}, {"out_features", o.out_features()}, {"bias", o.bias()},
            {"bound_iters", o.bound_iters()}, {"project_iters", o.project_iters()}};
  }
  if (const auto* p = LIPKIT_IS(DpBoundedInput)) return {{"norm", p->options.norm()}};
  if (const auto* p = LIPKIT_IS(InputNormalization)) return {{"mean", p->options.mean()}, {"std", p->options.std()}};
  if (const auto* p = LIPKIT_IS(PadChannels))
    return {{"in_channels", p->options.in_channels()}, {"out_channels", p->options.out_channels()}};
  if (const auto* p = LIPKIT_IS(SumPool2d)) return {{"kernel_size", p->options.kernel_size()}};
  if (const auto* p = LIPKIT_IS(PixelUnshuffle)) return {{"factor", p->options.factor()}};
  if (const auto* p = LIPKIT_IS(FirstChannels)) return {{"count", p->options.count()}};
  if (const auto* p = LIPKIT_IS(NormalizedLinear)) {
    const auto& o = p->options;
    return {{"in_features", o.in_features()}, {"out_features", o.out_features()}, {"bias", o.bias()}};
  }
  if (LIPKIT_IS(Residual)) return json::object();
  if (const auto* p = LIPKIT_IS(MonotonicResidual)) {
    auto c = p->constraints.detach().to(torch::kDouble).contiguous();
    std::vector<std::vector<double>> rows;
    for (int64_t i = 0; i < c.size(0); ++i) rows.emplace_back(c[i].data_ptr<double>(), c[i].data_ptr<double>() + c.size(1));
    return {{"lipschitz", p->options.lipschitz()}, {"constraints", rows}};
  }
  if (LIPKIT_IS(nn::Sequential)) return json::object();
#undef LIPKIT_IS
#define LIPKIT_TORCH(T) (type = #T, m.as<nn::T##Impl>())
  if (const auto* p = LIPKIT_TORCH(Linear)) {
    const auto& o = p->options;
    return {{"in_features", o.in_features()}, {"out_features", o.out_features()}, {"bias", o.bias()}};
  }
  if (const auto* p = LIPKIT_TORCH(Conv2d)) {
    const auto& o = p->options;
    TORCH_CHECK(c10::holds_alternative<torch::ExpandingArray<2>>(o.padding()) && o.groups() == 1 &&
                    pair(o.dilation()) == std::vector<int64_t>({1, 1}) && o.padding_mode().index() == 0,
                "describe: Conv2d with string padding, groups, dilation or a padding mode other than zeros has no description");
    return {{"in_channels", o.in_channels()}, {"out_channels", o.out_channels()}, {"kernel_size", pair(o.kernel_size())},
            {"stride", pair(o.stride())}, {"padding", pair(c10::get<torch::ExpandingArray<2>>(o.padding()))},
            {"bias", o.bias()}};
  }
  if (const auto* p = LIPKIT_TORCH(BatchNorm1d)) {
    const auto& o = p->options;
    return {{"num_features", o.num_features()}, {"eps", o.eps()}, {"momentum", o.momentum().value_or(0.1)}, {"affine", o.affine()}};
  }
  if (const auto* p = LIPKIT_TORCH(BatchNorm2d)) {
    const auto& o = p->options;
    return {{"num_features", o.num_features()}, {"eps", o.eps()}, {"momentum", o.momentum().value_or(0.1)}, {"affine", o.affine()}};
  }
  if (const auto* p = LIPKIT_TORCH(AvgPool2d)) {
    const auto& o = p->options;
    return {{"kernel_size", pair(o.kernel_size())}, {"stride", pair(o.stride())}, {"padding", pair(o.padding())}};
  }
  if (const auto* p = LIPKIT_TORCH(MaxPool2d)) {
    const auto& o = p->options;
    return {{"kernel_size", pair(o.kernel_size())}, {"stride", pair(o.stride())}, {"padding", pair(o.padding())}};
  }
  if (const auto* p = LIPKIT_TORCH(Flatten)) return {{"start_dim", p->options.start_dim()}, {"end_dim", p->options.end_dim()}};
  if (LIPKIT_TORCH(ReLU)) return json::object();
  if (LIPKIT_TORCH(Tanh)) return json::object();
  if (LIPKIT_TORCH(Sigmoid)) return json::object();
  if (LIPKIT_TORCH(Identity)) return json::object();
  if (const auto* p = LIPKIT_TORCH(Dropout)) return {{"p", p->options.p()}};
  if (const auto* p = LIPKIT_TORCH(LeakyReLU)) return {{"negative_slope", p->options.negative_slope()}};
#undef LIPKIT_TORCH
  TORCH_CHECK(false, "describe: module type ", m.name(), " has no description (lipkit describes its own layers and ",
              "Linear, Conv2d, BatchNorm1d/2d, AvgPool2d, MaxPool2d, Flatten, ReLU, Tanh, Sigmoid, LeakyReLU, Dropout, Identity)");
}

}  // namespace

json describe(const nn::Module& module) {
  std::string type;
  json d = {{"type", ""}, {"options", options_of(module, type)}};
  if (type == "nn::Sequential") type = "Sequential";
  d["type"] = type;
  json children = json::array();
  if (type == "Sequential") {
    for (const auto& item : module.named_children()) {
      auto c = describe(*item.value());
      c["name"] = item.key();
      children.push_back(std::move(c));
    }
  } else if (type == "Residual") {
    children.push_back(describe(*module.as<ResidualImpl>()->branch));
    children.back()["name"] = "branch";
  } else if (type == "MonotonicResidual") {
    children.push_back(describe(*module.as<MonotonicResidualImpl>()->body));
    children.back()["name"] = "body";
  }
  if (!children.empty() || type == "Sequential") d["children"] = children;
  return d;
}

namespace {
nn::AnyModule build_any(const json& description) {
  TORCH_CHECK(description.is_object() && description.contains("type") && description.at("type").is_string(),
              "model description: every module needs a \"type\" string, got ", description.dump().substr(0, 200));
  const auto type = description.at("type").get<std::string>();
  TORCH_CHECK(type != "Sequential", "model description: a Sequential inside a Sequential (LibTorch's Sequential "
              "cannot hold one: wrap the inner one in a Residual, or flatten it)");
  const auto& table = builders();
  auto it = table.find(type);
  TORCH_CHECK(it != table.end(), "model description: unknown module type '", type, "'");
  return it->second(description);
}
}  // namespace

std::shared_ptr<nn::Module> build_module(const json& description) {
  if (description.is_object() && description.value("type", std::string()) == "Sequential")
    return build_sequential(description).ptr();
  return build_any(description).ptr();
}

nn::Sequential build_sequential(const json& description) {
  TORCH_CHECK(description.is_object() && description.value("type", std::string()) == "Sequential",
              "model description: the root must be a Sequential, got '",
              description.is_object() ? description.value("type", std::string()) : description.dump(), "'");
  nn::Sequential s;
  for (const auto& c : description.value("children", json::array())) {
    const auto name = c.value("name", std::string(std::to_string(s->size())));
    s->push_back(name, build_any(c));
  }
  return s;
}

}  // namespace lipkit::models
