// The trainer learns, resumes bit for bit, stops on a NaN loss keeping the last good checkpoint,
// and refuses configs with unknown keys.
#include <gtest/gtest.h>

#include <filesystem>
#include <torch/torch.h>

#include <fstream>

#include "lipkit/data/dataset.h"
#include "lipkit/data/transforms.h"
#include "lipkit/lipkit.h"
#include "lipkit/runtime.h"
#include "lipkit/train/checkpoint.h"
#include "lipkit/train/config.h"
#include "lipkit/train/trainer.h"
#include "support/expect_error.h"
#include "support/synthetic_data.h"

using namespace lipkit;

namespace {

train::TrainConfig small_config(const std::string& data, const std::string& family = "sll") {
  train::TrainConfig c;
  c.model = models::model_preset(family + "-fmnist");
  c.model.conv_layers = 1;
  c.model.dense_layers = 1;
  c.model.width = 4;
  c.model.dense_hidden = 32;
  c.model.pool = 2;  // 8x8 synthetic images; random prototypes are not flip-invariant: no flips
  c.data = data;
  c.epochs = 2;
  c.batch_size = 20;
  c.augment.crop_padding = 1;
  return c;
}

double mean_loss(torch::nn::Sequential& model, const data::Dataset& d, const train::LossSpec& loss) {
  torch::NoGradGuard ng;
  model->eval();
  return train::compute_loss(loss, model->forward(data::to_float(d.images)), d.labels).item<double>();
}

// Options for a quiet run into a fresh folder.
train::TrainOptions quiet_run(const std::string& name) {
  train::TrainOptions o;
  o.out_dir = lipkit::testing::fresh_dir(name);
  o.progress = false;
  return o;
}

class Trainer : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    data_ = lipkit::testing::write_synthetic_mnist(lipkit::testing::fresh_dir("trainer_data"), 400, 100);
  }
  static std::string data_;
};
std::string Trainer::data_;

TEST_F(Trainer, OneEpochReducesTheLoss) {
  for (const std::string family : {"sll", "cpl"}) {
    auto c = small_config(data_, family);
    c.epochs = 1;
    c.augment = data::Augment{};
    if (family == "cpl") {
      c.optimizer.lr = 0.01;
      c.loss.name = "multi_margin";
    }
    train::TrainOptions o;
    o.out_dir = lipkit::testing::fresh_dir("trainer_loss_" + family);
    o.progress = false;
    auto train_set = data::load_dataset(data_, data::Split::Train);
    torch::manual_seed(c.seed);  // the trainer's init
    auto spec = c.model;
    spec.in_channels = 1;
    spec.image_size = 8;
    spec.mean = data::channel_mean(train_set);
    auto initial = models::build_model(spec);
    const double before = mean_loss(initial, train_set, c.loss);
    auto summary = train::train(c, o);
    EXPECT_EQ(summary.epochs_done, 1);
    auto trained = train::load_model(o.out_dir + "/model.pt");
    const double after = mean_loss(trained, train_set, c.loss);
    EXPECT_LT(after, 0.8 * before) << family << ": loss " << before << " -> " << after;
    EXPECT_GT(summary.clean_accuracy, 0.3) << family;  // 10 classes: chance is 0.1
    std::ifstream metrics(o.out_dir + "/metrics.jsonl");
    std::string line;
    ASSERT_TRUE(std::getline(metrics, line));
    auto j = nlohmann::json::parse(line);
    EXPECT_EQ(j.at("epoch"), 1);
    EXPECT_EQ(j.at("certified").size(), c.radii.size());
  }
}

// Trains c straight, and again interrupted after `stop_at` batches and resumed: parameters and
// buffers (power-iteration vectors, mask counters, mean-shift statistics, p) must be identical.
void expect_resume_is_exact(const train::TrainConfig& c, const std::string& name, int stop_at,
                            int64_t expected_batch) {
  train::TrainOptions straight;
  straight.out_dir = lipkit::testing::fresh_dir(name + "_straight");
  straight.progress = false;
  train::train(c, straight);

  train::TrainOptions cut = straight;
  cut.out_dir = lipkit::testing::fresh_dir(name + "_cut");
  int calls = 0;
  cut.stop_requested = [&calls, stop_at] { return ++calls == stop_at; };
  auto s = train::train(c, cut);
  ASSERT_TRUE(s.interrupted);
  EXPECT_EQ(train::read_checkpoint_meta(cut.out_dir + "/model.pt").at("batch"), expected_batch);
  cut.stop_requested = nullptr;
  cut.resume = true;
  auto done = train::train(c, cut);
  EXPECT_FALSE(done.interrupted);

  auto a = train::load_model(straight.out_dir + "/model.pt");
  auto b = train::load_model(cut.out_dir + "/model.pt");
  auto pb = b->named_parameters();
  for (const auto& p : a->named_parameters()) EXPECT_TRUE(torch::equal(p.value(), pb[p.key()])) << p.key();
  auto bb = b->named_buffers();
  for (const auto& p : a->named_buffers()) EXPECT_TRUE(torch::equal(p.value(), bb[p.key()])) << p.key();
}

// Spline activations: optimizer.spline_lr is the splines' own rate (a tiny one leaves them almost where
// they started while the weights move), regularization.tv2 lowers their TV(2) against the same run
// without it, and the epoch's TV(2) is logged.
TEST_F(Trainer, SplineLearningRateAndTv2Regularization) {
  auto run = [&](double spline_lr, double tv2, const std::string& name) {
    auto c = small_config(data_, "aol");
    c.model.activation = "spline";
    c.model.conv_hidden = 4;
    c.model.spline_init = "relu";
    c.epochs = 1;
    c.optimizer.lr = 0.01;
    c.optimizer.spline_lr = spline_lr;
    c.regularization.tv2 = tv2;
    train::TrainOptions o;
    o.out_dir = lipkit::testing::fresh_dir("trainer_spline_" + name);
    o.progress = false;
    train::train(c, o);
    std::ifstream metrics(o.out_dir + "/metrics.jsonl");
    std::string line;
    std::getline(metrics, line);
    return std::make_pair(train::load_model(o.out_dir + "/model.pt"), nlohmann::json::parse(line).at("tv2").get<double>());
  };
  auto init = [&] {  // the same net at its initialisation
    auto c = small_config(data_, "aol");
    c.model.activation = "spline";
    c.model.conv_hidden = 4;
    c.model.spline_init = "relu";
    c.model.in_channels = 1;
    c.model.image_size = 8;
    return models::build_model(c.model);
  }();
  auto drift = [&](torch::nn::Sequential& m, bool splines) {
    double d = 0;
    auto p0 = init->named_parameters();
    for (const auto& p : m->named_parameters())
      if ((p.key().find("coefficients") != std::string::npos || p.key().find("log_scale") != std::string::npos) == splines)
        d = std::max(d, (p.value() - p0[p.key()]).abs().max().item<double>());
    return d;
  };
  auto [slow, tv_slow] = run(1e-9, 0, "slow");
  auto [fast, tv_fast] = run(0.05, 0, "fast");
  auto [smooth, tv_smooth] = run(0.05, 1.0, "smooth");
  EXPECT_LT(drift(slow, true), 1e-5) << "spline_lr 1e-9 must leave the splines as they were";
  EXPECT_GT(drift(slow, false), 1e-3) << "while the weights train at lr";
  EXPECT_GT(drift(fast, true), 1e-2);
  EXPECT_LT(tv_smooth, 0.5 * tv_fast) << "TV(2) " << tv_fast << " without the penalty, " << tv_smooth << " with it";
  EXPECT_NEAR(tv_slow, spline_tv2(*slow).item<double>(), 1e-3 * tv_slow);
}

TEST_F(Trainer, SplineRunResumesBitForBit) {  // two optimizer groups and the TV(2) term
  auto c = small_config(data_, "aol");
  c.model.activation = "spline";
  c.model.conv_hidden = 4;
  c.optimizer.spline_lr = 0.003;
  c.regularization.tv2 = 1e-3;
  expect_resume_is_exact(c, "trainer_spline", 23, 3);
}

// A monotonic net trained on a CSV table: it learns, the checkpoint rebuilds it with its
// standardisation, and it is monotone in raw input space (random pairs along each constrained input).
TEST(TabularTrainer, MonotonicNetOnACsvTable) {
  const auto dir = lipkit::testing::fresh_dir("tabular_train");
  torch::manual_seed(90);
  auto x = torch::rand({300, 3}, torch::kDouble) * torch::tensor({10.0, 2.0, 6.0}, torch::kDouble);
  auto y = 0.8 * x.select(1, 0) - 2.0 * x.select(1, 1).pow(2) + torch::sin(x.select(1, 2)) + 50;
  {
    std::ofstream f(dir + "/t.csv");
    f << "a,b,c,target\n";
    for (int64_t i = 0; i < 300; ++i)
      f << x[i][0].item<double>() << "," << x[i][1].item<double>() << "," << x[i][2].item<double>() << ","
        << y[i].item<double>() << "\n";
  }
  train::TrainConfig c;
  c.model = models::model_preset("monotonic-autompg");
  c.model.decreasing = {"b"};
  c.model.increasing = {"a"};
  c.table.path = dir + "/t.csv";
  c.table.target = "target";
  c.epochs = 60;
  c.batch_size = 32;
  c.optimizer.lr = 0.003;
  c.optimizer.beta1 = 0.9;
  c.optimizer.beta2 = 0.999;
  train::TrainOptions o;
  o.out_dir = dir + "/run";
  o.progress = false;
  auto s = train::train(c, o);
  const double var = y.var().item<double>();
  EXPECT_LT(s.test_mse, 0.2 * var) << "test MSE " << s.test_mse << ", target variance " << var;
  nlohmann::json meta;
  auto model = train::load_model(o.out_dir + "/model.pt", &meta);
  model->eval();
  EXPECT_EQ(meta.at("table").at("feature_names"), nlohmann::json({"a", "b", "c"}));
  torch::NoGradGuard ng;
  auto xs = (torch::rand({5000, 3}) * torch::tensor({10.0f, 2.0f, 6.0f}));
  for (auto [i, sign] : {std::pair<int64_t, double>{0, 1.0}, {1, -1.0}}) {
    auto moved = xs.clone();
    moved.select(1, i) += torch::rand({5000}) * 2;
    auto d = sign * (model->forward(moved) - model->forward(xs));
    EXPECT_GE(d.min().item<double>(), -1e-5) << "input " << i;  // float32 rounding of the outputs
  }
  lipkit::testing::expect_error([&] {
    auto bad = c;
    bad.model.decreasing = {"d"};
    train::train(bad, o);
  }, {"model.monotonic", "no feature 'd'", "a, b, c"});
}

TEST_F(Trainer, ResumeAfterInterruptionGivesTheSameWeights) {
  expect_resume_is_exact(small_config(data_), "trainer", 23, 3);  // mid second epoch (20 batches/epoch)
}

TEST_F(Trainer, PrivateRunResumesBitForBit) {
  // Poisson batches, the noise and the accountant must all resume exactly
  auto c = small_config(data_, "sll");
  c.model = models::model_preset("dp-fmnist");
  c.model.width = 16;
  c.augment = {};
  c.batch_size = 20;
  c.dp.enabled = true;
  c.dp.epsilon = 3;
  c.dp.input_norm = 5;
  c.epochs = 2;
  expect_resume_is_exact(c, "dp", 13, 13);
}

TEST_F(Trainer, SortNetResumesBitForBit) {
  // random input subsets, the p schedule and mean-shift statistics must all resume exactly
  train::TrainConfig c;
  c.model = models::model_preset("sortnet-fmnist");
  c.model.width = 16;
  c.model.dense_layers = 3;
  c.data = data_;
  c.epochs = 2;
  c.batch_size = 20;
  c.loss.name = "mixture";
  c.loss.eps = 0.1;
  c.distance.p_epochs_begin = 0, c.distance.p_epochs_end = 1.5;
  c.norm = Norm::Linf;
  c.radii = {0.05};
  expect_resume_is_exact(c, "sortnet", 25, 5);
}

TEST_F(Trainer, ResumeWithAnotherConfigIsRefused) {
  auto c = small_config(data_);
  c.epochs = 1;
  auto o = quiet_run("trainer_refuse");
  train::train(c, o);
  c.optimizer.lr *= 2;
  o.resume = true;
  EXPECT_THROW(train::train(c, o), c10::Error);
}

// float64 runs record their precision; the checkpoint loads in it, and resume keeps it.
TEST_F(Trainer, Float64RunLoadsInFloat64AndResumesOnlyInIt) {
  auto c = small_config(data_);
  c.epochs = 1;
  auto o = quiet_run("trainer_float64");
  o.dtype = torch::kDouble;
  const auto trained = train::train(c, o);
  auto model = train::load_model(o.out_dir + "/model.pt");
  for (const auto& p : model->parameters()) EXPECT_EQ(p.scalar_type(), torch::kDouble);
  o.resume = true;  // a finished run: loads in float64 and reports the same accuracy
  EXPECT_EQ(train::train(c, o).clean_accuracy, trained.clean_accuracy);
  o.dtype = torch::kFloat;
  lipkit::testing::expect_error([&] { train::train(c, o); }, {"--resume in float32 of a run trained in float64"});
}

TEST_F(Trainer, NanLossStopsAndKeepsTheLastGoodCheckpoint) {
  auto c = small_config(data_);
  c.epochs = 1;
  auto o = quiet_run("trainer_nan");
  train::train(c, o);
  auto good = train::load_model(o.out_dir + "/model.pt");

  c.optimizer.lr = 1e38;  // Adam steps of 1e38 overflow the weights to inf within a few batches
  c.schedule.name = "constant";
  try {
    train::train(c, o);
    FAIL() << "a NaN/inf loss must stop training";
  } catch (const c10::Error& e) {
    const std::string msg = e.what_without_backtrace();
    EXPECT_NE(msg.find("loss is"), std::string::npos) << msg;
    EXPECT_NE(msg.find(o.out_dir + "/model.pt"), std::string::npos) << msg;
  }
  auto still = train::load_model(o.out_dir + "/model.pt");
  for (const auto& p : good->named_parameters())
    EXPECT_TRUE(torch::equal(p.value(), still->named_parameters()[p.key()])) << p.key();
}

// lipkit train --device: CPU everywhere, CUDA where LibTorch has it; anything else refused by name.
TEST(Device, ParsedOrRefusedByName) {
  EXPECT_EQ(parse_device("cpu"), torch::Device(torch::kCPU));
  for (const std::string bad : {"gpu", "cuda:x", "", "cpu:1", "mps"})
    lipkit::testing::expect_error([&] { parse_device(bad); }, {"device '" + bad + "'", "use cpu, cuda or cuda:N"});
  const auto n = static_cast<int64_t>(torch::cuda::device_count());
  if (n == 0) {  // Debian's CPU-only LibTorch: every CUDA request is refused, naming the way out
    for (const std::string cuda : {"cuda", "cuda:0"})
      lipkit::testing::expect_error([&] { parse_device(cuda); }, {"device '" + cuda + "'", "no CUDA"});
  } else {
    EXPECT_EQ(parse_device("cuda:0"), torch::Device(torch::kCUDA, 0));
    const auto past = "cuda:" + std::to_string(n);
    lipkit::testing::expect_error([&] { parse_device(past); }, {past, "CUDA device(s)"});
  }
  train::TrainConfig c;
  c.table.path = "unused.csv";
  train::TrainOptions o;
  o.out_dir = lipkit::testing::fresh_dir("tabular_device");
  o.device = torch::Device(torch::kCUDA, 0);
  lipkit::testing::expect_error([&] { train::train(c, o); }, {"tabular training runs on the CPU", "cuda:0"});
}

TEST(Config, UnknownKeysAreAllNamedWithTheFile) {
  const auto dir = lipkit::testing::fresh_dir("config");
  const std::string path = dir + "/bad.json";
  std::ofstream(path) << R"({"model": {"preset": "sll-fmnist", "widht": 3}, "epohcs": 2, "loss": {"name": "ce"}})";
  try {
    train::load_config(path);
    FAIL() << "unknown keys must be refused";
  } catch (const c10::Error& e) {
    const std::string msg = e.what_without_backtrace();
    EXPECT_NE(msg.find(path), std::string::npos) << msg;
    EXPECT_NE(msg.find("epohcs"), std::string::npos) << msg;
    EXPECT_NE(msg.find("model.widht"), std::string::npos) << msg;
  }
}

TEST(Config, TypesValuesAndRoundTrip) {
  EXPECT_THROW(train::config_from_json(nlohmann::json::parse(R"({"epochs": "five"})"), "x.json"), c10::Error);
  EXPECT_THROW(train::config_from_json(nlohmann::json::parse(R"({"model": "sll-huge"})"), "x.json"), c10::Error);
  EXPECT_THROW(train::config_from_json(nlohmann::json::parse(R"({"loss": {"name": "hinge"}})"), "x.json"), c10::Error);
  auto c = train::config_from_json(
      nlohmann::json::parse(R"({"model": {"preset": "cpl-s", "width": 12}, "radii": ["36/255", 0.5]})"), "x.json");
  EXPECT_EQ(c.model.family, "cpl");
  EXPECT_EQ(c.model.width, 12);
  EXPECT_EQ(c.model.conv_layers, 20);
  EXPECT_DOUBLE_EQ(c.radii[0], 36.0 / 255);
  auto again = train::config_from_json(train::to_json(c), "round trip");
  EXPECT_EQ(train::to_json(again), train::to_json(c));
}

TEST(Config, MonotonicConstraintsPerOutputAndTask) {
  auto c = train::config_from_json(nlohmann::json::parse(R"({"model": {"preset": "monotonic-autompg", "monotonic":
      {"outputs": [{"increasing": ["a"]}, {"decreasing": ["a"]}]}}, "table": {"path": "t.csv", "target": "y",
      "task": "multiclass"}})"), "x.json");
  ASSERT_EQ(c.model.monotonic_outputs.size(), 2u);
  EXPECT_EQ(c.model.monotonic_outputs[1].decreasing, std::vector<std::string>{"a"});
  EXPECT_EQ(c.table.task, "multiclass");
  auto again = train::config_from_json(train::to_json(c), "round trip");
  EXPECT_EQ(train::to_json(again), train::to_json(c));
  lipkit::testing::expect_error([] {
    train::config_from_json(nlohmann::json::parse(R"({"model": {"preset": "monotonic-autompg", "monotonic":
      {"decreasing": ["a"], "outputs": [{"increasing": ["b"]}]}}, "table": {"path": "t.csv", "target": "y"}})"), "x.json");
  }, {"x.json", "not both"});
  lipkit::testing::expect_error([] {
    train::config_from_json(nlohmann::json::parse(R"({"model": "monotonic-autompg", "table": {"path": "t.csv",
      "target": "y", "task": "ranking"}})"), "x.json");
  }, {"x.json", "table.task", "regression, binary or multiclass", "'ranking'"});
}

TEST(Config, DpSectionRoundTripsAndIsChecked) {
  auto c = train::config_from_json(nlohmann::json::parse(R"({"model": "dp-fmnist", "dp": {"epsilon": 2,
      "mode": "per_layer", "input_norm": 7}})"), "x.json");
  EXPECT_TRUE(c.dp.enabled);
  EXPECT_EQ(c.dp.mode, "per_layer");
  EXPECT_DOUBLE_EQ(c.dp.delta, 1e-5);
  auto again = train::config_from_json(train::to_json(c), "round trip");
  EXPECT_EQ(train::to_json(again), train::to_json(c));
  EXPECT_FALSE(train::config_from_json(nlohmann::json::parse(R"({"model": "dp-fmnist"})"), "x.json").dp.enabled);
  using lipkit::testing::expect_error;
  expect_error([] { train::config_from_json(nlohmann::json::parse(R"({"dp": {"epsilon": 1, "mode": "each"}})"), "x.json"); },
               {"x.json", "dp.mode", "'each'"});
  expect_error([] { train::config_from_json(nlohmann::json::parse(R"({"dp": {"delta": 1e-5}})"), "x.json"); },
               {"x.json", "dp.epsilon"});
  expect_error([] { train::config_from_json(nlohmann::json::parse(R"({"dp": {"epsilon": 1, "delta": 2}})"), "x.json"); },
               {"x.json", "dp.delta must be in (0, 1)", "2"});
  expect_error([] { train::config_from_json(nlohmann::json::parse(R"({"dp": {"epsilon": 1, "clip": 1}})"), "x.json"); },
               {"x.json", "dp.clip"});
}

TEST(Config, EveryShippedConfigParsesAndBuilds) {
  // every file in configs/: parsed; built and run once unless paper-sized (width 5120: 100M+ parameters)
  int64_t files = 0;
  for (const auto& entry : std::filesystem::directory_iterator(std::string(LIPKIT_SOURCE_DIR) + "/configs")) {
    if (entry.path().extension() != ".json") continue;
    const std::string name = entry.path().stem().string();
    ++files;
    auto c = train::load_config(entry.path().string());
    if (c.model.width > 1024) continue;
    if (c.model.family == "monotonic") {  // a table's features: any count
      c.model.in_channels = 5;
      auto model = models::build_model(c.model);
      EXPECT_EQ(model->forward(torch::rand({2, 5})).sizes(), torch::IntArrayRef({2, 1})) << name;
      continue;
    }
    const bool fm = c.data == "fashion-mnist" || c.data == "mnist";
    c.model.in_channels = fm ? 1 : 3;
    c.model.image_size = fm ? 28 : 32;
    auto model = models::build_model(c.model);
    torch::NoGradGuard ng;
    if (fm) model->eval();  // eval of the CIFAR sizes computes proven bounds of 2048-wide layers: slow
    auto y = model->forward(torch::rand({1, c.model.in_channels, c.model.image_size, c.model.image_size}));
    EXPECT_EQ(y.sizes(), torch::IntArrayRef({1, 10})) << name;
  }
  EXPECT_GE(files, 19);
}

TEST(Config, RadiiAndValuesAreCheckedNamingTheFieldAndTheValue) {
  auto bad = [&](const char* text, const std::vector<std::string>& needles) {
    lipkit::testing::expect_error([&] { train::config_from_json(nlohmann::json::parse(text), "x.json"); }, needles);
  };
  bad(R"({"radii": [true]})", {"x.json", "radii[0]", "true"});
  bad(R"({"radii": [0.1, -0.5]})", {"x.json", "radii[1]", "-0.5"});
  bad(R"({"radii": ["abc"]})", {"x.json", "radii[0]", "abc"});
  bad(R"({"radii": []})", {"x.json", "radii", "non-empty"});
  bad(R"({"optimizer": {"lr": -1}})", {"x.json", "optimizer.lr must be positive", "-1"});
  bad(R"({"epochs": 0})", {"x.json", "epochs", "got 0"});
  bad(R"({"schedule": {"name": "step"}})", {"x.json", "schedule.name", "step"});
  bad(R"({"norm": "inf"})", {"x.json", "norm must be l2 or linf", "inf"});
  bad(R"({"model": "monotonic-autompg"})", {"x.json", "monotonic family trains on a table", "table.path"});
  bad(R"({"table": {"path": "t.csv", "target": "y"}})", {"x.json", "monotonic family only", "sll"});
  bad(R"({"regularization": {"tv2": 0.1}})", {"x.json", "regularization.tv2", "spline", "family sll"});
  bad(R"({"model": "aol-spline-fmnist", "optimizer": {"spline_lr": -1}})", {"x.json", "optimizer.spline_lr", "-1"});
  bad(R"({"model": "aol-spline-fmnist", "regularization": {"tv3": 1}})", {"x.json", "unknown key", "regularization.tv3"});
}

TEST(Config, DistanceSectionErrorsNameTheField) {
  const std::string src = "x.json";
  auto bad = [&](const char* text, const std::vector<std::string>& needles) {
    lipkit::testing::expect_error([&] { train::config_from_json(nlohmann::json::parse(text), src); }, needles);
  };
  bad(R"({"distance": {"p": [8], "pp": 3}})", {"x.json", "unknown key", "distance.pp"});
  bad(R"({"distance": {"p": [8]}})", {"x.json", "distance.p takes two values"});
  bad(R"({"distance": {"p": [8, 4]}})", {"distance.p must be"});
  bad(R"({"loss": {"name": "mixture", "eps": 0}})", {"loss.eps must be positive"});
  bad(R"({"norm": "l1"})", {"norm must be l2 or linf"});
}

TEST(Config, PaperSortNetRecipesParse) {
  // the paper-sized models (width 5120) are parsed, not built: 100M+ parameters
  for (const std::string name : {"sortnet-mnist", "sortnet-mnist-0.3", "sortnet-cifar10-2", "sortnet-cifar10-8"}) {
    auto c = train::load_config(std::string(LIPKIT_SOURCE_DIR) + "/configs/" + name + ".json");
    EXPECT_EQ(c.model.family, "sortnet") << name;
    EXPECT_EQ(c.model.width, 5120) << name;
    EXPECT_EQ(c.loss.name, "mixture") << name;
    EXPECT_EQ(c.norm, Norm::Linf) << name;
  }
}

TEST(Schedule, TriangleAndCosineShapes) {
  train::ScheduleSpec tri;
  EXPECT_DOUBLE_EQ(train::learning_rate(tri, 1.0, 0, 100), 0.0);
  EXPECT_DOUBLE_EQ(train::learning_rate(tri, 1.0, 40, 100), 1.0);
  EXPECT_NEAR(train::learning_rate(tri, 1.0, 80, 100), 0.05, 1e-12);
  EXPECT_NEAR(train::learning_rate(tri, 1.0, 100, 100), 0.0, 1e-12);
  train::ScheduleSpec cos{"cosine", 0.1};
  EXPECT_DOUBLE_EQ(train::learning_rate(cos, 1.0, 5, 100), 0.5);  // warm-up
  EXPECT_DOUBLE_EQ(train::learning_rate(cos, 1.0, 10, 100), 1.0);
  EXPECT_NEAR(train::learning_rate(cos, 1.0, 100, 100), 0.0, 1e-12);
}

TEST(Losses, MatchTheirFormulas) {
  auto logits = torch::tensor({{2.0, 0.5, -1.0}}, torch::kDouble);
  auto y = torch::tensor({0}, torch::kLong);
  // (1/3) [max(0, 0.7 - 2 + 0.5) + max(0, 0.7 - 2 - 1)] = 0
  EXPECT_NEAR(train::multi_margin_loss(logits, y, 0.7).item<double>(), 0.0, 1e-12);
  EXPECT_NEAR(train::multi_margin_loss(logits, y, 2.0).item<double>(), (0.5 + 0.0) / 3, 1e-12);
  // T * CE((f - o e_y) / T): with o = 1, T = 0.5: z = (2, 1, -2), CE = -log softmax_0
  auto z = torch::tensor({2.0, 1.0, -2.0}, torch::kDouble);
  const double ce = -torch::log_softmax(z, 0)[0].item<double>();
  EXPECT_NEAR(train::offset_cross_entropy(logits, y, 1.0, 0.5).item<double>(), 0.5 * ce, 1e-12);
}

}  // namespace
