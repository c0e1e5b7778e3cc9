#include <cstdio>
#include <memory>
#include <sstream>

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
};

std::vector<std::string> split(const std::string& text) {
  std::vector<std::string> out;
  std::stringstream s(text);
  std::string item;
  while (std::getline(s, item, ',')) if (!item.empty()) out.push_back(item);
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
  add_common_options(*sub, a->common);
  sub->callback([a] {
    apply_common_options(a->common);
    std::printf("%d threads, %ld timed steps, random 3x32x32 inputs, 10 classes\n", at::get_num_threads(),
                (long)a->steps);
    std::printf("%-8s %5s %10s %10s %9s %9s %10s %10s %8s %8s %7s\n", "preset", "batch", "train i/s",
                "infer i/s", "train MB", "infer MB", "plain tr", "plain inf", "tr ratio", "inf ratio", "%peak");
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
    std::printf("tr/inf ratio: plain i/s divided by lipkit i/s (lipkit costs that many times the plain net)\n");
  });
}

}  // namespace lipkit::cli
