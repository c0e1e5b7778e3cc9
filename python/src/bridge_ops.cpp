// The Python package's bridge to the C++ library, as operators (torch.ops.lipkit.*): Debian's
// python3-torch ships no headers of torch's own pybind11 bindings, so tensors cross the language
// boundary through the operator registry, whose Python side torch provides. A model crosses as its
// description (models/description.h) plus its parameters and buffers by name.
#include <torch/library.h>
#include <torch/torch.h>

#include <nlohmann/json.hpp>

#include "lipkit/certify/attacks.h"
#include "lipkit/data/dataset.h"
#include "lipkit/data/transforms.h"
#include "lipkit/certify/certify.h"
#include "lipkit/deploy/export.h"
#include "lipkit/lipschitz/bounds.h"
#include "lipkit/models/description.h"
#include "lipkit/train/checkpoint.h"
#include "lipkit/train/throughput.h"

namespace lipkit::python {

namespace {

using nlohmann::json;
using State = std::tuple<std::vector<std::string>, std::vector<torch::Tensor>>;

State state_of(torch::nn::Module& model) {
  std::vector<std::string> names;
  std::vector<torch::Tensor> tensors;
  for (const auto& p : model.named_parameters())
    if (p.value().defined()) names.push_back(p.key()), tensors.push_back(p.value().detach());
  for (const auto& b : model.named_buffers())
    if (b.value().defined()) names.push_back(b.key()), tensors.push_back(b.value().detach());
  return {names, tensors};
}

// Copies a Python model's tensors into its C++ twin by name; every name must match, both ways.
void assign(torch::nn::Module& model, const std::vector<std::string>& names, const std::vector<torch::Tensor>& tensors) {
  TORCH_CHECK(names.size() == tensors.size(), "state: ", names.size(), " names for ", tensors.size(), " tensors");
  std::map<std::string, torch::Tensor> given;
  for (size_t i = 0; i < names.size(); ++i) given[names[i]] = tensors[i];
  torch::NoGradGuard no_grad;
  auto fill = [&](const std::string& name, torch::Tensor& dest, bool buffer) {
    auto it = given.find(name);
    TORCH_CHECK(it != given.end(), "state: no tensor for '", name, "' (the C++ model has it)");
    TORCH_CHECK(buffer || it->second.sizes() == dest.sizes(), "state: '", name, "' has shape ", it->second.sizes(),
                ", the model expects ", dest.sizes());
    dest.set_(it->second.detach().to(dest.scalar_type()).clone());
    given.erase(it);
  };
  for (auto& p : model.named_parameters())
    if (p.value().defined()) fill(p.key(), p.value(), false);
  for (auto& b : model.named_buffers())
    if (b.value().defined()) fill(b.key(), b.value(), true);
  TORCH_CHECK(given.empty(), "state: tensor '", given.empty() ? "" : given.begin()->first, "' is not in the model");
}

torch::Dtype dtype_of(const std::vector<torch::Tensor>& tensors) {
  for (const auto& t : tensors)
    if (t.is_floating_point()) return t.scalar_type();
  return torch::kFloat;
}

torch::nn::Sequential model_of(const std::string& description, const std::vector<std::string>& names,
                               const std::vector<torch::Tensor>& tensors) {
  auto model = models::build_sequential(json::parse(description));
  model->to(dtype_of(tensors));
  assign(*model, names, tensors);
  model->eval();
  return model;
}

std::tuple<std::string, std::vector<std::string>, std::vector<torch::Tensor>> build_spec(const std::string& spec, int64_t seed) {
  torch::manual_seed(seed);
  auto model = models::build_model(train::spec_from_json(json::parse(spec)));
  auto [names, tensors] = state_of(*model);
  return {models::describe(*model).dump(), names, tensors};
}

State build_description(const std::string& description, int64_t seed) {
  torch::manual_seed(seed);
  auto model = models::build_sequential(json::parse(description));
  return state_of(*model);
}

// A checkpoint written by C++ alone: the model of a description as C++ initialises it (float64 when asked).
void init_checkpoint(const std::string& path, const std::string& description, int64_t seed, bool float64) {
  torch::manual_seed(seed);
  auto model = models::build_sequential(json::parse(description));
  if (float64) model->to(torch::kDouble);
  train::save_checkpoint(path, *model, nullptr,
                        {{"layers", json::parse(description)}, {"dtype", float64 ? "float64" : "float32"}});
}

std::tuple<std::string, std::string, std::vector<std::string>, std::vector<torch::Tensor>> load_checkpoint(
    const std::string& path) {
  json meta;
  auto model = train::load_model(path, &meta);
  auto [names, tensors] = state_of(*model);
  return {models::describe(*model).dump(), meta.dump(), names, tensors};
}

void save_checkpoint(const std::string& path, const std::string& description, const std::string& meta,
                     const std::vector<std::string>& names, const std::vector<torch::Tensor>& tensors) {
  auto model = model_of(description, names, tensors);
  auto m = json::parse(meta);
  TORCH_CHECK(m.is_object(), "save: meta must be a JSON object, got ", meta.substr(0, 100));
  m["layers"] = json::parse(description);
  m["dtype"] = dtype_of(tensors) == torch::kDouble ? "float64" : "float32";
  train::save_checkpoint(path, *model, nullptr, m);
}

std::tuple<torch::Tensor, torch::Tensor, std::vector<std::string>, std::vector<torch::Tensor>> checkpoint_forward(
    const std::string& path, const torch::Tensor& x, const torch::Tensor& grad_out, bool train) {
  auto model = train::load_model(path);
  model->to(x.scalar_type());
  model->train(train);
  auto input = x.detach().clone().requires_grad_(true);
  auto y = model->forward(input);
  y.backward(grad_out);
  std::vector<std::string> names;
  std::vector<torch::Tensor> grads;
  for (const auto& p : model->named_parameters())
    if (p.value().defined() && p.value().grad().defined()) names.push_back(p.key()), grads.push_back(p.value().grad());
  return {y.detach(), input.grad(), names, grads};
}

torch::Tensor certified_radius(const std::string& description, const std::vector<std::string>& names,
                               const std::vector<torch::Tensor>& tensors, const torch::Tensor& x, const torch::Tensor& y,
                               const std::string& norm, double whole_model_bound) {
  auto model = model_of(description, names, tensors);
  model->to(torch::kDouble);  // the certificate's arithmetic: float64, as lipkit certify
  torch::NoGradGuard no_grad;
  return certify::certified_radius(model, x.to(torch::kDouble), y, parse_norm(norm), whole_model_bound);
}

double body_bound(const std::string& description, const std::vector<std::string>& names,
                  const std::vector<torch::Tensor>& tensors, const std::string& norm) {
  auto model = model_of(description, names, tensors);
  model->to(torch::kDouble);  // the copy certify bounds (a float32 spline projection may round a slope above 1)
  return certify::body_bound(model, parse_norm(norm));
}

std::tuple<double, bool, std::vector<std::string>, std::vector<double>> upper_bound(
    const std::string& description, const std::vector<std::string>& names, const std::vector<torch::Tensor>& tensors,
    std::vector<int64_t> sample_shape, const std::string& method, int64_t iters) {
  auto model = model_of(description, names, tensors);
  auto report = lipschitz::upper_bound(model, std::move(sample_shape), lipschitz::parse_bound_method(method), iters);
  std::vector<std::string> layers;
  std::vector<double> bounds;
  for (const auto& l : report.layers) layers.push_back(l.layer), bounds.push_back(l.bound);
  return {report.product, report.proven, layers, bounds};
}

torch::Tensor pgd(const std::string& description, const std::vector<std::string>& names,
                  const std::vector<torch::Tensor>& tensors, const torch::Tensor& x, const torch::Tensor& y,
                  const std::string& norm, double eps, int64_t steps, double step_size, bool random_start, int64_t seed) {
  auto model = model_of(description, names, tensors);
  certify::PgdOptions o;
  o.norm = parse_norm(norm), o.eps = eps, o.steps = steps, o.step_size = step_size, o.random_start = random_start;
  o.seed = static_cast<uint64_t>(seed);
  return certify::pgd_attack(model, x.to(dtype_of(tensors)), y, o);
}

std::string export_model(const std::string& description, const std::vector<std::string>& names,
                         const std::vector<torch::Tensor>& tensors, const std::string& path,
                         std::vector<int64_t> sample_shape, const std::string& norm, bool vanilla) {
  auto model = model_of(description, names, tensors);
  deploy::ExportOptions o;
  o.sample_shape = std::move(sample_shape), o.norm = norm, o.vanilla = vanilla;
  auto c = deploy::export_torchscript(model, path, o);
  return json{{"lipschitz_bound", c.lipschitz_bound}, {"norm", to_string(c.norm)}, {"rule", c.rule},
              {"bound_source", c.bound_source}, {"margin_slack", c.margin_slack},
              {"uses_lipkit_operators", c.uses_lipkit_operators}}.dump();
}

std::tuple<torch::Tensor, torch::Tensor, int64_t> load_dataset(const std::string& spec, const std::string& split) {
  TORCH_CHECK(split == "train" || split == "test", "data: split must be train or test, got '", split, "'");
  auto d = data::load_dataset(spec, split == "train" ? data::Split::Train : data::Split::Test);
  return {data::to_float(d.images), d.labels, d.num_classes};
}

// The C++ trainer's step on a model (Adam 1e-4, cross-entropy, random data): the Python benchmark's reference.
std::tuple<double, double> measure_throughput(const std::string& description, const std::vector<std::string>& names,
                                              const std::vector<torch::Tensor>& tensors, std::vector<int64_t> shape,
                                              int64_t steps) {
  auto model = model_of(description, names, tensors);
  auto t = train::measure_throughput(model, std::move(shape), steps);
  return {t.train_images_per_second, t.infer_images_per_second};
}

}  // namespace

TORCH_LIBRARY_FRAGMENT(lipkit, m) {
  m.def("py_build_spec(str spec, int seed) -> (str, str[], Tensor[])", &build_spec);
  m.def("py_build_description(str description, int seed) -> (str[], Tensor[])", &build_description);
  m.def("py_measure_throughput(str description, str[] names, Tensor[] tensors, int[] shape, int steps) -> (float, float)",
        &measure_throughput);
  m.def("py_load_dataset(str spec, str split) -> (Tensor, Tensor, int)", &load_dataset);
  m.def("py_init_checkpoint(str path, str description, int seed, bool float64) -> ()", &init_checkpoint);
  m.def("py_load_checkpoint(str path) -> (str, str, str[], Tensor[])", &load_checkpoint);
  m.def("py_save_checkpoint(str path, str description, str meta, str[] names, Tensor[] tensors) -> ()", &save_checkpoint);
  m.def("py_checkpoint_forward(str path, Tensor x, Tensor grad_out, bool train) -> (Tensor, Tensor, str[], Tensor[])",
        &checkpoint_forward);
  m.def("py_certified_radius(str description, str[] names, Tensor[] tensors, Tensor x, Tensor y, str norm, "
        "float whole_model_bound) -> Tensor", &certified_radius);
  m.def("py_body_bound(str description, str[] names, Tensor[] tensors, str norm) -> float", &body_bound);
  m.def("py_upper_bound(str description, str[] names, Tensor[] tensors, int[] sample_shape, str method, int iters) "
        "-> (float, bool, str[], float[])", &upper_bound);
  m.def("py_pgd(str description, str[] names, Tensor[] tensors, Tensor x, Tensor y, str norm, float eps, int steps, "
        "float step_size, bool random_start, int seed) -> Tensor", &pgd);
  m.def("py_export(str description, str[] names, Tensor[] tensors, str path, int[] sample_shape, str norm, "
        "bool vanilla) -> str", &export_model);
}

}  // namespace lipkit::python
