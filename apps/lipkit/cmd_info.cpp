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
    for (const auto& [norm, bound] : info.bounds) {
      if (bound)
        std::printf("Lipschitz bound (%s): %.6g%s\n", to_string(norm).c_str(), *bound,
                    info.pairwise_head ? " for the body; normalized last layer certified per class pair" : "");
      else
        std::printf("Lipschitz bound (%s): none (not certifiable in this norm)\n", to_string(norm).c_str());
    }
    std::printf("data: %s\ntrained epochs: %ld (next batch %ld)\nconfig:\n%s\n", info.data.c_str(), (long)info.epoch,
                (long)info.next_batch, info.config.dump(2).c_str());
    if (!info.last_metrics.is_null()) std::printf("last epoch metrics:\n%s\n", info.last_metrics.dump(2).c_str());
  });
}

}  // namespace lipkit::cli
