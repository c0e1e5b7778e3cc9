// lipkit: train, certify, attack and inspect 1-Lipschitz networks. Thin: parses, calls the library,
// prints.
#include <c10/util/Exception.h>

#include <cstdio>
#include <string>

#include "commands.h"
#include "lipkit/runtime.h"

namespace lipkit::cli {

namespace {
// A check that the option's text is a number satisfying `rule` (e.g. "> 0"), named in the message.
CLI::Validator number_check(const std::string& name, const std::string& rule, bool (*ok)(double)) {
  return CLI::Validator(
      [rule, ok](std::string& text) -> std::string {
        size_t used = 0;
        double v = 0;
        try {
          v = std::stod(text, &used);
        } catch (const std::exception&) {
          used = 0;
        }
        if (used == 0 || used != text.size()) return "must be a number " + rule + ", got '" + text + "'";
        return ok(v) ? std::string() : "must be " + rule + ", got " + text;
      },
      name);
}
}  // namespace

const CLI::Validator kPositive = number_check("POSITIVE", "> 0", [](double v) { return v > 0; });
const CLI::Validator kNonNegative = number_check("NONNEGATIVE", ">= 0", [](double v) { return v >= 0; });

void add_common_options(CLI::App& sub, CommonOptions& opts) {
  sub.add_option("--threads", opts.threads, "intra-op threads (default: all cores)")->check(kNonNegative);
}

namespace {
char** g_argv = nullptr;
}
void remember_argv(char** argv) { g_argv = argv; }
char** remembered_argv() { return g_argv; }

void apply_common_options(const CommonOptions& opts) {
  configure_allocator();
  configure_threads(opts.threads);
}

}  // namespace lipkit::cli

int main(int argc, char** argv) {
  lipkit::exec_with_short_openmp_spin(argv);  // before any work: OpenMP reads its spin count once
  lipkit::cli::remember_argv(argv);
  CLI::App app{"lipkit: build, train, certify and attack 1-Lipschitz neural networks"};
  app.require_subcommand(1);
  lipkit::cli::add_train_command(app);
  lipkit::cli::add_certify_command(app);
  lipkit::cli::add_attack_command(app);
  lipkit::cli::add_info_command(app);
  lipkit::cli::add_lipschitz_command(app);
  lipkit::cli::add_predict_command(app);
  lipkit::cli::add_check_monotonic_command(app);
  lipkit::cli::add_export_command(app);
  lipkit::cli::add_bench_command(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int code = app.exit(e);
    return code == 0 ? 0 : lipkit::cli::kExitBadInput;
  } catch (const lipkit::cli::ExitError& e) {
    std::fprintf(stderr, "lipkit: %s\n", e.message.c_str());
    return e.code;
  } catch (const c10::Error& e) {
    std::fprintf(stderr, "lipkit: error: %s\n", e.what_without_backtrace());
    return lipkit::cli::kExitBadInput;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "lipkit: internal error: %s\n", e.what());
    return lipkit::cli::kExitInternal;
  }
  return 0;
}
