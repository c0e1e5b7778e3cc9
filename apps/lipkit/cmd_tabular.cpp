// Commands on models trained on a table: predict (new rows) and check-monotonic (a violation search).
#include <torch/torch.h>

#include <cstdio>
#include <memory>

#include "commands.h"
#include "lipkit/certify/monotonic_check.h"
#include "lipkit/train/tabular_model.h"

namespace lipkit::cli {

namespace {
struct PredictArgs {
  CommonOptions common;
  std::string checkpoint, input, output;
};

struct CheckArgs {
  CommonOptions common;
  std::string checkpoint, csv;
  certify::MonotonicCheckOptions search;
};
}  // namespace

void add_predict_command(CLI::App& app) {
  auto a = std::make_shared<PredictArgs>();
  auto* sub = app.add_subcommand("predict", "predictions of a tabular model (monotonic family) for new rows");
  sub->add_option("--checkpoint", a->checkpoint, "model.pt written by lipkit train on a table")->required();
  sub->add_option("--csv", a->input, "rows to predict: CSV with a header, or JSON records; columns by name")->required();
  sub->add_option("--out", a->output, "the predictions (CSV, one line per row, written atomically)")->required();
  add_common_options(*sub, a->common);
  sub->callback([a] {
    apply_common_options(a->common);
    const auto m = train::load_tabular(a->checkpoint);
    train::write_predictions(m, a->input, a->output);
    std::printf("%s: predictions of '%s' (%s) written to %s\n", a->input.c_str(), m.target.c_str(), m.task.c_str(),
                a->output.c_str());
  });
}

void add_check_monotonic_command(CLI::App& app) {
  auto a = std::make_shared<CheckArgs>();
  auto* sub = app.add_subcommand("check-monotonic",
                                 "search a tabular model for monotonicity violations (random pairs along each "
                                 "constrained input over the training range, then gradient ascent)");
  sub->add_option("--checkpoint", a->checkpoint, "model.pt written by lipkit train on a table")->required();
  sub->add_option("--csv", a->csv, "search over the range of these rows instead of the training range");
  sub->add_option("--pairs", a->search.pairs, "random pairs per constrained (output, input)")
      ->capture_default_str()->check(kPositive);
  sub->add_option("--steps", a->search.steps, "gradient-ascent steps")->capture_default_str()->check(kNonNegative);
  sub->add_option("--seed", a->search.seed, "random seed")->capture_default_str();
  add_common_options(*sub, a->common);
  sub->callback([a] {
    apply_common_options(a->common);
    const auto m = train::load_tabular(a->checkpoint);
    auto lo = m.range_min, hi = m.range_max;
    if (!a->csv.empty()) {
      const auto rows = train::read_rows(m, a->csv);
      lo = std::get<0>(rows.x.min(0));
      hi = std::get<0>(rows.x.max(0));
    }
    const auto r = certify::check_monotonic(m.model, m.constraints, lo, hi, a->search);
    std::printf("%s: %ld pairs searched over the %s range\n", a->checkpoint.c_str(), (long)r.pairs,
                a->csv.empty() ? "training" : "given rows'");
    if (r.output < 0) {
      std::printf("no monotone constraint in this model: nothing to check\n");
      return;
    }
    const auto& feature = m.feature_names[r.input];
    std::printf("violations: %ld\nworst pair: output %ld, feature '%s', change in the wrong direction %.6g "
                "(< 0: none) at step %.6g\n",
                (long)r.violations, (long)r.output, feature.c_str(), r.worst, r.step);
    std::printf("most wrong-signed slope seen: %.6g (< 0: none)\n", r.worst_slope);
    if (r.violations > 0) throw ExitError{kExitInternal, "monotonicity violated: the guarantee does not hold"};
  });
}

}  // namespace lipkit::cli
