#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <thread>

#include "commands.h"
#include "lipkit/runtime.h"
#include "lipkit/train/trainer.h"

namespace lipkit::cli {

namespace {
std::atomic<bool> g_stop{false};
void on_sigint(int) { g_stop = true; }

struct TrainArgs {
  CommonOptions common;
  std::string config, out, data, device = "cpu", dtype = "float32";
  int64_t epochs = 0, subset = -1, nproc = 0, bucket_mb = 25, timeout_s = 1800;
  bool resume = false, quiet = false, no_privacy = false;
};

int free_port() {
  const int s = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  const bool ok = s >= 0 && ::bind(s, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0 &&
                  ::getsockname(s, reinterpret_cast<sockaddr*>(&a), &len) == 0;
  if (s >= 0) ::close(s);
  if (!ok) throw ExitError{kExitInternal, "--nproc: no free local port for the rendezvous"};
  return ntohs(a.sin_port);
}

// lipkit train --nproc N: N workers on this machine, each this same command with the torchrun
// environment; the first worker to fail stops the others, and its rank and status are reported.
void launch_workers(int64_t n) {
  const std::string port = std::to_string(free_port());
  std::vector<pid_t> pids;
  for (int64_t r = 0; r < n; ++r) {
    const pid_t pid = ::fork();
    if (pid == 0) {
      const auto rank = std::to_string(r), world = std::to_string(n);
      ::setenv("RANK", rank.c_str(), 1), ::setenv("LOCAL_RANK", rank.c_str(), 1);
      ::setenv("WORLD_SIZE", world.c_str(), 1), ::setenv("LOCAL_WORLD_SIZE", world.c_str(), 1);
      ::setenv("MASTER_ADDR", "127.0.0.1", 1), ::setenv("MASTER_PORT", port.c_str(), 1);
      ::execv("/proc/self/exe", remembered_argv());
      std::_Exit(127);
    }
    if (pid < 0) throw ExitError{kExitInternal, "--nproc: cannot start worker " + std::to_string(r)};
    pids.push_back(pid);
  }
  std::signal(SIGINT, SIG_IGN);  // Ctrl-C reaches the workers (same process group): they save and stop
  int failed_rank = -1, failed_code = 0;
  for (size_t done = 0; done < pids.size(); ++done) {
    int status = 0;
    const pid_t pid = ::waitpid(-1, &status, 0);
    const int code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    if (code != 0 && failed_rank < 0) {
      for (size_t r = 0; r < pids.size(); ++r)
        if (pids[r] == pid) failed_rank = static_cast<int>(r);
      failed_code = code;
      for (const auto p : pids)
        if (p != pid) ::kill(p, SIGTERM);
    }
  }
  std::signal(SIGINT, SIG_DFL);
  if (failed_rank >= 0)
    throw ExitError{failed_code == kExitBadInput ? kExitBadInput : kExitInternal,
                    "worker rank " + std::to_string(failed_rank) + " of " + std::to_string(n) + " exited with status " +
                        std::to_string(failed_code) + "; the other workers were stopped"};
}
}  // namespace

void add_train_command(CLI::App& app) {
  auto args = std::make_shared<TrainArgs>();
  auto* sub = app.add_subcommand("train", "train a model from a JSON config (resumable; Ctrl-C saves a checkpoint)");
  sub->add_option("--config", args->config, "model + training config, e.g. configs/sll-fmnist.json")
      ->required()
      ->check(CLI::ExistingFile);
  sub->add_option("--out", args->out, "output folder (model.pt, config.json, metrics.jsonl)")->required();
  sub->add_option("--data", args->data, "data set name (fashion-mnist, mnist, cifar10, cifar100) or folder");
  sub->add_option("--epochs", args->epochs, "override the config's epochs")->check(kPositive);
  sub->add_option("--subset", args->subset, "use only the first N training and N test images")
      ->check(kNonNegative);
  sub->add_flag("--resume", args->resume, "continue from OUT/model.pt, bit for bit");
  sub->add_flag("--quiet", args->quiet, "no progress bar");
  sub->add_option("--nproc", args->nproc, "start N local worker processes (c10d, Gloo); a torchrun-style "
                  "environment (RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT) joins instead")->check(kPositive);
  sub->add_option("--bucket-mb", args->bucket_mb, "distributed: gradient MiB per all-reduce")
      ->capture_default_str()->check(kPositive);
  sub->add_option("--dist-timeout", args->timeout_s, "distributed: seconds a worker waits for the others")
      ->capture_default_str()->check(kPositive);
  sub->add_option("--device", args->device, "cpu, cuda (distributed: each worker on cuda:LOCAL_RANK) or cuda:N; "
                  "needs a CUDA LibTorch")->capture_default_str();
  sub->add_option("--dtype", args->dtype, "training precision; float64 for reference runs (slower)")
      ->capture_default_str()->check(CLI::IsMember({"float32", "float64"}));
  sub->add_flag("--no-privacy", args->no_privacy,
                "debugging only: allow dp.noise_multiplier 0 (no noise; the checkpoint records epsilon = inf)");
  add_common_options(*sub, args->common);
  sub->callback([args] {
    train::DistributedOptions dopt;
    dopt.device = parse_device(args->device);  // refused before any worker starts
    if (args->nproc > 1 && std::getenv("RANK") == nullptr) return launch_workers(args->nproc);
    dopt.bucket_mb = args->bucket_mb;
    dopt.timeout = std::chrono::seconds(args->timeout_s);
    auto dist = train::Distributed::from_environment(dopt);
    auto common = args->common;
    if (dist && common.threads == 0) {  // the cores shared by this machine's workers
      const auto workers = static_cast<int>(dist->local_world());
      common.threads = std::max(1, static_cast<int>(std::thread::hardware_concurrency()) / workers);
    }
    apply_common_options(common);
    auto config = train::load_config(args->config);
    if (!args->data.empty()) config.data = args->data;
    if (args->epochs > 0) config.epochs = args->epochs;
    if (args->subset >= 0) config.subset = args->subset;
    train::TrainOptions opts;
    opts.out_dir = args->out;
    opts.resume = args->resume;
    opts.progress = !args->quiet;
    opts.no_privacy = args->no_privacy;
    opts.distributed = dist;
    opts.device = dist ? dist->device() : dopt.device;
    opts.dtype = args->dtype == "float64" ? torch::kDouble : torch::kFloat;
    std::signal(SIGINT, on_sigint);
    opts.stop_requested = [] { return g_stop.load(); };
    auto s = train::train(config, opts);
    std::signal(SIGINT, SIG_DFL);
    if (s.interrupted || (dist && dist->rank() != 0)) return;
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
