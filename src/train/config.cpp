#include "lipkit/train/config.h"

#include <torch/torch.h>

#include <cmath>
#include <fstream>
#include <map>
#include <set>

#include "lipkit/certify/certify.h"

namespace lipkit::train {

namespace {

// Reads the fields of one JSON object; remembers unknown keys and type errors for one report.
class Reader {
 public:
  Reader(const nlohmann::json& j, std::string prefix, std::vector<std::string>& unknown,
         const std::string& source)
      : j_(j), prefix_(std::move(prefix)), unknown_(unknown), source_(source) {
    TORCH_CHECK(j.is_object(), source_, ": ", prefix_.empty() ? "the config" : prefix_,
                " must be a JSON object");
  }
  ~Reader() = default;

  template <typename T>
  void get(const char* key, T& out) {
    seen_.insert(key);
    if (!j_.contains(key)) return;
    try {
      out = j_.at(key).get<T>();
    } catch (const nlohmann::json::exception&) {
      TORCH_CHECK(false, source_, ": field '", prefix_ + key, "' has the wrong type (",
                  j_.at(key).type_name(), "): ", j_.at(key).dump());
    }
  }
  bool has(const char* key) {
    seen_.insert(key);
    return j_.contains(key);
  }
  const nlohmann::json& at(const char* key) const { return j_.at(key); }
  void finish() {
    for (auto it = j_.begin(); it != j_.end(); ++it)
      if (!seen_.count(it.key())) unknown_.push_back(prefix_ + it.key());
  }

 private:
  const nlohmann::json& j_;
  std::string prefix_;
  std::vector<std::string>& unknown_;
  const std::string& source_;
  std::set<std::string> seen_;
};

void read_model(const nlohmann::json& j, TrainConfig& c, std::vector<std::string>& unknown,
                const std::string& source) {
  if (j.is_string()) {
    c.preset = j.get<std::string>();
    c.model = models::model_preset(c.preset);
    return;
  }
  Reader r(j, "model.", unknown, source);
  if (r.has("preset")) {
    r.get("preset", c.preset);
    c.model = models::model_preset(c.preset);
  }
  auto& m = c.model;
  r.get("family", m.family);
  r.get("conv_layers", m.conv_layers);
  r.get("dense_layers", m.dense_layers);
  r.get("width", m.width);
  r.get("conv_hidden", m.conv_hidden);
  r.get("dense_hidden", m.dense_hidden);
  r.get("pool", m.pool);
  r.get("head", m.head);
  r.get("std", m.std);
  r.get("q", m.q);
  r.get("identity_init", m.identity_init);
  r.get("sort_k", m.sort_k);
  r.get("activation", m.activation);
  r.get("spline_knots", m.spline_knots);
  r.get("spline_grid", m.spline_grid);
  r.get("spline_init", m.spline_init);
  r.get("lambda", m.lambda);
  r.get("group_size", m.group_size);
  r.get("input_norm", m.input_norm);
  if (r.has("monotonic")) {
    Reader mono(r.at("monotonic"), "model.monotonic.", unknown, source);
    m.increasing.clear();  // the section replaces the preset's constraints as a whole
    m.decreasing.clear();
    m.monotonic_outputs.clear();
    mono.get("increasing", m.increasing);
    mono.get("decreasing", m.decreasing);
    if (mono.has("outputs")) {
      const auto& outs = mono.at("outputs");
      TORCH_CHECK(outs.is_array(), source, ": model.monotonic.outputs must be an array (one object per output)");
      for (size_t k = 0; k < outs.size(); ++k) {
        Reader o(outs[k], "model.monotonic.outputs[" + std::to_string(k) + "].", unknown, source);
        models::MonotoneSet set;
        o.get("increasing", set.increasing);
        o.get("decreasing", set.decreasing);
        o.finish();
        m.monotonic_outputs.push_back(set);
      }
      TORCH_CHECK(m.increasing.empty() && m.decreasing.empty(), source, ": model.monotonic: give increasing / ",
                  "decreasing for all outputs or per output in outputs, not both");
    }
    mono.finish();
  }
  r.finish();
}

void read_optimizer(Reader& parent, TrainConfig& c, std::vector<std::string>& unknown, const std::string& source) {
  if (!parent.has("optimizer")) return;
  Reader o(parent.at("optimizer"), "optimizer.", unknown, source);
  o.get("name", c.optimizer.name);
  o.get("lr", c.optimizer.lr);
  std::vector<double> betas{c.optimizer.beta1, c.optimizer.beta2};
  o.get("betas", betas);
  TORCH_CHECK(betas.size() == 2, source, ": optimizer.betas must have 2 values, got ", betas.size());
  c.optimizer.beta1 = betas[0];
  c.optimizer.beta2 = betas[1];
  o.get("weight_decay", c.optimizer.weight_decay);
  o.get("momentum", c.optimizer.momentum);
  o.get("spline_lr", c.optimizer.spline_lr);
  o.finish();
}

void read_loss(Reader& parent, TrainConfig& c, std::vector<std::string>& unknown, const std::string& source) {
  if (!parent.has("loss")) return;
  Reader l(parent.at("loss"), "loss.", unknown, source);
  l.get("name", c.loss.name);
  l.get("margin", c.loss.margin);
  l.get("offset", c.loss.offset);
  l.get("temperature", c.loss.temperature);
  l.get("eps", c.loss.eps);
  l.get("lam0", c.loss.lam0);
  l.get("lam_end", c.loss.lam_end);
  l.finish();
}

void read_small_sections(Reader& r, TrainConfig& c, std::vector<std::string>& unknown, const std::string& source) {
  if (r.has("schedule")) {
    Reader s(r.at("schedule"), "schedule.", unknown, source);
    s.get("name", c.schedule.name);
    s.get("warmup", c.schedule.warmup);
    s.finish();
  }
  if (r.has("augment")) {
    Reader a(r.at("augment"), "augment.", unknown, source);
    a.get("crop_padding", c.augment.crop_padding);
    a.get("flip", c.augment.flip);
    a.finish();
  }
}

// The distance section's pairs, read now and checked after the unknown-key report (a misspelt key is
// the likelier mistake).
struct DistancePairs {
  std::vector<double> p, p_epochs, eps_epochs;
};

DistancePairs read_distance(Reader& r, TrainConfig& c, std::vector<std::string>& unknown, const std::string& source) {
  auto& ds = c.distance;
  DistancePairs d{{ds.p_start, ds.p_end}, {ds.p_epochs_begin, ds.p_epochs_end}, {ds.eps_epochs_begin, ds.eps_epochs_end}};
  if (!r.has("distance")) return d;
  Reader dr(r.at("distance"), "distance.", unknown, source);
  dr.get("p", d.p);
  dr.get("p_epochs", d.p_epochs);
  dr.get("eps_epochs", d.eps_epochs);
  dr.get("eps_smooth", ds.eps_smooth);
  dr.finish();
  return d;
}

void check_distance(const DistancePairs& d, TrainConfig& c, const std::string& source) {
  for (const auto& [name, v] : {std::pair<const char*, const std::vector<double>*>{"p", &d.p},
                                {"p_epochs", &d.p_epochs}, {"eps_epochs", &d.eps_epochs}})
    TORCH_CHECK(v->size() == 2, source, ": distance.", name, " takes two values ([start, end]), got ", v->size());
  TORCH_CHECK(d.p[0] >= 1 && d.p[1] >= d.p[0], source,
              ": distance.p must be [start, end] with 1 <= start <= end, got [", d.p[0], ", ", d.p[1], "]");
  auto& ds = c.distance;
  TORCH_CHECK(ds.eps_smooth >= 0 && ds.eps_smooth < 1, source, ": distance.eps_smooth must be in [0, 1), got ",
              ds.eps_smooth);
  ds.p_start = d.p[0], ds.p_end = d.p[1];
  ds.p_epochs_begin = d.p_epochs[0], ds.p_epochs_end = d.p_epochs[1];
  ds.eps_epochs_begin = d.eps_epochs[0], ds.eps_epochs_end = d.eps_epochs[1];
}

// Each radius a number >= 0 or a fraction like "36/255".
std::vector<double> read_radii(const nlohmann::json& j, const std::string& source) {
  TORCH_CHECK(j.is_array() && !j.empty(), source, ": radii must be a non-empty array, got ", j.dump());
  std::vector<double> out;
  for (size_t i = 0; i < j.size(); ++i) {
    const auto& v = j[i];
    const bool number = v.is_number() && std::isfinite(v.get<double>()) && v.get<double>() >= 0;
    TORCH_CHECK(number || v.is_string(), source, ": radii[", i,
                "] must be a number >= 0 or a fraction like \"36/255\", got ", v.dump());
    try {
      out.push_back(number ? v.get<double>() : certify::parse_radius(v.get<std::string>()));
    } catch (const c10::Error& e) {
      TORCH_CHECK(false, source, ": radii[", i, "]: ", e.what_without_backtrace());
    }
  }
  return out;
}

void check_values(const TrainConfig& c, const std::string& source) {
  TORCH_CHECK(c.epochs >= 1, source, ": epochs must be >= 1, got ", c.epochs);
  TORCH_CHECK(c.batch_size >= 1, source, ": batch_size must be >= 1, got ", c.batch_size);
  TORCH_CHECK(c.optimizer.name == "adam" || c.optimizer.name == "sgd", source,
              ": optimizer.name must be adam or sgd, got '", c.optimizer.name, "'");
  TORCH_CHECK(c.optimizer.lr > 0, source, ": optimizer.lr must be positive, got ", c.optimizer.lr);
  TORCH_CHECK(c.optimizer.spline_lr >= 0, source, ": optimizer.spline_lr must be >= 0 (0: optimizer.lr), got ",
              c.optimizer.spline_lr);
  const bool tabular = !c.table.path.empty(), monotonic = c.model.family == "monotonic";
  TORCH_CHECK(tabular == monotonic, source, ": ", monotonic ? "the monotonic family trains on a table: set table.path"
                                                           : "a table (table.path) trains the monotonic family only",
              " (model.family is ", c.model.family, ")");
  TORCH_CHECK(!tabular || !c.table.target.empty(), source, ": table.target (the target column) is required");
  TORCH_CHECK(!tabular || (c.table.test_fraction > 0 && c.table.test_fraction < 1), source,
              ": table.test_fraction must be in (0, 1), got ", c.table.test_fraction);
  TORCH_CHECK(c.table.task == "regression" || c.table.task == "binary" || c.table.task == "multiclass", source,
              ": table.task must be regression, binary or multiclass, got '", c.table.task, "'");
  TORCH_CHECK(c.table.missing == "error" || c.table.missing == "drop", source,
              ": table.missing must be error or drop, got '", c.table.missing, "'");
  if (c.dp.enabled) {
    const auto& d = c.dp;
    TORCH_CHECK(d.epsilon > 0 || d.noise_multiplier >= 0, source, ": dp.epsilon (the budget) must be positive ",
                "unless dp.noise_multiplier is given, got ", d.epsilon);
    TORCH_CHECK(d.delta > 0 && d.delta < 1, source, ": dp.delta must be in (0, 1), got ", d.delta);
    TORCH_CHECK(d.sampling_rate >= 0 && d.sampling_rate <= 1, source, ": dp.sampling_rate must be in [0, 1] ",
                "(0: batch_size / examples), got ", d.sampling_rate);
    TORCH_CHECK(d.input_norm >= 0, source, ": dp.input_norm must be >= 0 (0: model.input_norm), got ", d.input_norm);
    TORCH_CHECK(d.mode == "global" || d.mode == "per_layer", source, ": dp.mode must be global or per_layer, got '",
                d.mode, "'");
  }
  TORCH_CHECK(c.regularization.tv2 >= 0, source, ": regularization.tv2 must be >= 0, got ", c.regularization.tv2);
  TORCH_CHECK(c.model.activation == "spline" || (c.regularization.tv2 == 0 && c.optimizer.spline_lr == 0), source,
              ": regularization.tv2 and optimizer.spline_lr apply to spline activations only (model.activation "
              "\"spline\"); this model (family ", c.model.family, ", activation '", c.model.activation, "') has none");
  try {
    learning_rate(c.schedule, 1.0, 0, 1);  // validates the name
  } catch (const c10::Error& e) {
    TORCH_CHECK(false, source, ": ", e.what_without_backtrace());
  }
  TORCH_CHECK(c.loss.name == "offset_ce" || c.loss.name == "multi_margin" || c.loss.name == "ce" ||
                  c.loss.name == "mixture",
              source, ": loss.name must be offset_ce, multi_margin, ce or mixture, got '", c.loss.name, "'");
  TORCH_CHECK(c.loss.name != "mixture" || c.loss.eps > 0, source, ": loss.eps must be positive, got ", c.loss.eps);
}

}  // namespace

TrainConfig config_from_json(const nlohmann::json& j, const std::string& source) {
  TrainConfig c;
  std::vector<std::string> unknown;
  Reader r(j, "", unknown, source);
  if (r.has("model")) read_model(r.at("model"), c, unknown, source);
  r.get("data", c.data);
  r.get("epochs", c.epochs);
  r.get("batch_size", c.batch_size);
  r.get("subset", c.subset);
  r.get("seed", c.seed);
  read_optimizer(r, c, unknown, source);
  read_loss(r, c, unknown, source);
  read_small_sections(r, c, unknown, source);
  if (r.has("table")) {
    Reader t(r.at("table"), "table.", unknown, source);
    t.get("path", c.table.path);
    t.get("target", c.table.target);
    t.get("features", c.table.features);
    t.get("missing", c.table.missing);
    t.get("test_path", c.table.test_path);
    t.get("test_fraction", c.table.test_fraction);
    t.get("task", c.table.task);
    t.finish();
  }
  if (r.has("dp")) {
    Reader d(r.at("dp"), "dp.", unknown, source);
    c.dp.enabled = true;
    d.get("epsilon", c.dp.epsilon);
    d.get("delta", c.dp.delta);
    d.get("sampling_rate", c.dp.sampling_rate);
    d.get("noise_multiplier", c.dp.noise_multiplier);
    d.get("input_norm", c.dp.input_norm);
    d.get("mode", c.dp.mode);
    d.finish();
  }
  if (r.has("regularization")) {
    Reader g(r.at("regularization"), "regularization.", unknown, source);
    g.get("tv2", c.regularization.tv2);
    g.finish();
  }
  const auto distance = read_distance(r, c, unknown, source);
  std::string norm = to_string(c.norm);
  r.get("norm", norm);
  const bool has_radii = r.has("radii");
  r.finish();
  if (!unknown.empty()) {
    std::string list;
    for (const auto& k : unknown) list += (list.empty() ? "" : ", ") + k;
    TORCH_CHECK(false, source, ": unknown key", unknown.size() > 1 ? "s" : "", ": ", list);
  }
  check_distance(distance, c, source);
  try {
    c.norm = parse_norm(norm);
  } catch (const c10::Error& e) {
    TORCH_CHECK(false, source, ": ", e.what_without_backtrace());
  }
  if (has_radii) c.radii = read_radii(r.at("radii"), source);
  check_values(c, source);
  return c;
}

TrainConfig load_config(const std::string& path) {
  std::ifstream in(path);
  TORCH_CHECK(in, path, ": cannot open config file");
  nlohmann::json j;
  try {
    in >> j;
  } catch (const nlohmann::json::parse_error& e) {
    TORCH_CHECK(false, path, ": not valid JSON: ", e.what());
  }
  return config_from_json(j, path);
}

namespace {
nlohmann::json monotonic_json(const models::ModelSpec& m) {
  if (m.monotonic_outputs.empty()) return {{"increasing", m.increasing}, {"decreasing", m.decreasing}};
  nlohmann::json outs = nlohmann::json::array();
  for (const auto& o : m.monotonic_outputs) outs.push_back({{"increasing", o.increasing}, {"decreasing", o.decreasing}});
  return {{"outputs", outs}};
}
}  // namespace

nlohmann::json to_json(const TrainConfig& c) {
  const auto& m = c.model;
  nlohmann::json model = {{"family", m.family},         {"conv_layers", m.conv_layers},
                          {"dense_layers", m.dense_layers}, {"width", m.width},
                          {"conv_hidden", m.conv_hidden}, {"dense_hidden", m.dense_hidden},
                          {"pool", m.pool},             {"head", m.head},
                          {"std", m.std},               {"q", m.q},
                          {"identity_init", m.identity_init}, {"sort_k", m.sort_k},
                          {"activation", m.activation}, {"spline_knots", m.spline_knots},
                          {"spline_grid", m.spline_grid}, {"spline_init", m.spline_init},
                          {"lambda", m.lambda}, {"group_size", m.group_size},
                          {"monotonic", monotonic_json(m)}, {"input_norm", m.input_norm}};
  if (!c.preset.empty()) model["preset"] = c.preset;
  nlohmann::json j = {{"model", model},
          {"data", c.data},
          {"epochs", c.epochs},
          {"batch_size", c.batch_size},
          {"subset", c.subset},
          {"seed", c.seed},
          {"optimizer",
           {{"name", c.optimizer.name},
            {"lr", c.optimizer.lr},
            {"betas", {c.optimizer.beta1, c.optimizer.beta2}},
            {"weight_decay", c.optimizer.weight_decay},
            {"momentum", c.optimizer.momentum},
            {"spline_lr", c.optimizer.spline_lr}}},
          {"regularization", {{"tv2", c.regularization.tv2}}},
          {"table",
           {{"path", c.table.path},
            {"target", c.table.target},
            {"features", c.table.features},
            {"missing", c.table.missing},
            {"test_path", c.table.test_path},
            {"test_fraction", c.table.test_fraction},
            {"task", c.table.task}}},
          {"schedule", {{"name", c.schedule.name}, {"warmup", c.schedule.warmup}}},
          {"loss",
           {{"name", c.loss.name},
            {"margin", c.loss.margin},
            {"offset", c.loss.offset},
            {"temperature", c.loss.temperature},
            {"eps", c.loss.eps},
            {"lam0", c.loss.lam0},
            {"lam_end", c.loss.lam_end}}},
          {"distance",
           {{"p", {c.distance.p_start, c.distance.p_end}},
            {"p_epochs", {c.distance.p_epochs_begin, c.distance.p_epochs_end}},
            {"eps_epochs", {c.distance.eps_epochs_begin, c.distance.eps_epochs_end}},
            {"eps_smooth", c.distance.eps_smooth}}},
          {"norm", to_string(c.norm)},
          {"augment", {{"crop_padding", c.augment.crop_padding}, {"flip", c.augment.flip}}},
          {"radii", c.radii}};
  if (c.dp.enabled)
    j["dp"] = {{"epsilon", c.dp.epsilon},           {"delta", c.dp.delta},
               {"sampling_rate", c.dp.sampling_rate}, {"noise_multiplier", c.dp.noise_multiplier},
               {"input_norm", c.dp.input_norm},     {"mode", c.dp.mode}};
  return j;
}

nlohmann::json applicable_config(const nlohmann::json& config) {
  auto c = config;
  const auto family = c.value("model", nlohmann::json::object()).value("family", std::string("sll"));
  const bool distance = family == "sortnet" || family == "linfdist";
  if (!distance) c.erase("distance");
  if (c.contains("model")) {
    auto& m = c["model"];
    for (const char* key : {"q", "identity_init", "sort_k"})
      if (!distance || (family == "linfdist" && std::string(key) != "identity_init")) m.erase(key);
    if (distance) {
      for (const char* key : {"conv_layers", "conv_hidden", "dense_hidden", "pool", "head"}) m.erase(key);
    } else if (family == "plain") {
      m.erase("conv_hidden");
    } else if (family == "aol") {
      m.erase("dense_hidden");  // AOL dense layers are square
    }
    const bool splines = m.value("activation", std::string()) == "spline";
    if (family != "aol" && family != "cpl" && family != "sll") m.erase("activation");
    if (family != "dp") m.erase("input_norm");
    if (family == "dp") {
      for (const char* key : {"conv_layers", "conv_hidden", "dense_hidden", "pool", "head", "std"}) m.erase(key);
    }
    if (family != "monotonic") {
      for (const char* key : {"lambda", "monotonic"}) m.erase(key);
      if (family != "dp") m.erase("group_size");
      c.erase("table");
    } else {
      for (const char* key : {"conv_layers", "conv_hidden", "dense_hidden", "pool", "head", "std"}) m.erase(key);
      for (const char* key : {"data", "augment", "radii", "norm", "distance", "loss"}) c.erase(key);
    }
    if (!splines) {
      for (const char* key : {"spline_knots", "spline_grid", "spline_init"}) m.erase(key);
      c.erase("regularization");
      if (c.contains("optimizer")) c["optimizer"].erase("spline_lr");
    }
  }
  if (c.contains("loss")) {
    auto& l = c["loss"];
    const auto name = l.value("name", std::string());
    const std::map<std::string, std::vector<std::string>> fields{
        {"offset_ce", {"offset", "temperature"}}, {"multi_margin", {"margin"}},
        {"mixture", {"eps", "lam0", "lam_end"}}, {"ce", {}}};
    auto keep = fields.count(name) ? fields.at(name) : std::vector<std::string>{};
    keep.push_back("name");
    nlohmann::json kept = nlohmann::json::object();
    for (const auto& k : keep)
      if (l.contains(k)) kept[k] = l[k];
    l = kept;
  }
  if (c.value("optimizer", nlohmann::json::object()).value("name", std::string()) == "adam") c["optimizer"].erase("momentum");
  return c;
}

}  // namespace lipkit::train
