#pragma once
// One function per subcommand; each registers its options and a callback that calls the library.

#include <CLI/CLI.hpp>

#include <string>
#include <vector>

#include "lipkit/data/csv.h"

namespace lipkit::cli {

void add_train_command(CLI::App& app);
void add_certify_command(CLI::App& app);
void add_attack_command(CLI::App& app);
void add_info_command(CLI::App& app);
void add_bench_command(CLI::App& app);
void add_lipschitz_command(CLI::App& app);
void add_predict_command(CLI::App& app);
void add_check_monotonic_command(CLI::App& app);
void add_export_command(CLI::App& app);

using data::split_commas;

/// Option checks whose message names the rule and the value ("must be > 0, got 0"); CLI11's own
/// PositiveNumber prints its range as 0 to 1.8e308 written out in full.
extern const CLI::Validator kPositive;
extern const CLI::Validator kNonNegative;

/// The command line main() received (lipkit train --nproc re-executes it once per worker).
void remember_argv(char** argv);
char** remembered_argv();

/// Options every subcommand takes.
struct CommonOptions {
  int threads = 0;  // 0: all cores
};
void add_common_options(CLI::App& sub, CommonOptions& opts);
void apply_common_options(const CommonOptions& opts);

/// Exit codes: 0 ok, 2 bad usage or bad input, 1 internal error (a broken certificate included).
constexpr int kExitBadInput = 2;
constexpr int kExitInternal = 1;

/// Thrown by a callback to end with a given exit code after printing its message.
struct ExitError {
  int code;
  std::string message;
};

}  // namespace lipkit::cli
