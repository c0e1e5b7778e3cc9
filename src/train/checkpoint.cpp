#include "lipkit/train/checkpoint.h"

#include <limits>

#include "lipkit/layers/sortnet.h"
#include "lipkit/models/description.h"
#include "lipkit/runtime.h"

#include <torch/torch.h>

#include <cstdio>
#include <sys/stat.h>
#include <unistd.h>

namespace lipkit::train {

nlohmann::json spec_to_json(const models::ModelSpec& s) {
  nlohmann::json outputs = nlohmann::json::array();
  for (const auto& o : s.monotonic_outputs) outputs.push_back({{"increasing", o.increasing}, {"decreasing", o.decreasing}});
  return {{"family", s.family},       {"conv_layers", s.conv_layers}, {"dense_layers", s.dense_layers},
          {"width", s.width},         {"conv_hidden", s.conv_hidden},   {"dense_hidden", s.dense_hidden},
          {"pool", s.pool},           {"head", s.head},               {"in_channels", s.in_channels},
          {"image_size", s.image_size}, {"num_classes", s.num_classes}, {"mean", s.mean},
          {"std", s.std},             {"q", s.q},                     {"identity_init", s.identity_init},
          {"sort_k", s.sort_k}, {"activation", s.activation}, {"spline_knots", s.spline_knots},
          {"spline_grid", s.spline_grid}, {"spline_init", s.spline_init}, {"lambda", s.lambda},
          {"group_size", s.group_size}, {"increasing", s.increasing}, {"decreasing", s.decreasing},
          {"monotonic_outputs", outputs}, {"monotone", s.monotone}, {"input_norm", s.input_norm}};
}

models::ModelSpec spec_from_json(const nlohmann::json& j) {
  models::ModelSpec s;
  s.family = j.at("family");
  s.conv_layers = j.at("conv_layers");
  s.dense_layers = j.at("dense_layers");
  s.width = j.at("width");
  // checkpoints written before the rename call the hidden widths conv_inner / dense_inner
  s.conv_hidden = j.contains("conv_hidden") ? j.at("conv_hidden") : j.at("conv_inner");
  s.dense_hidden = j.contains("dense_hidden") ? j.at("dense_hidden") : j.at("dense_inner");
  s.pool = j.at("pool");
  s.head = j.at("head");
  s.in_channels = j.at("in_channels");
  s.image_size = j.at("image_size");
  s.num_classes = j.at("num_classes");
  s.mean = j.at("mean").get<std::vector<double>>();
  s.std = j.at("std").get<std::vector<double>>();
  s.q = j.value("q", s.q);  // absent in checkpoints written before the distance families
  s.identity_init = j.value("identity_init", s.identity_init);
  s.sort_k = j.value("sort_k", s.sort_k);
  s.activation = j.value("activation", s.activation);  // absent before spline activations: MaxMin
  s.spline_knots = j.value("spline_knots", s.spline_knots);
  s.spline_grid = j.value("spline_grid", s.spline_grid);
  s.spline_init = j.value("spline_init", s.spline_init);
  s.lambda = j.value("lambda", s.lambda);  // absent before the monotonic family
  s.group_size = j.value("group_size", s.group_size);
  s.increasing = j.value("increasing", s.increasing);
  s.decreasing = j.value("decreasing", s.decreasing);
  for (const auto& o : j.value("monotonic_outputs", nlohmann::json::array()))
    s.monotonic_outputs.push_back({o.at("increasing").get<std::vector<std::string>>(),
                                   o.at("decreasing").get<std::vector<std::string>>()});
  s.monotone = j.value("monotone", s.monotone);
  s.input_norm = j.value("input_norm", s.input_norm);
  return s;
}

void save_checkpoint(const std::string& path, torch::nn::Module& model,
                     torch::optim::Optimizer* optimizer, const nlohmann::json& meta, const ExtraTensors& extra) {
  torch::serialize::OutputArchive root, model_archive;
  root.write("format", c10::IValue(std::string(kCheckpointFormat)));
  root.write("meta", c10::IValue(meta.dump()));
  model.save(model_archive);
  root.write("model", model_archive);
  if (optimizer != nullptr) {
    torch::serialize::OutputArchive opt_archive;
    optimizer->save(opt_archive);
    root.write("optimizer", opt_archive);
  }
  for (const auto& [name, t] : extra) root.write("extra." + name, t.detach());
  write_atomically(path, [&](const std::string& tmp) { root.save_to(tmp); });
}

namespace {
// Tensors land on `device` whatever device wrote them (a GPU-trained checkpoint reads on a CPU machine).
torch::serialize::InputArchive open_archive(const std::string& path, torch::Device device = torch::kCPU) {
  struct stat st {};
  TORCH_CHECK(::stat(path.c_str(), &st) == 0, path, ": checkpoint not found");
  torch::serialize::InputArchive root;
  try {
    root.load_from(path, device);
  } catch (const c10::Error& e) {
    TORCH_CHECK(false, path, ": not a readable checkpoint (truncated or corrupt?): ",
                e.what_without_backtrace());
  }
  c10::IValue format;
  TORCH_CHECK(root.try_read("format", format) && format.isString(), path,
              ": not a lipkit checkpoint (no format tag)");
  TORCH_CHECK(format.toStringRef() == kCheckpointFormat, path, ": checkpoint format '",
              format.toStringRef(), "', this lipkit reads '", kCheckpointFormat, "'");
  return root;
}

nlohmann::json meta_of(torch::serialize::InputArchive& root, const std::string& path) {
  c10::IValue meta;
  TORCH_CHECK(root.try_read("meta", meta) && meta.isString(), path, ": checkpoint has no metadata");
  return nlohmann::json::parse(meta.toStringRef());
}
}  // namespace

nlohmann::json read_checkpoint_meta(const std::string& path) {
  auto root = open_archive(path);
  return meta_of(root, path);
}

void load_state(const std::string& path, torch::nn::Module& model, torch::optim::Optimizer* optimizer,
                const ExtraTensors& extra, torch::Device device) {
  auto root = open_archive(path, device);
  torch::serialize::InputArchive model_archive;
  TORCH_CHECK(root.try_read("model", model_archive), path, ": checkpoint has no model");
  try {
    model.load(model_archive);
  } catch (const c10::Error& e) {
    TORCH_CHECK(false, path, ": weights do not fit the model: ", e.what_without_backtrace());
  }
  if (optimizer != nullptr) {
    torch::serialize::InputArchive opt_archive;
    TORCH_CHECK(root.try_read("optimizer", opt_archive), path, ": checkpoint has no optimizer state");
    optimizer->load(opt_archive);
  }
  for (const auto& [name, t] : extra) {
    torch::Tensor saved;
    TORCH_CHECK(root.try_read("extra." + name, saved), path, ": checkpoint has no '", name, "'");
    torch::NoGradGuard no_grad;
    t.copy_(saved);
  }
}

torch::nn::Sequential load_model(const std::string& path, nlohmann::json* meta) {
  auto m = read_checkpoint_meta(path);
  TORCH_CHECK(m.contains("spec") || m.contains("layers"), path,
              ": checkpoint metadata has neither a model spec nor a layer description");
  // "layers": a model composed outside the presets (the Python package writes those)
  auto model = m.contains("spec") ? models::build_model(spec_from_json(m.at("spec")))
                                  : models::build_sequential(m.at("layers"));
  if (m.value("dtype", std::string("float32")) == "float64") model->to(torch::kDouble);  // e.g. written by Python
  load_state(path, *model, nullptr);
  model->eval();
  if (meta != nullptr) *meta = std::move(m);
  return model;
}

EvalModel load_for_evaluation(const std::string& path) {
  EvalModel m;
  m.model = load_model(path, &m.meta);
  set_distance_p(*m.model, std::numeric_limits<double>::infinity());
  m.model->eval();
  m.data = m.meta.value("data", std::string("fashion-mnist"));
  const auto model = m.meta.value("config", nlohmann::json::object()).value("model", nlohmann::json::object());
  m.name = model.is_object() ? model.value("preset", std::string()) : std::string();
  if (m.name.empty()) m.name = m.meta.value("spec", nlohmann::json::object()).value("family", std::string("model"));
  return m;
}

}  // namespace lipkit::train
