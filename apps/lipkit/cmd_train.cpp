#include <atomic>
#include <csignal>
#include <cstdio>
#include <memory>

#include "commands.h"
#include "lipkit/train/trainer.h"

namespace lipkit::cli {

namespace {
std::atomic<bool> g_stop{false};
void on_sigint(int) { g_stop = true; }

struct TrainArgs {
  CommonOptions common;
  std::string config, out, data;
  int64_t epochs = 0, subset = -1;
  bool resume = false, quiet = false, no_privacy = false;
};
}  // namespace

void add_train_command(CLI::App& app) {
  auto args = std::make_shared<TrainArgs>();
  auto* sub = app.add_subcommand("train", "train a model from a JSON config (resumable; Ctrl-C saves a checkpoint)");
  sub->add_option("--config", args->config, "model + training config, e.g. configs/sll-fmnist.json")
      ->required()
      ->check(CLI::ExistingFile);
  sub->add_option("--out", args->out, "output folder (model.pt, config.json, metrics.jsonl)")->required();
  sub->add_option("--data", args->data, "data set name (fashion-mnist, mnist, cifar10, cifar100) or folder");
  sub->add_option("--epochs", args->epochs, "override the config's epochs")->check(CLI::PositiveNumber);
  sub->add_option("--subset", args->subset, "use only the first N training and N test images")
      ->check(CLI::NonNegativeNumber);
  sub->add_flag("--resume", args->resume, "continue from OUT/model.pt, bit for bit");
  sub->add_flag("--quiet", args->quiet, "no progress bar");
  sub->add_flag("--no-privacy", args->no_privacy,
                "debugging only: allow dp.noise_multiplier 0 (no noise; the checkpoint records epsilon = inf)");
  add_common_options(*sub, args->common);
  sub->callback([args] {
    apply_common_options(args->common);
    auto config = train::load_config(args->config);
    if (!args->data.empty()) config.data = args->data;
    if (args->epochs > 0) config.epochs = args->epochs;
    if (args->subset >= 0) config.subset = args->subset;
    train::TrainOptions opts;
    opts.out_dir = args->out;
    opts.resume = args->resume;
    opts.progress = !args->quiet;
    opts.no_privacy = args->no_privacy;
    std::signal(SIGINT, on_sigint);
    opts.stop_requested = [] { return g_stop.load(); };
    auto s = train::train(config, opts);
    std::signal(SIGINT, SIG_DFL);
    if (s.interrupted) return;
    if (!config.table.path.empty()) {
      if (config.table.task == "regression")
        std::printf("trained %ld epochs in %.1f s: test MSE %.4f\n", (long)s.epochs_done, s.seconds, s.test_mse);
      else
        std::printf("trained %ld epochs in %.1f s: test accuracy %.2f%%\n", (long)s.epochs_done, s.seconds,
                    100 * s.clean_accuracy);
      std::printf("checkpoint: %s/model.pt\n", args->out.c_str());
      return;
    }
    std::printf("trained %ld epochs in %.1f s: test accuracy %.2f%%", (long)s.epochs_done, s.seconds,
                100 * s.clean_accuracy);
    for (size_t i = 0; i < s.certified_accuracy.size(); ++i)
      std::printf(", certified@%.3f %.2f%%", config.radii[i], 100 * s.certified_accuracy[i]);
    if (config.dp.enabled)
      std::printf("\nprivacy: epsilon %.4g spent at delta %g%s", s.epsilon, config.dp.delta,
                  s.budget_spent ? " (budget reached: stopped early)" : "");
    std::printf("\ncheckpoint: %s/model.pt\n", args->out.c_str());
  });
}

}  // namespace lipkit::cli
