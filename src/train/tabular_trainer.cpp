// Training on a table (the monotonic family): read, split, standardise on the training rows, fit the
// target (standardised, MSE) or its classes (BCE / cross-entropy) with the configured optimizer and
// schedule, log the test metrics every epoch, and write a checkpoint whose metadata carries the column
// schema, classes, target scale and training range, so the model can be used on new rows.

#include <torch/torch.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "lipkit/data/tabular.h"
#include "lipkit/models/presets.h"
#include "lipkit/train/checkpoint.h"
#include "lipkit/train/schedule.h"
#include "lipkit/train/tabular_model.h"
#include "lipkit/train/trainer.h"
#include "train/loop_support.h"

namespace lipkit::train {

namespace {

// "autompg": npm vega-datasets' cars.json, where scripts/setup.sh installs it (or $LIPKIT_DATA).
std::string resolve_table(const std::string& path) {
  if (path != "autompg") return path;
  std::vector<std::string> places;
  if (const char* d = std::getenv("LIPKIT_DATA")) places.push_back(std::string(d) + "/node_modules/vega-datasets/data/cars.json");
  places.push_back("/usr/local/share/lipkit/node_modules/vega-datasets/data/cars.json");
  places.push_back("node_modules/vega-datasets/data/cars.json");
  std::string tried;
  for (const auto& p : places) {
    if (std::filesystem::exists(p)) return p;
    tried += (tried.empty() ? "" : ", ") + p;
  }
  TORCH_CHECK(false, "table.path autompg: cars.json of npm vega-datasets not found (looked in ", tried,
              "); scripts/setup.sh installs it: npm install --prefix /usr/local/share/lipkit vega-datasets@2");
}

// +1 / -1 / 0 per encoded feature from the names in increasing / decreasing.
std::vector<int64_t> resolve_row(const models::MonotoneSet& set, const data::Table& t) {
  std::vector<int64_t> c(t.feature_names.size(), 0);
  auto mark = [&](const std::string& name, int64_t sign) {
    for (const auto& col : t.columns)
      TORCH_CHECK(col.name != name || col.categories.empty(), "model.monotonic: '", name,
                  "' is a categorical column; monotonicity is defined for numeric features only");
    for (size_t f = 0; f < t.feature_names.size(); ++f) {
      if (t.feature_names[f] != name) continue;
      TORCH_CHECK(c[f] == 0, "model.monotonic: '", name, "' is listed twice (increasing and decreasing, or repeated)");
      c[f] = sign;
      return;
    }
    std::string known;
    for (const auto& f : t.feature_names) known += (known.empty() ? "" : ", ") + f;
    TORCH_CHECK(false, "model.monotonic: no feature '", name, "' (features: ", known, ")");
  };
  for (const auto& n : set.increasing) mark(n, +1);
  for (const auto& n : set.decreasing) mark(n, -1);
  return c;
}

// One row for all outputs, or one per output (model.monotonic.outputs), flattened row-major.
std::vector<int64_t> resolve_monotone(const models::ModelSpec& s, const data::Table& t, int64_t outputs) {
  if (s.monotonic_outputs.empty()) return resolve_row({s.increasing, s.decreasing}, t);
  TORCH_CHECK(s.increasing.empty() && s.decreasing.empty(), "model.monotonic: give increasing / decreasing for all ",
              "outputs or per output in outputs, not both");
  TORCH_CHECK(static_cast<int64_t>(s.monotonic_outputs.size()) == outputs, "model.monotonic.outputs has ",
              s.monotonic_outputs.size(), " entries; the model has ", outputs, " outputs");
  std::vector<int64_t> c;
  for (const auto& set : s.monotonic_outputs) {
    const auto row = resolve_row(set, t);
    c.insert(c.end(), row.begin(), row.end());
  }
  return c;
}

std::vector<double> as_vector(const torch::Tensor& t) {
  auto c = t.to(torch::kDouble).contiguous();
  return {c.data_ptr<double>(), c.data_ptr<double>() + c.numel()};
}

// The task's loss on a batch: targets are standardised values (regression) or class indices.
torch::Tensor task_loss(const std::string& task, const torch::Tensor& out, const torch::Tensor& y) {
  if (task == "binary") return torch::binary_cross_entropy_with_logits(out.squeeze(1), y);
  if (task == "multiclass") return torch::nn::functional::cross_entropy(out, y.to(torch::kLong));
  return torch::mse_loss(out.squeeze(1), y);
}

// Test metrics: regression the MSE in the target's units; classification the loss and the accuracy.
nlohmann::json evaluate(const std::string& task, torch::nn::Sequential& model, const data::Table& test, double ym,
                        double ys, TrainSummary& summary) {
  torch::NoGradGuard no_grad;
  model->eval();
  auto out = model->forward(test.x.to(torch::kFloat)).to(torch::kDouble);
  if (task == "regression") {
    summary.test_mse = torch::mse_loss(out.squeeze(1) * ys + ym, test.y).item<double>();
    return {{"test_mse", summary.test_mse}};
  }
  auto pred = task == "binary" ? (out.squeeze(1) > 0).to(torch::kDouble) : out.argmax(1).to(torch::kDouble);
  summary.clean_accuracy = pred.eq(test.y).to(torch::kDouble).mean().item<double>();
  return {{"test_loss", task_loss(task, out, test.y).item<double>()}, {"test_accuracy", summary.clean_accuracy}};
}

}  // namespace

TrainSummary train_tabular(const TrainConfig& config, const TrainOptions& options) {
  TORCH_CHECK(!options.resume, "train: --resume is not supported for tables (a run takes seconds); start again");
  const auto t0 = std::chrono::steady_clock::now();
  detail::make_dirs(options.out_dir);
  const auto& task = config.table.task;
  data::TabularOptions o;
  o.target = config.table.target;
  o.features = config.table.features;
  o.missing = config.table.missing;
  o.class_target = task != "regression";
  const auto all = data::read_table(resolve_table(config.table.path), o);
  TORCH_CHECK(task != "binary" || all.classes.size() == 2, config.table.path, ": table.task binary needs 2 classes in '",
              o.target, "', found ", all.classes.size());
  TORCH_CHECK(task != "multiclass" || all.classes.size() >= 2, config.table.path, ": table.task multiclass needs >= 2 ",
              "classes in '", o.target, "', found ", all.classes.size());
  data::Table train_set = all, test_set;
  if (config.table.test_path.empty()) {
    std::tie(train_set, test_set) = data::split_table(all, config.table.test_fraction, config.seed);
  } else {
    o.classes = all.classes;
    test_set = data::read_table(config.table.test_path, o, &all.columns);
  }
  const auto stats = data::fit_standardization(train_set.x);
  const bool regression = task == "regression";
  const double ym = regression ? train_set.y.mean().item<double>() : 0.0;
  const double ys = regression ? std::max(train_set.y.std(/*unbiased=*/false).item<double>(), 1e-12) : 1.0;
  auto spec = config.model;
  spec.in_channels = static_cast<int64_t>(all.feature_names.size());
  spec.image_size = 1;
  spec.num_classes = task == "multiclass" ? static_cast<int64_t>(all.classes.size()) : 1;
  spec.mean = as_vector(stats.mean);
  spec.std = as_vector(stats.std);
  spec.monotone = resolve_monotone(spec, all, spec.num_classes);
  torch::manual_seed(config.seed);
  auto model = models::build_model(spec);
  auto opt = detail::make_optimizer(config.optimizer, detail::parameter_groups(*model, config.optimizer));
  auto x = train_set.x.to(torch::kFloat), y = ((train_set.y - ym) / ys).to(torch::kFloat);
  const int64_t n = x.size(0), batch = std::min(config.batch_size, n), per_epoch = (n + batch - 1) / batch;
  TrainSummary summary;
  std::ofstream metrics(options.out_dir + "/metrics.jsonl");
  for (int64_t epoch = 0; epoch < config.epochs; ++epoch) {
    model->train();
    auto gen = at::make_generator<at::CPUGeneratorImpl>(config.seed * 1000003 + static_cast<uint64_t>(epoch));
    auto perm = torch::randperm(n, gen, torch::kLong);
    double loss_sum = 0;
    for (int64_t b = 0; b < per_epoch; ++b) {
      const int64_t step = epoch * per_epoch + b;
      detail::set_lr(*opt, config.optimizer, learning_rate(config.schedule, 1.0, step, per_epoch * config.epochs));
      auto idx = perm.narrow(0, b * batch, std::min(batch, n - b * batch));
      opt->zero_grad();
      auto loss = task_loss(task, model->forward(x.index_select(0, idx)), y.index_select(0, idx));
      const double lv = loss.item<double>();
      TORCH_CHECK(std::isfinite(lv), "train: loss is ", lv, " at epoch ", epoch + 1, "; lower optimizer.lr");
      loss.backward();
      opt->step();
      loss_sum += lv * idx.size(0);
    }
    auto line = evaluate(task, model, test_set, ym, ys, summary);
    line["epoch"] = epoch + 1;
    line["train_loss"] = loss_sum / n;
    metrics << line.dump() << "\n" << std::flush;
    if (options.progress)
      std::fprintf(stderr, "epoch %ld/%ld: train loss %.4f%s %s\n", (long)epoch + 1, (long)config.epochs,
                   loss_sum / n, regression ? " (standardised)" : "",
                   regression ? ("test MSE " + std::to_string(summary.test_mse)).c_str()
                              : ("test accuracy " + std::to_string(summary.clean_accuracy)).c_str());
    summary.epochs_done = epoch + 1;
  }
  const nlohmann::json config_json = to_json(config);
  std::ofstream(options.out_dir + "/config.json") << config_json.dump(2) << "\n";
  save_checkpoint(options.out_dir + "/model.pt", *model, nullptr,
                  {{"config", config_json}, {"spec", spec_to_json(spec)}, {"epoch", config.epochs}, {"batch", 0},
                   {"data", config.table.path}, {"table", tabular_meta(all, train_set, task, ym, ys)}});
  summary.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return summary;
}

}  // namespace lipkit::train
