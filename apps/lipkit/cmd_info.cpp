#include <cstdio>
#include <memory>

#include "commands.h"
#include "lipkit/train/info.h"

namespace lipkit::cli {

namespace {
struct InfoArgs {
  CommonOptions common;
  std::string checkpoint;
};
void print_table_guarantee(const nlohmann::json& t) {
  std::printf("table model: %s of '%s'", t.at("task").get<std::string>().c_str(), t.at("target").get<std::string>().c_str());
  if (!t.at("classes").empty()) std::printf(" (classes %s)", t.at("classes").dump().c_str());
  std::printf("\nmonotone guarantee (lambda %g): %s\n", t.at("lambda").get<double>(),
              t.at("monotone_proven").get<bool>() ? "proven for any input (MonotonicResidual, body l1 -> l_inf <= lambda)"
                                                  : "NOT proven with these weights (body bound above lambda)");
  for (const auto& o : t.at("outputs")) {
    std::printf("  %s: non-decreasing in %s, non-increasing in %s\n", o.at("output").get<std::string>().c_str(),
                o.at("increasing").dump().c_str(), o.at("decreasing").dump().c_str());
    std::printf("  Lipschitz bound of %s per raw feature unit (|d/dx_i|, standardisation included):\n",
                o.at("output").get<std::string>().c_str());
    for (const auto& [feature, bound] : o.at("partial_bound_raw").items())
      std::printf("    %-24s %.6g\n", feature.c_str(), bound.get<double>());
  }
}
}  // namespace

void add_info_command(CLI::App& app) {
  auto a = std::make_shared<InfoArgs>();
  auto* sub = app.add_subcommand("info", "architecture, parameters, Lipschitz norm and training record of a checkpoint");
  sub->add_option("--checkpoint", a->checkpoint, "model.pt written by lipkit train")->required();
  add_common_options(*sub, a->common);
  sub->callback([a] {
    apply_common_options(a->common);
    const auto info = train::checkpoint_info(a->checkpoint);
    std::printf("%s\n\narchitecture:\n%s\n\nparameters: %ld\n", a->checkpoint.c_str(), info.architecture.c_str(),
                (long)info.parameters);
    if (!info.table.is_null()) print_table_guarantee(info.table);
    for (const auto& [norm, bound] : info.bounds) {
      if (!info.table.is_null()) break;  // its l2 / l_inf statements do not apply: the pair is l1 -> l_inf
      if (bound)
        std::printf("Lipschitz bound (%s): %.6g%s\n", to_string(norm).c_str(), *bound,
                    info.pairwise_head ? " for the body; normalized last layer certified per class pair" : "");
      else
        std::printf("Lipschitz bound (%s): none (not certifiable in this norm)\n", to_string(norm).c_str());
    }
    if (!info.dp.is_null()) {
      const auto& d = info.dp;
      std::printf("differential privacy: %s: epsilon %s at delta %g after %ld steps (Poisson rate %g, noise "
                  "multiplier %g, %s noise; %s)\n",
                  d.at("private").get<bool>() ? "private" : "NOT private (--no-privacy)", d.at("epsilon").dump().c_str(),
                  d.at("delta").get<double>(), (long)d.at("steps").get<int64_t>(), d.at("sampling_rate").get<double>(),
                  d.at("noise_multiplier").get<double>(), d.at("mode").get<std::string>().c_str(),
                  d.at("accounting").get<std::string>().c_str());
    }
    std::printf("data: %s\ntrained epochs: %ld (next batch %ld)\nconfig:\n%s\n", info.data.c_str(), (long)info.epoch,
                (long)info.next_batch, info.config.dump(2).c_str());
    if (!info.last_metrics.is_null()) std::printf("last epoch metrics:\n%s\n", info.last_metrics.dump(2).c_str());
  });
}

}  // namespace lipkit::cli
