// The lipkit binary end to end on a small synthetic data set: exit codes and outputs.
#include <gtest/gtest.h>

#include <array>
#include <cstdio>
#include <fstream>
#include <memory>
#include <sys/wait.h>

#include "support/synthetic_data.h"

namespace {

struct Result {
  int code;
  std::string output;
};

Result run(const std::string& args) {
  const std::string cmd = std::string(LIPKIT_CLI_PATH) + " " + args + " --threads 1 2>&1";
  std::unique_ptr<FILE, int (*)(FILE*)> pipe(popen(cmd.c_str(), "r"), pclose);
  std::string out;
  std::array<char, 4096> buf{};
  size_t n;
  while ((n = fread(buf.data(), 1, buf.size(), pipe.get())) > 0) out.append(buf.data(), n);
  const int status = pclose(pipe.release());
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, out};
}

class Cli : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    data_ = lipkit::testing::write_synthetic_mnist(lipkit::testing::fresh_dir("cli_data"), 300, 100, 12);
    dir_ = lipkit::testing::fresh_dir("cli_run");
    config_ = dir_ + "/tiny.json";
    std::ofstream(config_) << R"({"model": {"preset": "sll-fmnist", "conv_layers": 1, "dense_layers": 1,
      "width": 4, "dense_hidden": 32, "pool": 2}, "batch_size": 20, "epochs": 1, "radii": ["36/255", "1"]})";
  }
  static std::string data_, dir_, config_;
};
std::string Cli::data_, Cli::dir_, Cli::config_;

TEST_F(Cli, TrainCertifyAttackInfo) {
  auto t = run("train --config " + config_ + " --out " + dir_ + "/run --data " + data_ +
               " --epochs 2 --subset 200 --quiet");
  ASSERT_EQ(t.code, 0) << t.output;
  EXPECT_NE(t.output.find("trained 2 epochs"), std::string::npos) << t.output;

  auto c = run("certify --checkpoint " + dir_ + "/run/model.pt --data " + data_ + " --radii 36/255,72/255 --json " +
               dir_ + "/cert.json --plot " + dir_ + "/cert.svg");
  ASSERT_EQ(c.code, 0) << c.output;
  EXPECT_NE(c.output.find("certified at 0.1412"), std::string::npos) << c.output;
  std::ifstream json(dir_ + "/cert.json"), svg(dir_ + "/cert.svg");
  EXPECT_TRUE(json.good());
  std::string svg_text((std::istreambuf_iterator<char>(svg)), {});
  EXPECT_NE(svg_text.find("<svg"), std::string::npos);
  EXPECT_NE(svg_text.find("<path"), std::string::npos);

  // a real PNG for a .png name: signature, then the IHDR chunk with the plot's size
  auto png = run("certify --checkpoint " + dir_ + "/run/model.pt --data " + data_ + " --plot " + dir_ + "/cert.png");
  ASSERT_EQ(png.code, 0) << png.output;
  std::ifstream in(dir_ + "/cert.png", std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(in)), {});
  ASSERT_GT(bytes.size(), 33u);
  EXPECT_EQ(bytes.substr(0, 8), std::string("\x89PNG\r\n\x1a\n", 8));
  EXPECT_EQ(bytes.substr(12, 4), "IHDR");
  auto be32 = [&](size_t at) {
    return (uint32_t(uint8_t(bytes[at])) << 24) | (uint32_t(uint8_t(bytes[at + 1])) << 16) |
           (uint32_t(uint8_t(bytes[at + 2])) << 8) | uint32_t(uint8_t(bytes[at + 3]));
  };
  EXPECT_EQ(be32(16), 640u);
  EXPECT_EQ(be32(20), 420u);
  auto jpg = run("certify --checkpoint " + dir_ + "/run/model.pt --data " + data_ + " --plot " + dir_ + "/cert.jpg");
  EXPECT_EQ(jpg.code, 2) << jpg.output;
  EXPECT_NE(jpg.output.find(".png or .svg"), std::string::npos) << jpg.output;
  EXPECT_EQ(jpg.output.find("certified at"), std::string::npos) << "refused before the work";

  auto a = run("attack --checkpoint " + dir_ + "/run/model.pt --data " + data_ + " --eps 36/255 --steps 20");
  ASSERT_EQ(a.code, 0) << a.output;
  EXPECT_NE(a.output.find("broken certificates 0"), std::string::npos) << a.output;

  auto i = run("info --checkpoint " + dir_ + "/run/model.pt");
  ASSERT_EQ(i.code, 0) << i.output;
  EXPECT_NE(i.output.find("lipkit::SllConv2d"), std::string::npos) << i.output;
  EXPECT_NE(i.output.find("Lipschitz bound (l2): 1"), std::string::npos) << i.output;
  EXPECT_NE(i.output.find("trained epochs: 2"), std::string::npos) << i.output;
  EXPECT_NE(i.output.find("\"optimizer\": {"), std::string::npos) << i.output << ": the config, readable";
  EXPECT_EQ(i.output.find("\"distance\""), std::string::npos) << i.output << ": no section that does not apply";

  auto refused = run("certify --checkpoint " + dir_ + "/run/model.pt --data " + data_ + " --norm linf");
  EXPECT_EQ(refused.code, 2) << refused.output;
  EXPECT_NE(refused.output.find("refused"), std::string::npos) << refused.output;
}

TEST_F(Cli, SortNetTrainsCertifiesAndSurvivesPgdLinf) {
  const std::string cfg = dir_ + "/sortnet.json";
  std::ofstream(cfg) << R"({"model": {"preset": "sortnet-fmnist", "width": 48, "dense_layers": 3}, "batch_size": 20, "epochs": 4,
    "optimizer": {"name": "adam", "lr": 0.02, "betas": [0.9, 0.99]}, "schedule": {"name": "cosine"},
    "loss": {"name": "mixture", "eps": 0.15, "lam0": 1.0, "lam_end": 0.02},
    "distance": {"p": [8, 1000], "p_epochs": [0, 2]}, "norm": "linf", "radii": ["0.05"]})";
  auto t = run("train --config " + cfg + " --out " + dir_ + "/sortnet --data " + data_ + " --quiet");
  ASSERT_EQ(t.code, 0) << t.output;
  auto c = run("certify --checkpoint " + dir_ + "/sortnet/model.pt --norm linf --radii 0.02,0.05 --reestimate --data " + data_);
  ASSERT_EQ(c.code, 0) << c.output;
  EXPECT_NE(c.output.find("certified at 0.0500"), std::string::npos) << c.output;
  EXPECT_NE(c.output.find("IBP"), std::string::npos) << c.output;  // both rules reported
  EXPECT_NE(c.output.find("re-estimated 2 mean-shift layers"), std::string::npos) << c.output;
  auto a = run("attack --checkpoint " + dir_ + "/sortnet/model.pt --norm linf --eps 0.05 --steps 50 --data " + data_);
  ASSERT_EQ(a.code, 0) << a.output;
  EXPECT_NE(a.output.find("broken certificates 0"), std::string::npos) << a.output;
  auto i = run("info --checkpoint " + dir_ + "/sortnet/model.pt");
  EXPECT_NE(i.output.find("lipkit::SortNetLinear"), std::string::npos) << i.output;
  EXPECT_NE(i.output.find("Lipschitz bound (linf)"), std::string::npos) << i.output;
}

TEST_F(Cli, PlainNetworkIsBoundedAndCertifiedByItsComputedBound) {
  const std::string cfg = dir_ + "/plain.json";
  std::ofstream(cfg) << R"({"model": {"preset": "plain-fmnist", "conv_layers": 1, "dense_layers": 1, "width": 4,
    "dense_hidden": 16, "pool": 2}, "batch_size": 20, "epochs": 1, "loss": {"name": "ce"}})";
  auto t = run("train --config " + cfg + " --out " + dir_ + "/plain --data " + data_ + " --quiet");
  ASSERT_EQ(t.code, 0) << t.output;

  auto l = run("lipschitz --checkpoint " + dir_ + "/plain/model.pt --data " + data_ + " --bound gram --lower-steps 50");
  ASSERT_EQ(l.code, 0) << l.output;
  EXPECT_NE(l.output.find("torch::nn::Conv2d"), std::string::npos) << l.output;
  EXPECT_NE(l.output.find("upper bound (product)"), std::string::npos) << l.output;
  EXPECT_NE(l.output.find("(proven)"), std::string::npos) << l.output;
  EXPECT_NE(l.output.find("empirical lower bound"), std::string::npos) << l.output;

  auto refused = run("certify --checkpoint " + dir_ + "/plain/model.pt --data " + data_);
  EXPECT_EQ(refused.code, 2) << refused.output;
  EXPECT_NE(refused.output.find("--bound gram"), std::string::npos) << refused.output;

  auto gram = run("certify --checkpoint " + dir_ + "/plain/model.pt --data " + data_ + " --bound gram");
  ASSERT_EQ(gram.code, 0) << gram.output;
  EXPECT_NE(gram.output.find("certificate: proven (gram bound"), std::string::npos) << gram.output;
  auto attack = run("attack --checkpoint " + dir_ + "/plain/model.pt --data " + data_ + " --bound gram --eps 0.1");
  ASSERT_EQ(attack.code, 0) << attack.output;
  EXPECT_NE(attack.output.find("certificate: proven (gram bound"), std::string::npos) << attack.output;
  EXPECT_NE(attack.output.find("broken certificates 0"), std::string::npos) << attack.output;
  auto power = run("certify --checkpoint " + dir_ + "/plain/model.pt --data " + data_ + " --bound power");
  ASSERT_EQ(power.code, 0) << power.output;
  EXPECT_NE(power.output.find("rests on an estimate"), std::string::npos) << power.output;
}

TEST_F(Cli, PrivateTrainingIsAccountedCertifiedAndSurvivesPgd) {
  std::ofstream(dir_ + "/dp.json") << R"({"model": {"preset": "dp-fmnist", "width": 32}, "batch_size": 30, "epochs": 2,
    "optimizer": {"lr": 0.01}, "dp": {"epsilon": 2, "input_norm": 5}, "radii": ["36/255"]})";
  auto t = run("train --config " + dir_ + "/dp.json --out " + dir_ + "/dp --data " + data_ + " --subset 300 --quiet");
  ASSERT_EQ(t.code, 0) << t.output;
  EXPECT_NE(t.output.find("privacy: epsilon 2 spent at delta 1e-05"), std::string::npos) << t.output;
  auto info = run("info --checkpoint " + dir_ + "/dp/model.pt");
  ASSERT_EQ(info.code, 0) << info.output;
  EXPECT_NE(info.output.find("differential privacy: private: epsilon 1.99"), std::string::npos) << info.output;
  EXPECT_NE(info.output.find("after 20 steps"), std::string::npos) << info.output;
  auto a = run("attack --checkpoint " + dir_ + "/dp/model.pt --data " + data_ + " --eps 36/255 --steps 20 --subset 100");
  ASSERT_EQ(a.code, 0) << a.output;
  EXPECT_NE(a.output.find("broken certificates 0"), std::string::npos) << a.output;
  std::ofstream(dir_ + "/nonoise.json") << R"({"model": "dp-fmnist", "batch_size": 30, "epochs": 1,
    "dp": {"noise_multiplier": 0}})";
  auto refused = run("train --config " + dir_ + "/nonoise.json --out " + dir_ + "/nn --data " + data_ + " --subset 300");
  EXPECT_EQ(refused.code, 2) << refused.output;
  EXPECT_NE(refused.output.find("--no-privacy"), std::string::npos) << refused.output;
  auto debug = run("train --config " + dir_ + "/nonoise.json --out " + dir_ + "/nn --data " + data_ +
                   " --subset 300 --quiet --no-privacy");
  EXPECT_EQ(debug.code, 0) << debug.output;
  EXPECT_NE(debug.output.find("privacy: epsilon inf"), std::string::npos) << debug.output;
}

TEST_F(Cli, TabularTrainPredictCheckAndInfo) {
  std::ofstream(dir_ + "/t.csv") << [] {
    std::string rows = "x,z,y\n";
    for (int i = 0; i < 120; ++i) rows += std::to_string(i % 12) + "," + std::to_string((i * 7) % 5) + "," +
                                          std::to_string(0.5 * (i % 12) - ((i * 7) % 5) * 0.2) + "\n";
    return rows;
  }();
  std::ofstream(dir_ + "/tab.json") << R"({"model": {"preset": "monotonic-autompg", "monotonic": {"increasing": ["x"],
    "decreasing": []}}, "table": {"path": ")" << dir_ << R"(/t.csv", "target": "y"}, "epochs": 5, "batch_size": 32})";
  auto t = run("train --config " + dir_ + "/tab.json --out " + dir_ + "/tab --quiet");
  ASSERT_EQ(t.code, 0) << t.output;
  const std::string ckpt = dir_ + "/tab/model.pt";
  std::ofstream(dir_ + "/new.csv") << "z,x\n1,3\n2,4\n";
  auto p = run("predict --checkpoint " + ckpt + " --csv " + dir_ + "/new.csv --out " + dir_ + "/pred.csv");
  ASSERT_EQ(p.code, 0) << p.output;
  std::ifstream pred(dir_ + "/pred.csv");
  std::string header, a, b, end;
  std::getline(pred, header);
  EXPECT_EQ(header, "y");
  EXPECT_TRUE(std::getline(pred, a) && std::getline(pred, b) && !std::getline(pred, end));
  auto check = run("check-monotonic --checkpoint " + ckpt + " --pairs 256 --steps 5");
  EXPECT_EQ(check.code, 0) << check.output;
  EXPECT_NE(check.output.find("violations: 0"), std::string::npos) << check.output;
  auto info = run("info --checkpoint " + ckpt);
  EXPECT_EQ(info.code, 0) << info.output;
  EXPECT_NE(info.output.find("non-decreasing in [\"x\"]"), std::string::npos) << info.output;
  EXPECT_NE(info.output.find("proven for any input"), std::string::npos) << info.output;
  auto certify = run("certify --checkpoint " + ckpt);
  EXPECT_EQ(certify.code, 2) << certify.output;
  EXPECT_NE(certify.output.find("trained on a table"), std::string::npos) << certify.output;
  std::ofstream(dir_ + "/short.csv") << "z\n1\n";
  auto missing = run("predict --checkpoint " + ckpt + " --csv " + dir_ + "/short.csv --out " + dir_ + "/p2.csv");
  EXPECT_EQ(missing.code, 2) << missing.output;
  EXPECT_NE(missing.output.find("no column 'x'"), std::string::npos) << missing.output;
}

TEST_F(Cli, BadInputExitsWithTwoAndSaysWhy) {
  const std::string bad = dir_ + "/bad.json";
  std::ofstream(bad) << R"({"epochs": 1, "learning_rate": 0.1})";
  auto r = run("train --config " + bad + " --out " + dir_ + "/bad_run --data " + data_);
  EXPECT_EQ(r.code, 2) << r.output;
  EXPECT_NE(r.output.find("learning_rate"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find(bad), std::string::npos) << r.output;

  auto missing = run("certify --checkpoint " + dir_ + "/nope.pt");
  EXPECT_EQ(missing.code, 2) << missing.output;
  EXPECT_NE(missing.output.find("checkpoint not found"), std::string::npos) << missing.output;

  auto batch = run("bench --presets cpl-s --batch-size abc");
  EXPECT_EQ(batch.code, 2) << batch.output;
  EXPECT_NE(batch.output.find("'abc'"), std::string::npos) << batch.output;
  auto zero = run("certify --checkpoint " + dir_ + "/nope.pt --batch-size 0");  // the rule and the value
  EXPECT_EQ(zero.code, 2) << zero.output;
  EXPECT_NE(zero.output.find("--batch-size: must be > 0, got 0"), std::string::npos) << zero.output;

  const std::string radii = dir_ + "/radii.json";
  std::ofstream(radii) << R"({"epochs": 1, "radii": [true]})";
  auto r2 = run("train --config " + radii + " --out " + dir_ + "/bad_run --data " + data_);
  EXPECT_EQ(r2.code, 2) << r2.output;
  EXPECT_NE(r2.output.find("radii[0]"), std::string::npos) << r2.output;

  auto usage = run("certify");
  EXPECT_EQ(usage.code, 2) << usage.output;
  auto help = run("train --help");
  EXPECT_EQ(help.code, 0) << help.output;

  const std::string junk = dir_ + "/junk.pt";
  std::ofstream(junk) << "not a checkpoint";
  auto corrupt = run("info --checkpoint " + junk);
  EXPECT_EQ(corrupt.code, 2) << corrupt.output;
  EXPECT_NE(corrupt.output.find(junk), std::string::npos) << corrupt.output;
}

}  // namespace
