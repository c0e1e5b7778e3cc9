#include "lipkit/train/info.h"

#include <torch/torch.h>

#include <fstream>
#include <sstream>

#include "lipkit/certify/certify.h"
#include "lipkit/layers/structure.h"
#include "lipkit/train/checkpoint.h"
#include "lipkit/train/config.h"

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
  return info;
}

}  // namespace lipkit::train
