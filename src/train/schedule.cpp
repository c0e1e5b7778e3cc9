#include "lipkit/train/schedule.h"

#include <c10/util/Exception.h>

#include <algorithm>
#include <cmath>
#include <limits>

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

double phase_progress(double begin_epoch, double end_epoch, int64_t step, int64_t steps_per_epoch) {
  if (end_epoch <= begin_epoch) return 1.0;
  const double b = begin_epoch * steps_per_epoch, e = end_epoch * steps_per_epoch;
  return std::clamp((double(step) - b) / (e - b), 0.0, 1.0);
}

double distance_p(const DistanceScheduleSpec& spec, double rho) {
  if (rho >= 1.0 && spec.p_end >= 100) return std::numeric_limits<double>::infinity();
  // rounded to an integer: the kernels raise to integer powers exactly and fast (the continuous
  // schedule moves by under 7% per step of 1 from p = 8 on)
  return std::round(spec.p_start * std::exp(std::log(spec.p_end / spec.p_start) * std::clamp(rho, 0.0, 1.0)));
}

double eps_fraction(double rho, double r) {
  rho = std::clamp(rho, 0.0, 1.0);
  if (r <= 0) return rho;
  const double k = 1.0 / ((4 - 3 * r) * r * r * r);
  if (rho < r) return k * std::pow(rho, 4);
  return (1 - k * std::pow(r, 4)) / (1 - r) * (rho - 1) + 1;
}

}  // namespace lipkit::train
