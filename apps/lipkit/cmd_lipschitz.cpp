#include <cstdio>
#include <memory>

#include <torch/torch.h>

#include "commands.h"
#include "lipkit/data/transforms.h"
#include "lipkit/lipschitz/bounds.h"
#include "lipkit/lipschitz/lower_bound.h"
#include "lipkit/layers/structure.h"
#include "model_io.h"

namespace lipkit::cli {

namespace {
struct LipschitzArgs {
  CommonOptions common;
  std::string checkpoint, data, bound = "gram";
  int64_t iters = 0, lower_steps = 200, lower_points = 32;
};
}  // namespace

void add_lipschitz_command(CLI::App& app) {
  auto a = std::make_shared<LipschitzArgs>();
  auto* sub = app.add_subcommand("lipschitz",
                                 "per-layer l2 Lipschitz upper bounds, their product, and an empirical lower bound");
  sub->add_option("--checkpoint", a->checkpoint, "model.pt written by lipkit train")->required();
  sub->add_option("--bound", a->bound, "gram (proven), exact (proven), power (estimate)")->capture_default_str();
  sub->add_option("--iters", a->iters, "Gram squarings or power iterations (0: default)");
  sub->add_option("--data", a->data, "data set for the input shape and the lower-bound starts (default: the checkpoint's)");
  sub->add_option("--lower-steps", a->lower_steps, "gradient-ascent steps of the lower bound (0: skip)")->capture_default_str();
  sub->add_option("--lower-points", a->lower_points, "test images (and as many random points) to start from")->capture_default_str();
  add_common_options(*sub, a->common);
  sub->callback([a] {
    apply_common_options(a->common);
    const auto method = lipschitz::parse_bound_method(a->bound);
    auto m = train::load_for_evaluation(a->checkpoint);
    auto test = load_test_data(a->data, m, std::max<int64_t>(a->lower_points, 1));
    auto report = lipschitz::upper_bound(m.model, {test.channels(), test.height(), test.width()}, method, a->iters);
    std::printf("%s: l2 upper bounds (%s)\n", a->checkpoint.c_str(), lipschitz::to_string(method).c_str());
    std::printf("%4s  %-70s %12s  %s\n", "#", "layer", "bound", "");
    for (size_t i = 0; i < report.layers.size(); ++i) {
      const auto& l = report.layers[i];
      std::printf("%4zu  %-70.70s %12.6g  %s\n", i, l.layer.c_str(), l.bound, l.proven ? "proven" : "estimate");
    }
    std::printf("upper bound (product): %.6g (%s)\n", report.product,
                report.proven ? "proven" : "rests on an estimate");
    if (a->lower_steps > 0) {
      torch::manual_seed(0);
      auto x = data::to_float(test.images);
      auto starts = torch::cat({x, torch::rand_like(x)});
      const double lower = lipschitz::lower_bound(m.model, starts, a->lower_steps);
      std::printf("empirical lower bound: %.6g (gradient ascent, %ld steps from %ld test and %ld random points)\n",
                  lower, (long)a->lower_steps, (long)x.size(0), (long)x.size(0));
      std::printf("upper / lower: %.3g\n", report.product / std::max(lower, 1e-300));
    }
    if (m.model->size() && m.model->ptr(m.model->size() - 1)->as<NormalizedLinearImpl>())
      std::printf("note: the last layer is normalized (LLN); lipkit certify uses its per-pair rule with the body's bound\n");
  });
}

}  // namespace lipkit::cli
