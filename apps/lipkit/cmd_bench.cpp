#include <cstdio>
#include <memory>
#include <sstream>

#include <torch/torch.h>
#include <unistd.h>

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
std::string run_child(const BenchArgs& a, const std::string& preset, const std::string& batch) {
  char exe[4096];
  const ssize_t len = readlink("/proc/self/exe", exe, sizeof exe - 1);
  TORCH_CHECK(len > 0, "bench: cannot find the lipkit executable");
  exe[len] = '\0';
  const std::string cmd = std::string(exe) + " bench --child --presets " + preset + " --batch " + batch +
                          " --steps " + std::to_string(a.steps) + " --threads " +
                          std::to_string(at::get_num_threads());
  std::unique_ptr<FILE, int (*)(FILE*)> pipe(popen(cmd.c_str(), "r"), pclose);
  TORCH_CHECK(pipe, "bench: cannot start ", cmd);
  std::string out;
  char buf[512];
  while (fgets(buf, sizeof buf, pipe.get())) out += buf;
  return out;
}

std::vector<std::string> split(const std::string& text) {
  std::vector<std::string> out;
  for (auto& item : split_commas(text))
    if (!item.empty()) out.push_back(item);
  return out;
}
}  // namespace

void add_bench_command(CLI::App& app) {
  auto a = std::make_shared<BenchArgs>();
  auto* sub = app.add_subcommand(
      "bench", "training-step and inference throughput of presets on random 3x32x32 data, vs a plain net");
  sub->add_option("--presets", a->presets, "comma-separated model presets")->capture_default_str();
  sub->add_option("--batch", a->batches, "comma-separated batch sizes")->capture_default_str();
  sub->add_option("--steps", a->steps, "timed steps per measurement")->capture_default_str()->check(CLI::PositiveNumber);
  sub->add_option("--peak-gflops", a->peak_gflops, "machine peak for the fraction-of-peak column (sgemm here)")
      ->capture_default_str();
  sub->add_flag("--child", a->child, "internal: one measurement, raw output")->group("");
  add_common_options(*sub, a->common);
  sub->callback([a] {
    apply_common_options(a->common);
    if (!a->child) {
      for (const auto& name : split(a->presets)) models::model_preset(name);  // fail early on a typo
      std::printf("%d threads, %ld timed steps after 2 warm-up steps, random 3x32x32 inputs, 10 classes, "
                  "one process per row\n", at::get_num_threads(), (long)a->steps);
      std::printf("%-8s %5s %10s %10s %9s %9s %10s %10s %8s %8s %7s\n", "preset", "batch", "train i/s",
                  "infer i/s", "train MB", "infer MB", "plain tr", "plain inf", "tr ratio", "inf ratio", "%peak");
      for (const auto& name : split(a->presets)) {
        for (const auto& b : split(a->batches)) {
          std::printf("%s", run_child(*a, name, b).c_str());
          std::fflush(stdout);
        }
      }
      std::printf("tr/inf ratio: lipkit time / plain-net time (plain: same weight shapes, no constraints);\n"
                  "%%peak: 3 x forward matrix-product FLOPs per image x train i/s / --peak-gflops\n");
      return;
    }
    for (const auto& name : split(a->presets)) {
      auto spec = models::model_preset(name);
      spec.in_channels = 3;
      spec.image_size = 32;
      spec.num_classes = 10;
      for (const auto& b : split(a->batches)) {
        const int64_t batch = std::stoll(b);
        torch::manual_seed(0);
        auto model = models::build_model(spec);
        auto ours = train::measure_throughput(model, {batch, 3, 32, 32}, a->steps);
        auto plain = train::plain_counterpart(spec);
        auto base = train::measure_throughput(plain, {batch, 3, 32, 32}, a->steps);
        // training ~ 3 forward passes of matrix products (forward, input grad, weight grad)
        const double achieved = 3 * train::forward_flops(spec) * ours.train_images_per_second / 1e9;
        std::printf("%-8s %5ld %10.1f %10.1f %9.0f %9.0f %10.1f %10.1f %7.2fx %7.2fx %6.1f%%\n", name.c_str(),
                    (long)batch, ours.train_images_per_second, ours.infer_images_per_second,
                    ours.train_peak_rss_mb, ours.infer_peak_rss_mb, base.train_images_per_second,
                    base.infer_images_per_second, base.train_images_per_second / ours.train_images_per_second,
                    base.infer_images_per_second / ours.infer_images_per_second,
                    100 * achieved / a->peak_gflops);
        std::fflush(stdout);
      }
    }
  });
}

}  // namespace lipkit::cli
