#include "lipkit/train/info.h"

#include <torch/torch.h>

#include <fstream>
#include <sstream>

#include "lipkit/certify/certify.h"
#include "lipkit/layers/structure.h"
#include "lipkit/train/checkpoint.h"
#include "lipkit/train/config.h"
#include "lipkit/train/tabular_model.h"

namespace lipkit::train {

namespace {
nlohmann::json last_metrics_line(const std::string& checkpoint) {
  const auto dir = checkpoint.substr(0, checkpoint.find_last_of('/') + 1);
  std::ifstream metrics(dir + "metrics.jsonl");
  std::string line, last;
  while (std::getline(metrics, line))
    if (!line.empty()) last = line;
  if (last.empty()) return nullptr;
  try {
    return nlohmann::json::parse(last);
  } catch (const nlohmann::json::parse_error&) {
    return nullptr;  // a line cut by a crash is not worth failing info for
  }
}
// The monotone guarantee in words and numbers, per output, of the checkpoint's model as loaded.
nlohmann::json table_info(const EvalModel& loaded, const std::string& path) {
  const auto m = tabular_model(loaded.model, loaded.meta, path);
  const bool proven = monotone_proven(m);
  const auto bounds = raw_partial_bounds(m);
  nlohmann::json outputs = nlohmann::json::array();
  for (int64_t k = 0; k < m.constraints.size(0); ++k) {
    nlohmann::json inc = nlohmann::json::array(), dec = nlohmann::json::array(), partial = nlohmann::json::object();
    for (int64_t i = 0; i < m.constraints.size(1); ++i) {
      const double c = m.constraints[k][i].item<double>();
      if (c > 0) inc.push_back(m.feature_names[i]);
      if (c < 0) dec.push_back(m.feature_names[i]);
      partial[m.feature_names[i]] = bounds[k][i].item<double>();
    }
    const std::string name = m.task == "multiclass" ? "logit(" + m.classes[k] + ")"
                             : m.task == "binary"   ? "logit(" + m.classes[1] + ")"
                                                    : m.target;
    outputs.push_back({{"output", name}, {"increasing", inc}, {"decreasing", dec}, {"partial_bound_raw", partial}});
  }
  return {{"task", m.task},          {"target", m.target},   {"classes", m.classes},
          {"features", m.feature_names}, {"lambda", m.lambda}, {"monotone_proven", proven},
          {"outputs", outputs}};
}
}  // namespace

CheckpointInfo checkpoint_info(const std::string& path) {
  auto m = load_for_evaluation(path);
  CheckpointInfo info;
  std::ostringstream arch;
  arch << *m.model;
  info.architecture = arch.str();
  for (const auto& p : m.model->parameters()) info.parameters += p.numel();
  for (Norm norm : {Norm::L2, Norm::Linf}) {
    try {
      info.bounds.emplace_back(norm, certify::body_bound(m.model, norm));
    } catch (const c10::Error&) {
      info.bounds.emplace_back(norm, c10::nullopt);
    }
  }
  info.pairwise_head = m.model->size() && m.model->ptr(m.model->size() - 1)->as<NormalizedLinearImpl>();
  info.data = m.data;
  info.epoch = m.meta.value("epoch", 0);
  info.next_batch = m.meta.value("batch", 0);
  info.config = applicable_config(m.meta.value("config", nlohmann::json::object()));
  info.last_metrics = last_metrics_line(path);
  if (m.meta.contains("table")) info.table = table_info(m, path);
  if (m.meta.contains("dp")) info.dp = m.meta.at("dp");
  return info;
}

}  // namespace lipkit::train
