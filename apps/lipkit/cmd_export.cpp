#include <cstdio>
#include <memory>

#include <torch/torch.h>

#include "commands.h"
#include "lipkit/deploy/export.h"
#include "lipkit/train/checkpoint.h"

namespace lipkit::cli {

namespace {
struct ExportArgs {
  CommonOptions common;
  std::string checkpoint, out, norm, input_shape;
  bool vanilla = false;
};

// --input-shape, else the shape the checkpoint records (deploy::recorded_input_shape).
std::vector<int64_t> input_shape(const std::string& arg, const nlohmann::json& meta) {
  if (!arg.empty()) {
    std::vector<int64_t> s;
    for (const auto& part : split_commas(arg)) {
      try {
        s.push_back(std::stoll(part));
      } catch (const std::exception&) {
        throw ExitError{kExitBadInput, "--input-shape: '" + arg + "' is not a comma-separated list of sizes"};
      }
      if (s.back() <= 0) throw ExitError{kExitBadInput, "--input-shape: sizes must be positive, got '" + arg + "'"};
    }
    return s;
  }
  auto recorded = deploy::recorded_input_shape(meta);
  if (!recorded.empty()) return recorded;
  throw ExitError{kExitBadInput, "this checkpoint records no input shape: give --input-shape C,H,W (or F)"};
}
}  // namespace

void add_export_command(CLI::App& app) {
  auto a = std::make_shared<ExportArgs>();
  auto* sub = app.add_subcommand("export", "TorchScript archive of a checkpoint: folded weights, certificate attributes");
  sub->add_option("--checkpoint", a->checkpoint, "model.pt written by lipkit train or lipkit.save")->required();
  sub->add_option("--out", a->out, "the archive to write (e.g. model.ts)")->required();
  sub->add_flag("--vanilla", a->vanilla, "stock PyTorch operators only (loads without lipkit); refuses layers without that form");
  sub->add_option("--norm", a->norm, "l2 or linf (default: the norm the layers guarantee)");
  sub->add_option("--input-shape", a->input_shape, "C,H,W or F (default: the checkpoint's)");
  add_common_options(*sub, a->common);
  sub->callback([a] {
    apply_common_options(a->common);
    auto m = train::load_for_evaluation(a->checkpoint);
    deploy::ExportOptions o;
    o.sample_shape = input_shape(a->input_shape, m.meta);
    o.norm = a->norm;
    o.vanilla = a->vanilla;
    auto c = deploy::export_torchscript(m.model, a->out, o);
    std::printf("%s: wrote %s (%s)\n", a->checkpoint.c_str(), a->out.c_str(),
                c.uses_lipkit_operators ? "uses lipkit operators: load lipkit first" : "stock PyTorch operators only");
    std::printf("certificate: norm %s, Lipschitz bound %.17g (%s), rule %s, margin slack %g x (1 + max |logit|)\n",
                to_string(c.norm).c_str(), c.lipschitz_bound, c.bound_source.c_str(), c.rule.c_str(), c.margin_slack);
  });
}

}  // namespace lipkit::cli
