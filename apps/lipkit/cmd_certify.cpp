#include <cstdio>
#include <memory>

#include "commands.h"
#include "lipkit/certify/report.h"
#include "model_io.h"

namespace lipkit::cli {

namespace {
struct CertifyArgs {
  CommonOptions common;
  CertificateArgs certificate;
  std::string checkpoint, data, radii, json, plot;
  int64_t subset = 0;
};

std::vector<double> parse_radii(const std::string& text) {
  std::vector<double> out;  // empty: the standard radii of the norm
  if (text.empty()) return out;
  for (const auto& item : split_commas(text)) out.push_back(certify::parse_radius(item));
  return out;
}
}  // namespace

void add_certify_command(CLI::App& app) {
  auto a = std::make_shared<CertifyArgs>();
  auto* sub = app.add_subcommand("certify", "certified accuracy of a checkpoint on the test set");
  sub->add_option("--checkpoint", a->checkpoint, "model.pt written by lipkit train")->required();
  sub->add_option("--data", a->data, "data set name or folder (default: the checkpoint's)");
  sub->add_option("--radii", a->radii,
                  "comma-separated radii, fractions allowed (default l2: 36/255,72/255,108/255,1; "
                  "linf: 0.1,0.3 on grayscale data, 2/255,8/255 on color)");
  sub->add_option("--json", a->json, "write the report as JSON");
  sub->add_option("--plot", a->plot, "write certified accuracy vs radius: a .png or .svg file");
  sub->add_option("--subset", a->subset, "only the first N test images")->check(kNonNegative);
  add_certificate_options(*sub, a->certificate);
  add_common_options(*sub, a->common);
  sub->callback([a] {
    apply_common_options(a->common);
    certify::check_plot_path(a->plot);  // before the work, not after it
    auto m = train::load_for_evaluation(a->checkpoint);
    auto test = load_test_data(a->data, m, a->subset);
    auto options = certificate_options(a->certificate, a->data, m);
    options.radii = parse_radii(a->radii);
    auto result = certify::certify(m.model, test, options);
    std::printf("%s: %s test set\n", a->checkpoint.c_str(), test.name.c_str());
    if (result.reestimated > 0)
      std::printf("re-estimated %ld mean-shift layers over the training set\n", (long)result.reestimated);
    std::printf("certificate: %s (%s)\n", result.proven ? "proven" : "rests on an estimate, not proven",
                result.bound_source.c_str());
    std::printf("%s", certify::format_table(result).c_str());
    if (!a->json.empty()) certify::write_json(result, a->json, {{"checkpoint", a->checkpoint}, {"data", test.name}});
    if (!a->plot.empty()) certify::write_plot(result, a->plot, m.name + ": certified accuracy, " + test.name);
  });
}

}  // namespace lipkit::cli
