#include "lipkit/train/tabular_model.h"
#include "lipkit/runtime.h"

#include <torch/torch.h>

#include <cstdio>
#include <fstream>
#include <unistd.h>

#include "lipkit/layers/monotonic.h"
#include "lipkit/layers/structure.h"
#include "lipkit/train/checkpoint.h"

namespace lipkit::train {

namespace {
std::vector<double> as_vector(const torch::Tensor& t) {
  auto c = t.to(torch::kDouble).contiguous();
  return {c.data_ptr<double>(), c.data_ptr<double>() + c.numel()};
}

MonotonicResidualImpl& residual_of(const TabularModel& m) {
  for (const auto& child : m.model->children())
    if (auto* r = child->as<MonotonicResidualImpl>()) return *r;
  TORCH_CHECK(false, "tabular model: no MonotonicResidual in the network");
}

// A CSV field, quoted when it holds a comma, a quote or a line break.
std::string csv_field(const std::string& s) {
  if (s.find_first_of(",\"\n\r") == std::string::npos) return s;
  std::string q = "\"";
  for (char ch : s) q += ch == '"' ? std::string("\"\"") : std::string(1, ch);
  return q + "\"";
}
}  // namespace

nlohmann::json tabular_meta(const data::Table& all, const data::Table& train_rows, const std::string& task,
                            double target_mean, double target_std) {
  nlohmann::json cols = nlohmann::json::array();
  for (const auto& c : all.columns) cols.push_back({{"name", c.name}, {"categories", c.categories}});
  return {{"columns", cols},
          {"feature_names", all.feature_names},
          {"target", all.target},
          {"task", task},
          {"classes", all.classes},
          {"target_mean", target_mean},
          {"target_std", target_std},
          {"range_min", as_vector(std::get<0>(train_rows.x.min(0)))},
          {"range_max", as_vector(std::get<0>(train_rows.x.max(0)))}};
}

TabularModel load_tabular(const std::string& checkpoint) {
  nlohmann::json meta;
  auto model = load_model(checkpoint, &meta);
  return tabular_model(model, std::move(meta), checkpoint);
}

TabularModel tabular_model(torch::nn::Sequential model, nlohmann::json meta, const std::string& source) {
  TabularModel m;
  m.model = model;
  m.meta = std::move(meta);
  m.model->eval();
  TORCH_CHECK(m.meta.contains("table"), source, ": not a model trained on a table (no column schema in the ",
              "checkpoint; it was trained on '", m.meta.value("data", std::string("?")), "')");
  const auto& t = m.meta.at("table");
  for (const auto& c : t.at("columns"))
    m.columns.push_back({c.at("name").get<std::string>(), c.at("categories").get<std::vector<std::string>>()});
  m.feature_names = t.at("feature_names").get<std::vector<std::string>>();
  m.target = t.at("target").get<std::string>();
  m.task = t.value("task", std::string("regression"));  // absent before classification heads
  m.classes = t.value("classes", std::vector<std::string>{});
  m.target_mean = t.at("target_mean").get<double>();
  m.target_std = t.at("target_std").get<double>();
  const auto d = static_cast<int64_t>(m.feature_names.size());
  m.range_min = t.contains("range_min") ? torch::tensor(t.at("range_min").get<std::vector<double>>(), torch::kDouble)
                                        : torch::full({d}, -1.0, torch::kDouble);
  m.range_max = t.contains("range_max") ? torch::tensor(t.at("range_max").get<std::vector<double>>(), torch::kDouble)
                                        : torch::full({d}, 1.0, torch::kDouble);
  auto& r = residual_of(m);
  m.constraints = r.constraints.to(torch::kDouble);
  m.lambda = r.options.lipschitz();
  return m;
}

data::Table read_rows(const TabularModel& m, const std::string& path) {
  data::TabularOptions o;
  o.target = m.target;
  o.class_target = m.task != "regression";
  o.classes = m.classes;
  return data::read_table(path, o, &m.columns, /*require_target=*/false);
}

torch::Tensor predict(const TabularModel& m, const torch::Tensor& x) {
  TORCH_CHECK(x.dim() == 2 && x.size(1) == static_cast<int64_t>(m.feature_names.size()), "predict: x must be (rows, ",
              m.feature_names.size(), ") encoded features, got ", x.sizes());
  torch::NoGradGuard no_grad;
  auto net = m.model;  // shares the module: forward is not const
  auto out = net->forward(x.to(net->parameters().front().scalar_type())).to(torch::kDouble);
  if (m.task == "binary") return torch::sigmoid(out.squeeze(1));
  if (m.task == "multiclass") return torch::softmax(out, 1);
  return out.squeeze(1) * m.target_std + m.target_mean;
}

void write_predictions(const TabularModel& m, const std::string& in, const std::string& out) {
  const auto rows = read_rows(m, in);
  const auto p = predict(m, rows.x);
  write_atomically(out, [&](const std::string& tmp) {
    std::ofstream f(tmp);
    TORCH_CHECK(f, out, ": cannot write the predictions");
    f.precision(10);
    f << csv_field(m.target);
    for (const auto& c : m.classes) f << "," << csv_field("p(" + c + ")");
    f << "\n";
    for (int64_t r = 0; r < p.size(0); ++r) {
      if (m.task == "regression") {
        f << p[r].item<double>() << "\n";
        continue;
      }
      auto probs = m.task == "binary" ? torch::stack({1 - p[r], p[r]}) : p[r];
      f << csv_field(m.classes[probs.argmax().item<int64_t>()]);
      for (int64_t k = 0; k < probs.size(0); ++k) f << "," << probs[k].item<double>();
      f << "\n";
    }
    TORCH_CHECK(f.flush(), out, ": write failed");
  });
}

bool monotone_proven(const TabularModel& m) { return residual_of(m).monotone_proven(); }

torch::Tensor raw_partial_bounds(const TabularModel& m) {
  auto& r = residual_of(m);
  const double body = r.body_bound();
  auto bound = body + m.lambda * m.constraints.abs();  // (outputs, features): w.r.t. standardised inputs
  auto inv_std = torch::ones({bound.size(1)}, torch::kDouble);
  for (const auto& child : m.model->children())
    if (auto* n = child->as<InputNormalizationImpl>()) inv_std = n->inv_std.reshape({-1}).to(torch::kDouble);
  bound = bound * inv_std.view({1, -1});
  return m.task == "regression" ? bound * m.target_std : bound;
}

}  // namespace lipkit::train
