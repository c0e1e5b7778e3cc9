// Certified radii equal the formula on hand-built models; certificates survive PGD on a trained
// model, and a model that lies about its Lipschitz constant gets caught.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "lipkit/certify/attacks.h"
#include "lipkit/certify/certify.h"
#include "lipkit/data/dataset.h"
#include "lipkit/lipkit.h"
#include "lipkit/train/checkpoint.h"
#include "lipkit/train/trainer.h"
#include "support/expect_error.h"
#include "support/lying_layer.h"
#include "support/synthetic_data.h"

using namespace lipkit;

namespace {

TEST(Certify, RadiusIsMarginOverSqrtTwoForAOneLipschitzModel) {
  torch::nn::Sequential model(torch::nn::Flatten(), FirstChannels(3));
  auto x = torch::tensor({1.0, 0.2, -0.5, 0.1, 0.9, 0.3}, torch::kDouble).view({2, 3, 1, 1});
  auto y = torch::tensor({0, 0}, torch::kLong);
  const double slack = certify::margin_slack(torch::kDouble) * (1 + 1.0);  // max |logit| = 1
  auto r = certify::certified_radius(model, x, y, Norm::L2);
  EXPECT_NEAR(r[0].item<double>(), (0.8 - slack) / std::sqrt(2.0), 1e-12);
  EXPECT_EQ(r[1].item<double>(), 0.0);  // misclassified: not certified
  auto rinf = certify::certified_radius(model, x, y, Norm::Linf);
  EXPECT_NEAR(rinf[0].item<double>(), (0.8 - slack) / 2.0, 1e-12);
}

TEST(Certify, MarginsBelowTheRoundingSlackAreNotCertified) {
  torch::nn::Sequential model(torch::nn::Flatten(), FirstChannels(2));
  auto x = torch::tensor({1.0, 1.0 - 1e-7, 1.0, 1.0 - 1e-5}, torch::kDouble).view({2, 2, 1, 1});
  auto r = certify::certified_radius(model, x, torch::tensor({0, 0}, torch::kLong), Norm::L2);
  EXPECT_EQ(r[0].item<double>(), 0.0);  // margin 1e-7 < slack 2e-6
  EXPECT_GT(r[1].item<double>(), 0.0);  // margin 1e-5 > slack
  // float32 logits get the larger float32 slack
  auto r32 = certify::certified_radius(model, x.to(torch::kFloat), torch::tensor({0, 0}, torch::kLong), Norm::L2);
  EXPECT_EQ(r32[1].item<double>(), 0.0);
}

TEST(Certify, NormalizedHeadUsesThePerPairRule) {
  NormalizedLinear head(2, 3);
  {
    torch::NoGradGuard ng;
    head->weight.copy_(torch::tensor({1.0f, 0.0f, 0.0f, 3.0f, -2.0f, 0.0f}).view({3, 2}));
    head->bias.zero_();
  }
  torch::nn::Sequential model(head);
  // logits (1, 0.2, -1): pair (0,1): 0.8 / ||e1 - e2|| = 0.8 / sqrt 2; pair (0,2): 2 / 2 = 1.
  model->to(torch::kDouble);
  auto r = certify::certified_radius(model, torch::tensor({{1.0, 0.2}}, torch::kDouble), torch::tensor({0}, torch::kLong),
                                     Norm::L2);
  EXPECT_NEAR(r[0].item<double>(), (0.8 - certify::margin_slack(torch::kDouble) * 2) / std::sqrt(2.0), 1e-12);
}

TEST(Certify, StdNormalizationDividesTheRadius) {
  // Inputs divided by std 0.5 inside the model: Lipschitz 2 w.r.t. pixels, radius halves.
  torch::nn::Sequential model(InputNormalization(InputNormalizationOptions({0, 0, 0}, {0.5, 0.5, 0.5})),
                              torch::nn::Flatten(), FirstChannels(3));
  model->to(torch::kDouble);
  auto x = torch::tensor({0.6, 0.2, 0.1}, torch::kDouble).view({1, 3, 1, 1});
  auto r = certify::certified_radius(model, x, torch::tensor({0}, torch::kLong), Norm::L2);
  // logits 2x = (1.2, 0.4, 0.2): margin 0.8, L = 2
  EXPECT_NEAR(r[0].item<double>(), (0.8 - certify::margin_slack(torch::kDouble) * 2.2) / (std::sqrt(2.0) * 2.0), 1e-12);
  EXPECT_DOUBLE_EQ(certify::body_bound(model, Norm::L2), 2.0);
}

TEST(Certify, RefusesANormTheLayersDoNotBound) {
  torch::nn::Sequential model(CplLinear(4), FirstChannels(2));
  try {
    certify::certified_radius(model, torch::randn({1, 4}), torch::tensor({0}, torch::kLong), Norm::Linf);
    FAIL() << "an l2 model must be refused in l_inf";
  } catch (const c10::Error& e) {
    EXPECT_NE(std::string(e.what_without_backtrace()).find("refused"), std::string::npos);
  }
}

TEST(Certify, ParsesRadii) {
  EXPECT_DOUBLE_EQ(certify::parse_radius("36/255"), 36.0 / 255.0);
  EXPECT_DOUBLE_EQ(certify::parse_radius("1"), 1.0);
  EXPECT_DOUBLE_EQ(certify::parse_radius("0"), 0.0);
  lipkit::testing::expect_error([] { certify::parse_radius("abc"); }, {"radius 'abc'", "not a number or a fraction like 36/255"});
  lipkit::testing::expect_error([] { certify::parse_radius("36/"); }, {"radius '36/'", "not a number"});
  lipkit::testing::expect_error([] { certify::parse_radius("1/0"); }, {"radius '1/0'", "finite number >= 0", "inf"});
  lipkit::testing::expect_error([] { certify::parse_radius("-1"); }, {"radius '-1'", "finite number >= 0", "-1"});
  lipkit::testing::expect_error([] { certify::parse_radius("36/-255"); }, {"finite number >= 0"});
  lipkit::testing::expect_error([] { certify::parse_radius("nan"); }, {"radius 'nan'", "finite number >= 0"});
  lipkit::testing::expect_error([] { certify::parse_radius("inf"); }, {"radius 'inf'", "finite number >= 0"});
}


class TrainedModel : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = lipkit::testing::write_synthetic_mnist(lipkit::testing::fresh_dir("cert_model"), 600, 200);
    train::TrainConfig c;
    c.model = models::model_preset("sll-fmnist");
    c.model.conv_layers = 1;
    c.model.dense_layers = 2;
    c.model.width = 4;
    c.model.dense_hidden = 64;
    c.model.pool = 2;
    c.data = dir_;
    c.epochs = 3;
    c.batch_size = 20;
    train::TrainOptions o;
    o.out_dir = dir_ + "/run";
    o.progress = false;
    train::train(c, o);
  }
  static std::string dir_;
};
std::string TrainedModel::dir_;

TEST_F(TrainedModel, CertificatesSurvivePgd) {
  auto model = train::load_model(dir_ + "/run/model.pt");
  auto test = data::load_dataset(dir_, data::Split::Test);
  for (double eps : {0.1, 0.3}) {
    certify::PgdOptions o;
    o.eps = eps;
    o.steps = 50;
    auto r = certify::attack_and_check(model, test, o);
    EXPECT_EQ(r.violations, 0) << "eps " << eps;
    EXPECT_GT(r.certified, 20) << "eps " << eps << ": the check must not be vacuous";
    EXPECT_LE(r.max_perturbation, eps * (1 + 1e-5));
    EXPECT_LE(r.robust_correct, r.clean_correct);
  }
}

TEST_F(TrainedModel, AttackCatchesAModelThatLiesAboutItsBound) {
  auto model = train::load_model(dir_ + "/run/model.pt");
  auto test = data::load_dataset(dir_, data::Split::Test);
  auto liar = lipkit::testing::with_liar_before_head(model);  // before the normalized head
  certify::PgdOptions o;
  o.eps = 0.3;
  o.steps = 50;
  EXPECT_GT(certify::attack_and_check(liar, test, o).violations, 0);
}

}  // namespace
