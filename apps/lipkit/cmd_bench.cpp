#include <cstdio>
#include <memory>
#include <sys/wait.h>
#include <unistd.h>

#include <torch/torch.h>

#include "commands.h"
#include "lipkit/train/throughput.h"

namespace lipkit::cli {

namespace {
struct BenchArgs {
  CommonOptions common;
  std::string presets = "cpl-s,cpl-m,sll-s,sll-m", batches = "64,256";
  int64_t steps = 3;
  double peak_gflops = 170.0;
  bool child = false;  // measure exactly one (preset, batch) and print one raw line
};

// One measurement in a fresh process, so the peak memory of one model does not carry over to the next.
std::string run_child(const BenchArgs& a, const std::string& preset, int64_t batch) {
  char exe[4096];
  const ssize_t len = readlink("/proc/self/exe", exe, sizeof exe - 1);
  TORCH_CHECK(len > 0, "bench: cannot find the lipkit executable");
  exe[len] = '\0';
  const std::string cmd = std::string(exe) + " bench --child --presets " + preset + " --batch-size " +
                          std::to_string(batch) + " --steps " + std::to_string(a.steps) + " --threads " +
                          std::to_string(at::get_num_threads()) + " --peak-gflops " + std::to_string(a.peak_gflops);
  FILE* pipe = popen(cmd.c_str(), "r");
  TORCH_CHECK(pipe, "bench: cannot start ", cmd);
  std::string out;
  char buf[512];
  while (fgets(buf, sizeof buf, pipe)) out += buf;
  const int status = pclose(pipe);
  if (status == -1 || !WIFEXITED(status) || WEXITSTATUS(status) != 0)  // a crash or OOM: not the user's input
    throw ExitError{kExitInternal, "bench: measuring " + preset + " at batch " + std::to_string(batch) + " failed (" +
                                       (status != -1 && WIFEXITED(status) ? "exit " + std::to_string(WEXITSTATUS(status))
                                                                          : std::string("killed")) + "): " + out};
  return out;
}

std::vector<int64_t> parse_batches(const std::string& text) {
  std::vector<int64_t> out;
  for (const auto& item : split_commas(text)) {
    size_t pos = 0;
    int64_t v = 0;
    try {
      v = std::stoll(item, &pos);
    } catch (const std::exception&) {
      pos = 0;
    }
    TORCH_CHECK(!item.empty() && pos == item.size() && v > 0, "--batch-size: each batch size must be a positive "
                "integer, got '", item, "'");
    out.push_back(v);
  }
  return out;
}

void print_row(const std::string& preset, int64_t batch, const train::PresetBenchmark& b, double peak) {
  std::printf("%-8s %5ld %10.1f %10.1f %9.0f %9.0f %10.1f %10.1f %7.2fx %7.2fx %6.1f%%\n", preset.c_str(),
              (long)batch, b.ours.train_images_per_second, b.ours.infer_images_per_second, b.ours.train_peak_rss_mb,
              b.ours.infer_peak_rss_mb, b.plain.train_images_per_second, b.plain.infer_images_per_second,
              b.train_ratio, b.infer_ratio, 100 * b.gflops / peak);
}
}  // namespace

void add_bench_command(CLI::App& app) {
  auto a = std::make_shared<BenchArgs>();
  auto* sub = app.add_subcommand(
      "bench", "training-step and inference throughput of presets on random 3x32x32 data, vs a plain net");
  sub->add_option("--presets", a->presets, "comma-separated model presets")->capture_default_str();
  sub->add_option("--batch-size", a->batches, "comma-separated batch sizes")->capture_default_str();
  sub->add_option("--steps", a->steps, "timed steps per measurement")->capture_default_str()->check(kPositive);
  sub->add_option("--peak-gflops", a->peak_gflops, "machine peak for the fraction-of-peak column (sgemm here)")
      ->capture_default_str()->check(kPositive);
  sub->add_flag("--child", a->child, "internal: one measurement, raw output")->group("");
  add_common_options(*sub, a->common);
  sub->callback([a] {
    apply_common_options(a->common);
    const auto batches = parse_batches(a->batches);
    std::vector<std::string> presets;
    for (const auto& name : split_commas(a->presets)) {
      models::model_preset(name);  // fail early on a typo
      presets.push_back(name);
    }
    if (a->child) {
      print_row(presets.at(0), batches.at(0), train::benchmark_preset(presets[0], batches[0], a->steps), a->peak_gflops);
      return;
    }
    std::printf("%d threads, %ld timed steps after 2 warm-up steps, random 3x32x32 inputs, 10 classes, "
                "one process per row\n", at::get_num_threads(), (long)a->steps);
    std::printf("%-8s %5s %10s %10s %9s %9s %10s %10s %8s %8s %7s\n", "preset", "batch", "train i/s", "infer i/s",
                "train MB", "infer MB", "plain tr", "plain inf", "tr ratio", "inf ratio", "%peak");
    for (const auto& name : presets)
      for (int64_t b : batches) {
        std::printf("%s", run_child(*a, name, b).c_str());
        std::fflush(stdout);
      }
    std::printf("tr/inf ratio: lipkit time / plain-net time (plain: same weight shapes, no constraints);\n"
                "%%peak: 3 x forward matrix-product FLOPs per image x train i/s / --peak-gflops\n");
  });
}

}  // namespace lipkit::cli
