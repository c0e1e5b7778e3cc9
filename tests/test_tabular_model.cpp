// Models trained on a table, end to end: classification heads (binary, multi-class with a constraint
// per output), the violation search (0 on monotonic nets, found on an unconstrained MLP and on a
// residual too weak for its body), prediction by column name, the raw-unit derivative bound and what
// `lipkit info` reports.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <fstream>
#include <sstream>

#include "lipkit/certify/monotonic_check.h"
#include "lipkit/layers/monotonic.h"
#include "lipkit/models/presets.h"
#include "lipkit/train/checkpoint.h"
#include "lipkit/train/info.h"
#include "lipkit/train/tabular_model.h"
#include "lipkit/train/trainer.h"
#include "support/expect_error.h"
#include "support/synthetic_data.h"

namespace {

using namespace lipkit;

// Rows (a in [0, 10], b in [0, 2], c in [0, 6], colour in {red, green}); the label is a function of a
// score increasing in a and decreasing in b.
torch::Tensor write_rows(const std::string& path, int64_t n, uint64_t seed, bool three_classes) {
  torch::manual_seed(seed);
  auto x = torch::rand({n, 3}, torch::kDouble) * torch::tensor({10.0, 2.0, 6.0}, torch::kDouble);
  auto score = 0.5 * x.select(1, 0) - 2.0 * x.select(1, 1) + 0.3 * torch::sin(x.select(1, 2));
  std::ofstream f(path);
  f << "label,c,colour,b,a\n";  // not in feature order: read by name
  for (int64_t i = 0; i < n; ++i) {
    const double s = score[i].item<double>();
    const std::string label = three_classes ? (s < 0 ? "low" : s < 2 ? "mid" : "high") : (s < 1 ? "no" : "yes");
    f << label << "," << x[i][2].item<double>() << "," << (i % 2 ? "red" : "green") << "," << x[i][1].item<double>()
      << "," << x[i][0].item<double>() << "\n";
  }
  return x;
}

train::TrainConfig table_config(const std::string& csv, const std::string& task) {
  train::TrainConfig c;
  c.model = models::model_preset("monotonic-autompg");
  c.model.decreasing.clear();  // the preset's Auto MPG names
  c.table.path = csv;
  c.table.target = "label";
  c.table.task = task;
  c.epochs = 40;
  c.batch_size = 32;
  c.optimizer.lr = 0.005;
  c.optimizer.beta1 = 0.9;
  c.optimizer.beta2 = 0.999;
  return c;
}

train::TabularModel train_on(const train::TrainConfig& c, const std::string& dir, train::TrainSummary* summary) {
  train::TrainOptions o;
  o.out_dir = dir;
  o.progress = false;
  *summary = train::train(c, o);
  return train::load_tabular(dir + "/model.pt");
}

TEST(TabularModel, BinaryHeadLearnsIsMonotoneAndPredictsByColumnName) {
  const auto dir = lipkit::testing::fresh_dir("tabular_binary");
  write_rows(dir + "/t.csv", 400, 1, false);
  auto c = table_config(dir + "/t.csv", "binary");
  c.model.increasing = {"a"};
  c.model.decreasing = {"b"};
  train::TrainSummary s;
  const auto m = train_on(c, dir + "/run", &s);
  EXPECT_GT(s.clean_accuracy, 0.85);
  EXPECT_EQ(m.classes, (std::vector<std::string>{"no", "yes"}));
  EXPECT_EQ(m.feature_names, (std::vector<std::string>{"c", "colour=green", "colour=red", "b", "a"}));
  const auto r = certify::check_monotonic(m.model, m.constraints, m.range_min, m.range_max);
  EXPECT_EQ(r.violations, 0);
  EXPECT_LT(r.worst, 0);
  EXPECT_LT(r.worst_slope, 0);
  EXPECT_GT(r.pairs, 2 * 4096);

  // predict: the same rows with the columns in another order and no label give the same probabilities
  {
    std::ifstream in(dir + "/t.csv");
    std::ofstream out(dir + "/new.csv");
    std::string line;
    std::getline(in, line);
    out << "a,colour,b,c\n";
    for (int i = 0; i < 20 && std::getline(in, line); ++i) {
      std::vector<std::string> f;
      std::stringstream ss(line);
      for (std::string v; std::getline(ss, v, ',');) f.push_back(v);
      out << f[4] << "," << f[2] << "," << f[3] << "," << f[1] << "\n";
    }
  }
  train::write_predictions(m, dir + "/new.csv", dir + "/pred.csv");
  const auto rows = train::read_rows(m, dir + "/t.csv");
  const auto p = train::predict(m, rows.x.narrow(0, 0, 20));
  std::ifstream pred(dir + "/pred.csv");
  std::string header, line;
  std::getline(pred, header);
  EXPECT_EQ(header, "label,p(no),p(yes)");
  for (int64_t i = 0; i < 20; ++i) {
    ASSERT_TRUE(std::getline(pred, line));
    const auto comma = line.rfind(',');
    EXPECT_NEAR(std::stod(line.substr(comma + 1)), p[i].item<double>(), 1e-8);
    EXPECT_EQ(line.substr(0, line.find(',')), p[i].item<double>() > 0.5 ? "yes" : "no");
  }
  EXPECT_FALSE(std::getline(pred, line));
  lipkit::testing::expect_error([&] {
    std::ofstream(dir + "/bad.csv") << "a,colour,b,c\n1,blue,1,1\n";
    train::write_predictions(m, dir + "/bad.csv", dir + "/bad_pred.csv");
  }, {"bad.csv", "line 2", "colour", "unknown category 'blue'"});
  EXPECT_FALSE(std::ifstream(dir + "/bad_pred.csv").good()) << "no half-written output";
}

TEST(TabularModel, MulticlassHeadWithAConstraintPerOutput) {
  const auto dir = lipkit::testing::fresh_dir("tabular_multiclass");
  write_rows(dir + "/t.csv", 500, 2, true);
  auto c = table_config(dir + "/t.csv", "multiclass");
  c.epochs = 60;
  // classes sort as high, low, mid: "high" rises with a and falls with b, "low" the reverse, "mid" free
  c.model.monotonic_outputs = {{{"a"}, {"b"}}, {{"b"}, {"a"}}, {{}, {}}};
  train::TrainSummary s;
  const auto m = train_on(c, dir + "/run", &s);
  EXPECT_GT(s.clean_accuracy, 0.8);
  ASSERT_EQ(m.constraints.sizes(), torch::IntArrayRef({3, 5}));
  EXPECT_EQ(m.constraints[0][4].item<double>(), 1);
  EXPECT_EQ(m.constraints[1][4].item<double>(), -1);
  EXPECT_EQ(m.constraints[2].abs().sum().item<double>(), 0);
  EXPECT_EQ(certify::check_monotonic(m.model, m.constraints, m.range_min, m.range_max).violations, 0);
  // the info names each output's constraints and states the proof
  const auto info = train::checkpoint_info(dir + "/run/model.pt");
  ASSERT_FALSE(info.table.is_null());
  EXPECT_TRUE(info.table.at("monotone_proven").get<bool>());
  EXPECT_EQ(info.table.at("outputs")[1].at("output"), "logit(low)");
  EXPECT_EQ(info.table.at("outputs")[1].at("increasing"), nlohmann::json({"b"}));
  lipkit::testing::expect_error([&] {
    auto bad = c;
    bad.model.monotonic_outputs.pop_back();
    train::TrainOptions o;
    o.out_dir = dir + "/bad";
    o.progress = false;
    train::train(bad, o);
  }, {"model.monotonic.outputs has 2 entries", "3 outputs"});
  lipkit::testing::expect_error([&] {
    auto bad = table_config(dir + "/t.csv", "binary");
    train::TrainOptions o;
    o.out_dir = dir + "/bad";
    o.progress = false;
    train::train(bad, o);
  }, {"binary needs 2 classes", "found 3"});
}

// A regression net whose inputs have very different scales: every partial derivative w.r.t. the raw
// inputs is within raw_partial_bounds; the bound without the standardisation is not.
TEST(TabularModel, RawPartialBoundsHoldAndNeedTheStandardisation) {
  const auto dir = lipkit::testing::fresh_dir("tabular_bounds");
  torch::manual_seed(3);
  auto x = torch::rand({300, 2}, torch::kDouble) * torch::tensor({0.01, 1000.0}, torch::kDouble);
  auto y = 300 * x.select(1, 0) - 0.002 * x.select(1, 1) + 5;
  {
    std::ofstream f(dir + "/t.csv");
    f << "small,large,y\n";
    for (int64_t i = 0; i < 300; ++i)
      f << x[i][0].item<double>() << "," << x[i][1].item<double>() << "," << y[i].item<double>() << "\n";
  }
  auto c = table_config(dir + "/t.csv", "regression");
  c.table.target = "y";
  c.model.increasing = {"small"};
  train::TrainSummary s;
  const auto m = train_on(c, dir + "/run", &s);
  const auto bound = train::raw_partial_bounds(m);
  auto net = m.model;
  auto xs = (torch::rand({2000, 2}, torch::kDouble) * torch::tensor({0.01, 1000.0}, torch::kDouble)).to(torch::kFloat);
  xs.requires_grad_(true);
  auto grad = torch::autograd::grad({net->forward(xs).sum()}, {xs})[0].to(torch::kDouble) * m.target_std;
  auto measured = std::get<0>(grad.abs().max(0));
  for (int64_t i = 0; i < 2; ++i) EXPECT_LE(measured[i].item<double>(), bound[0][i].item<double>() * (1 + 1e-5)) << i;
  // negative control: the bound w.r.t. standardised inputs (times the target scale) misses the small input
  auto& r = *m.model->ptr(1)->as<MonotonicResidualImpl>();
  EXPECT_GT(measured[0].item<double>(), (r.body_bound() + m.lambda) * m.target_std);
}

TEST(MonotonicCheck, FindsTheViolationsOfAnUnconstrainedMlp) {
  torch::manual_seed(4);
  torch::nn::Sequential mlp(torch::nn::Linear(2, 16), torch::nn::ReLU(), torch::nn::Linear(16, 1));
  // f(x) = sin(3 x0) + x1: not monotone in x0 on [0, 2]
  auto x = torch::rand({400, 2}) * 2;
  auto y = (torch::sin(3 * x.select(1, 0)) + x.select(1, 1)).unsqueeze(1);
  torch::optim::Adam opt(mlp->parameters(), torch::optim::AdamOptions(0.02));
  for (int i = 0; i < 500; ++i) {
    opt.zero_grad();
    torch::mse_loss(mlp->forward(x), y).backward();
    opt.step();
  }
  auto lo = torch::zeros({2}, torch::kDouble), hi = torch::full({2}, 2.0, torch::kDouble);
  const auto r = certify::check_monotonic(mlp, torch::tensor({{1.0, 0.0}}), lo, hi);
  EXPECT_GT(r.violations, 0);
  EXPECT_GT(r.worst, 0.1);
  EXPECT_EQ(r.input, 0);
  EXPECT_GT(r.worst_slope, 0);
  // the pair reported is a real violation, inside the box
  auto at = r.at.unsqueeze(0).to(torch::kFloat), moved = at.clone();
  moved[0][0] += r.step;
  EXPECT_LT(mlp->forward(moved).item<double>(), mlp->forward(at).item<double>());
  EXPECT_LE(moved[0][0].item<double>(), 2.0 + 1e-6);
  lipkit::testing::expect_error([&] { certify::check_monotonic(mlp, torch::ones({1, 3}), lo, hi); },
                                {"constraints must be (outputs, inputs)"});
}

TEST(TabularModel, AnImageCheckpointIsRefusedByName) {
  const auto dir = lipkit::testing::fresh_dir("tabular_refuse");
  auto spec = models::model_preset("sll-fmnist");
  spec.conv_layers = 1;
  spec.dense_layers = 1;
  spec.in_channels = 1;
  spec.image_size = 28;
  auto net = models::build_model(spec);
  train::save_checkpoint(dir + "/m.pt", *net, nullptr, {{"spec", train::spec_to_json(spec)}, {"data", "fashion-mnist"}});
  lipkit::testing::expect_error([&] { train::load_tabular(dir + "/m.pt"); },
                                {"m.pt", "not a model trained on a table", "fashion-mnist"});
}

}  // namespace
