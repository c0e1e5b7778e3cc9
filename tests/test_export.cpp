// Model descriptions (models/description.h) and the TorchScript export (deploy/export.h), loaded
// back with torch::jit::load in C++.
#include <gtest/gtest.h>
#include <torch/script.h>
#include <torch/torch.h>

#include <cstdio>
#include <filesystem>

#include "lipkit/certify/certify.h"
#include "lipkit/deploy/export.h"
#include "lipkit/lipkit.h"
#include "lipkit/models/description.h"
#include "lipkit/models/presets.h"
#include "support/expect_error.h"

namespace lipkit {
namespace {

models::ModelSpec fmnist(const std::string& preset) {
  auto s = models::model_preset(preset);
  s.in_channels = 1, s.image_size = 28, s.num_classes = 10, s.mean = {0.286};
  return s;
}

std::string temp_path(const std::string& name) {
  return (std::filesystem::temp_directory_path() / ("lipkit_export_" + std::to_string(::getpid()) + "_" + name)).string();
}

TEST(Description, RoundTripsEveryPreset) {
  for (const auto& name : {"cpl-fmnist", "sll-fmnist", "aol-fmnist", "plain-fmnist", "sortnet-fmnist", "dp-fmnist",
                           "sll-spline-fmnist", "monotonic-autompg"}) {
    auto spec = fmnist(name);
    if (spec.family == "monotonic")
      spec.in_channels = 4, spec.monotone = {1, 0, -1, 0}, spec.num_classes = 1, spec.mean = {0, 0, 0, 0}, spec.std = {1, 1, 1, 1};
    auto model = models::build_model(spec);
    auto d = models::describe(*model);
    auto again = models::build_sequential(d);
    EXPECT_EQ(models::describe(*again), d) << name;
    auto a = model->named_parameters(), b = again->named_parameters();
    ASSERT_EQ(a.size(), b.size()) << name;
    for (size_t i = 0; i < a.size(); ++i) {
      EXPECT_EQ(a[i].key(), b[i].key());
      EXPECT_EQ(a[i].value().sizes(), b[i].value().sizes()) << a[i].key();
    }
  }
}

TEST(Description, BadDescriptionsNameTheField) {
  using nlohmann::json;
  testing::expect_error([] { models::build_sequential(json{{"type", "Linear"}}); }, {"root must be a Sequential"});
  testing::expect_error([] { models::build_module(json{{"type", "Nope"}}); }, {"unknown module type 'Nope'"});
  testing::expect_error([] { models::build_module(json{{"type", "CplLinear"}, {"options", json::object()}}); },
                        {"CplLinear.options.features", "missing"});
  testing::expect_error([] { models::build_module(json{{"type", "CplLinear"}, {"options", {{"features", "six"}}}}); },
                        {"CplLinear.options.features", "wrong type"});
  testing::expect_error([] { models::describe(*torch::nn::GELU()); }, {"has no description"});
}

void expect_archive_matches(torch::nn::Sequential& model, const std::string& path, bool vanilla, Norm norm) {
  deploy::ExportOptions o;
  o.sample_shape = {1, 28, 28};
  o.vanilla = vanilla;
  auto cert = deploy::export_torchscript(model, path, o);
  auto ts = torch::jit::load(path);
  torch::manual_seed(5);
  auto x = torch::rand({8, 1, 28, 28});
  torch::NoGradGuard no_grad;
  auto want = model->forward(x), got = ts.forward({x}).toTensor();
  EXPECT_TRUE(torch::allclose(got, want, 1e-4, 1e-4 * want.abs().max().item<double>()))
      << (got - want).abs().max().item<double>();
  EXPECT_EQ(ts.attr("lipschitz_bound").toDouble(), certify::body_bound(model, norm));
  EXPECT_EQ(ts.attr("lipschitz_bound").toDouble(), cert.lipschitz_bound);
  EXPECT_EQ(ts.attr("norm").toStringRef(), to_string(norm));
  if (vanilla) EXPECT_FALSE(cert.uses_lipkit_operators);
}

TEST(Export, ArchiveLoadsInCppWithTheModelsLogits) {
  torch::manual_seed(1);
  for (const auto& name : {"cpl-fmnist", "sll-fmnist", "aol-fmnist"}) {
    auto model = models::build_model(fmnist(name));
    model->eval();
    const auto path = temp_path(std::string(name) + ".ts");
    expect_archive_matches(model, path, true, Norm::L2);
    std::remove(path.c_str());
  }
  auto sortnet = models::build_model(fmnist("sortnet-fmnist"));
  set_distance_p(*sortnet, std::numeric_limits<double>::infinity());
  sortnet->eval();
  const auto path = temp_path("sortnet.ts");
  expect_archive_matches(sortnet, path, false, Norm::Linf);  // lipkit::sort_neuron through the dispatcher
  std::remove(path.c_str());
}

TEST(Export, RefusesWhatItCannotExport) {
  auto sortnet = models::build_model(fmnist("sortnet-fmnist"));
  set_distance_p(*sortnet, std::numeric_limits<double>::infinity());
  deploy::ExportOptions o;
  o.sample_shape = {1, 28, 28};
  o.vanilla = true;
  const auto path = temp_path("refused.ts");
  testing::expect_error([&] { deploy::export_torchscript(sortnet, path, o); }, {"--vanilla", "SortNetLinear"});
  EXPECT_FALSE(std::filesystem::exists(path)) << "no half-written archive";
  torch::nn::Sequential gelu(torch::nn::Flatten(), torch::nn::Linear(784, 10), torch::nn::GELU());
  o.vanilla = false;
  testing::expect_error([&] { deploy::export_torchscript(gelu, path, o); }, {"GELU"});
  EXPECT_FALSE(std::filesystem::exists(path));
}

}  // namespace
}  // namespace lipkit
