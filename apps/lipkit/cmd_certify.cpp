#include <cstdio>
#include <fstream>
#include <memory>
#include <sstream>

#include "commands.h"
#include "lipkit/certify/certify.h"
#include "lipkit/certify/report.h"
#include "lipkit/lipschitz/bounds.h"
#include "lipkit/train/reestimate.h"
#include "model_io.h"

namespace lipkit::cli {

namespace {
struct CertifyArgs {
  CommonOptions common;
  std::string checkpoint, data, norm = "l2", radii, json, plot, bound;
  int64_t iters = 0;
  int64_t subset = 0, batch_size = 500;
  bool reestimate = false;
};

std::vector<double> parse_radii(const std::string& text) {
  std::vector<double> out;
  for (const auto& item : split_commas(text)) out.push_back(certify::parse_radius(item));
  TORCH_CHECK(!out.empty(), "--radii: no radius given");
  return out;
}
}  // namespace

void add_certify_command(CLI::App& app) {
  auto a = std::make_shared<CertifyArgs>();
  auto* sub = app.add_subcommand("certify", "certified accuracy of a checkpoint on the test set");
  sub->add_option("--checkpoint", a->checkpoint, "model.pt written by lipkit train")->required();
  sub->add_option("--data", a->data, "data set name or folder (default: the checkpoint's)");
  sub->add_option("--norm", a->norm, "l2 or linf")->capture_default_str();
  sub->add_option("--radii", a->radii,
                  "comma-separated radii, fractions allowed (default l2: 36/255,72/255,108/255,1; "
                  "linf: 0.1,0.3 on grayscale data, 2/255,8/255 on color)");
  sub->add_option("--json", a->json, "write the report as JSON");
  sub->add_option("--plot", a->plot, "write certified accuracy vs radius as SVG");
  sub->add_option("--subset", a->subset, "only the first N test images")->check(CLI::NonNegativeNumber);
  sub->add_option("--batch-size", a->batch_size, "evaluation batch size")->check(CLI::PositiveNumber);
  sub->add_option("--bound", a->bound,
                  "certify by a computed whole-model bound: gram (proven), exact (proven), power (estimate); "
                  "default: the lipkit layers' own guarantees");
  sub->add_flag("--reestimate", a->reestimate,
                "recompute mean-shift statistics over the training set first (l_inf-dist / SortNet; "
                "lipkit train already does this after its last epoch)");
  sub->add_option("--iters", a->iters, "Gram squarings or power iterations for --bound (0: default)");
  add_common_options(*sub, a->common);
  sub->callback([a] {
    apply_common_options(a->common);
    const Norm norm = parse_norm(a->norm);
    auto m = load_checkpoint(a->checkpoint);
    auto test = load_test_data(a->data, m.meta, a->subset);
    if (a->reestimate) {
      const std::string spec = a->data.empty() ? m.meta.value("data", std::string("fashion-mnist")) : a->data;
      const auto n = train::reestimate_mean_shift(m.model, data::load_dataset(spec, data::Split::Train));
      std::printf("re-estimated %ld mean-shift layers over the training set\n", (long)n);
      m.model->eval();
    }
    std::string radii_text = a->radii;
    if (radii_text.empty())
      radii_text = norm == Norm::L2 ? "36/255,72/255,108/255,1" : test.channels() == 1 ? "0.1,0.3" : "2/255,8/255";
    const auto radii = parse_radii(radii_text);
    double whole = 0;
    bool proven = true;
    std::string source = "the lipkit layers' guaranteed bounds";
    if (!a->bound.empty()) {
      TORCH_CHECK(norm == Norm::L2, "--bound computes l2 bounds; use --norm l2");
      const auto method = lipschitz::parse_bound_method(a->bound);
      auto report = lipschitz::upper_bound(m.model, {test.channels(), test.height(), test.width()}, method, a->iters);
      whole = report.product;
      proven = report.proven;
      source = lipschitz::to_string(method) + " bound of the whole model, L = " + std::to_string(whole);
    }
    auto result = certify::certify(m.model, test, norm, radii, a->batch_size, whole);
    result.proven = proven;
    result.bound_source = source;
    std::printf("%s: %s test set\n", a->checkpoint.c_str(), test.name.c_str());
    std::printf("certificate: %s (%s)\n", proven ? "proven" : "rests on an estimate, not proven",
                source.c_str());
    std::printf("%s", certify::format_table(result).c_str());
    if (!a->json.empty()) {
      auto j = certify::to_json(result);
      j["checkpoint"] = a->checkpoint;
      j["proven"] = proven;
      j["bound"] = source;
      j["data"] = test.name;
      std::ofstream out(a->json);
      TORCH_CHECK(out, "cannot write ", a->json);
      out << j.dump(2) << "\n";
    }
    if (!a->plot.empty()) certify::write_svg(result, a->plot, "certified accuracy, " + test.name);
  });
}

}  // namespace lipkit::cli
