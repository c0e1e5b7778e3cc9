#include "lipkit/train/schedule.h"

#include <c10/util/Exception.h>

#include <algorithm>
#include <cmath>

namespace lipkit::train {

double learning_rate(const ScheduleSpec& spec, double base_lr, int64_t step, int64_t total) {
  const double t = total > 0 ? std::clamp(double(step) / double(total), 0.0, 1.0) : 1.0;
  if (spec.name == "triangle") {
    if (t < 0.4) return base_lr * t / 0.4;
    if (t < 0.8) return base_lr + (base_lr / 20 - base_lr) * (t - 0.4) / 0.4;
    return base_lr / 20 * (1.0 - t) / 0.2;
  }
  const double w = std::clamp(spec.warmup, 0.0, 1.0);
  if (w > 0 && t < w) return base_lr * t / w;
  if (spec.name == "cosine") {
    const double u = w < 1 ? (t - w) / (1 - w) : 1.0;
    return base_lr * 0.5 * (1 + std::cos(M_PI * u));
  }
  if (spec.name == "constant") return base_lr;
  TORCH_CHECK(false, "schedule.name must be triangle, cosine or constant, got '", spec.name, "'");
}

}  // namespace lipkit::train
