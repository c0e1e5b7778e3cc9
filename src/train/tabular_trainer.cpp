// Training on a table (the monotonic family): read, split, standardise on the training rows, fit the
// target (standardised) by MSE with Adam and the configured schedule, log the test MSE (in the target's
// units) every epoch, and write a checkpoint whose metadata carries the column schema and the target's
// scale, so the model can be used on new rows.

#include <torch/torch.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "lipkit/data/tabular.h"
#include "lipkit/models/presets.h"
#include "lipkit/train/checkpoint.h"
#include "lipkit/train/schedule.h"
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
std::vector<int64_t> resolve_monotone(const models::ModelSpec& s, const data::Table& t) {
  std::vector<int64_t> c(t.feature_names.size(), 0);
  auto mark = [&](const std::string& name, int64_t sign) {
    for (const auto& col : t.columns)
      TORCH_CHECK(col.name != name || col.categories.empty(), "model.monotonic: '", name,
                  "' is a categorical column; monotonicity is defined for numeric features only");
    for (size_t f = 0; f < t.feature_names.size(); ++f) {
      if (t.feature_names[f] != name) continue;
      TORCH_CHECK(c[f] == 0, "model.monotonic: '", name, "' is listed as both increasing and decreasing");
      c[f] = sign;
      return;
    }
    std::string known;
    for (const auto& f : t.feature_names) known += (known.empty() ? "" : ", ") + f;
    TORCH_CHECK(false, "model.monotonic: no feature '", name, "' (features: ", known, ")");
  };
  for (const auto& n : s.increasing) mark(n, +1);
  for (const auto& n : s.decreasing) mark(n, -1);
  return c;
}

std::vector<double> as_vector(const torch::Tensor& t) {
  auto c = t.to(torch::kDouble).contiguous();
  return {c.data_ptr<double>(), c.data_ptr<double>() + c.numel()};
}

nlohmann::json schema_json(const data::Table& t, double mean, double scale) {
  nlohmann::json cols = nlohmann::json::array();
  for (const auto& c : t.columns) cols.push_back({{"name", c.name}, {"categories", c.categories}});
  return {{"columns", cols}, {"feature_names", t.feature_names}, {"target", t.target},
          {"target_mean", mean}, {"target_std", scale}};
}

}  // namespace

TrainSummary train_tabular(const TrainConfig& config, const TrainOptions& options) {
  TORCH_CHECK(!options.resume, "train: --resume is not supported for tables (a run takes seconds); start again");
  const auto t0 = std::chrono::steady_clock::now();
  detail::make_dirs(options.out_dir);
  data::TabularOptions o;
  o.target = config.table.target;
  o.features = config.table.features;
  o.missing = config.table.missing;
  const auto all = data::read_table(resolve_table(config.table.path), o);
  data::Table train_set = all, test_set;
  if (config.table.test_path.empty()) {
    std::tie(train_set, test_set) = data::split_table(all, config.table.test_fraction, config.seed);
  } else {
    test_set = data::read_table(config.table.test_path, o, &all.columns);
  }
  const auto stats = data::fit_standardization(train_set.x);
  const double ym = train_set.y.mean().item<double>();
  const double ys = std::max(train_set.y.std(/*unbiased=*/false).item<double>(), 1e-12);
  auto spec = config.model;
  spec.in_channels = static_cast<int64_t>(all.feature_names.size());
  spec.image_size = 1;
  spec.num_classes = 1;
  spec.mean = as_vector(stats.mean);
  spec.std = as_vector(stats.std);
  spec.monotone = resolve_monotone(spec, all);
  torch::manual_seed(config.seed);
  auto model = models::build_model(spec);
  auto opt = detail::make_optimizer(config.optimizer, detail::parameter_groups(*model, config.optimizer));
  auto x = train_set.x.to(torch::kFloat), y = ((train_set.y - ym) / ys).to(torch::kFloat).unsqueeze(1);
  auto xt = test_set.x.to(torch::kFloat);
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
      auto loss = torch::mse_loss(model->forward(x.index_select(0, idx)), y.index_select(0, idx));
      const double lv = loss.item<double>();
      TORCH_CHECK(std::isfinite(lv), "train: loss is ", lv, " at epoch ", epoch + 1, "; lower optimizer.lr");
      loss.backward();
      opt->step();
      loss_sum += lv * idx.size(0);
    }
    model->eval();
    torch::NoGradGuard no_grad;
    auto pred = model->forward(xt).squeeze(1).to(torch::kDouble) * ys + ym;
    summary.test_mse = torch::mse_loss(pred, test_set.y).item<double>();
    metrics << nlohmann::json({{"epoch", epoch + 1}, {"train_loss", loss_sum / n}, {"test_mse", summary.test_mse}})
                   .dump()
            << "\n";
    if (options.progress)
      std::fprintf(stderr, "epoch %ld/%ld: train loss %.4f (standardised) test MSE %.4f\n", (long)epoch + 1,
                   (long)config.epochs, loss_sum / n, summary.test_mse);
    summary.epochs_done = epoch + 1;
  }
  const nlohmann::json config_json = to_json(config);
  std::ofstream(options.out_dir + "/config.json") << config_json.dump(2) << "\n";
  save_checkpoint(options.out_dir + "/model.pt", *model, nullptr,
                  {{"config", config_json}, {"spec", spec_to_json(spec)}, {"epoch", config.epochs}, {"batch", 0},
                   {"data", config.table.path}, {"table", schema_json(all, ym, ys)}});
  summary.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return summary;
}

}  // namespace lipkit::train
