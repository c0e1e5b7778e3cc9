#include <cstdio>
#include <memory>

#include "commands.h"
#include "lipkit/certify/attacks.h"
#include "model_io.h"

namespace lipkit::cli {

namespace {
struct AttackArgs {
  CommonOptions common;
  CertificateArgs certificate;
  std::string checkpoint, data, eps = "36/255";
  int64_t steps = 50, subset = 1000;
  uint64_t seed = 0;
};
}  // namespace

void add_attack_command(CLI::App& app) {
  auto a = std::make_shared<AttackArgs>();
  a->certificate.batch_size = 250;
  auto* sub = app.add_subcommand(
      "attack", "PGD attack on the test set; checks that no point certify certifies is flipped (exit 1 if one is)");
  sub->add_option("--checkpoint", a->checkpoint, "model.pt written by lipkit train")->required();
  sub->add_option("--data", a->data, "data set name or folder (default: the checkpoint's)");
  sub->add_option("--eps", a->eps, "attack radius, fractions allowed")->capture_default_str();
  sub->add_option("--steps", a->steps, "PGD steps")->capture_default_str()->check(kNonNegative);
  sub->add_option("--subset", a->subset, "only the first N test images (0: all)")->capture_default_str();
  sub->add_option("--seed", a->seed, "random start seed");
  add_certificate_options(*sub, a->certificate);
  add_common_options(*sub, a->common);
  sub->callback([a] {
    apply_common_options(a->common);
    auto m = train::load_for_evaluation(a->checkpoint);
    auto test = load_test_data(a->data, m, a->subset);
    const auto cert = certificate_options(a->certificate, a->data, m);
    certify::PgdOptions o;
    o.norm = cert.norm;
    o.eps = certify::parse_radius(a->eps);
    o.steps = a->steps;
    o.seed = a->seed;
    auto r = certify::attack_and_check(m.model, test, o, cert, cert.batch_size);
    const double n = std::max<double>(r.total, 1);
    std::printf("PGD-%ld %s eps %.4f on %ld %s test images (float64 network, as certify)\n", (long)o.steps,
                to_string(o.norm).c_str(), o.eps, (long)r.total, test.name.c_str());
    std::printf("certificate: %s (%s)\n", r.proven ? "proven" : "rests on an estimate, not proven",
                r.bound_source.c_str());
    std::printf("clean accuracy      %6.2f%%\n", 100 * r.clean_correct / n);
    std::printf("empirical robust    %6.2f%%\n", 100 * r.robust_correct / n);
    std::printf("certified           %6.2f%%\n", 100 * r.certified / n);
    std::printf("broken certificates %ld (certified at eps yet flipped or tied; must be 0)\n", (long)r.violations);
    std::printf("largest perturbation %.6f (<= eps)\n", r.max_perturbation);
    if (r.violations > 0)
      throw ExitError{kExitInternal, std::to_string(r.violations) + " certificates broken by the attack"};
  });
}

}  // namespace lipkit::cli
