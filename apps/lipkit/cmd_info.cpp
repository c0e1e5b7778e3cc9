#include <cstdio>
#include <fstream>
#include <iostream>
#include <memory>

#include "commands.h"
#include "lipkit/certify/certify.h"
#include "lipkit/layers/structure.h"
#include "model_io.h"

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
    auto m = load_checkpoint(a->checkpoint);
    std::cout << a->checkpoint << "\n\narchitecture:\n" << *m.model << "\n\n";
    int64_t params = 0;
    for (const auto& p : m.model->parameters()) params += p.numel();
    std::printf("parameters: %ld\n", (long)params);
    for (Norm norm : {Norm::L2, Norm::Linf}) {
      try {
        const double l = certify::body_lipschitz(m.model, norm);
        std::printf("Lipschitz bound (%s): %.6g%s\n", to_string(norm).c_str(), l,
                    m.model->size() && m.model->ptr(m.model->size() - 1)->as<NormalizedLinearImpl>()
                        ? " for the body; normalized last layer certified per class pair"
                        : "");
      } catch (const c10::Error&) {
        std::printf("Lipschitz bound (%s): none (not certifiable in this norm)\n", to_string(norm).c_str());
      }
    }
    std::printf("data: %s\ntrained epochs: %ld (next batch %ld)\nconfig: %s\n",
                m.meta.value("data", std::string("?")).c_str(), (long)m.meta.value("epoch", 0),
                (long)m.meta.value("batch", 0), m.meta.at("config").dump().c_str());
    const auto dir = a->checkpoint.substr(0, a->checkpoint.find_last_of('/') + 1);
    std::ifstream metrics(dir + "metrics.jsonl");
    std::string line, last;
    while (std::getline(metrics, line)) if (!line.empty()) last = line;
    if (!last.empty()) std::printf("last epoch metrics: %s\n", last.c_str());
  });
}

}  // namespace lipkit::cli
