#pragma once
// Learning-rate schedules, evaluated per iteration.

#include <cstdint>
#include <string>

namespace lipkit::train {

struct ScheduleSpec {
  /// triangle: 0 -> lr at 40%, lr/20 at 80%, 0 at the end (CPL, SLL); cosine: lr -> 0;
  /// constant: lr.
  std::string name = "triangle";
  /// fraction of the steps with a linear warm-up from 0 (cosine and constant only)
  double warmup = 0.0;
};

/// Learning rate at iteration `step` (0-based) of `total` iterations.
double learning_rate(const ScheduleSpec& spec, double base_lr, int64_t step, int64_t total);

}  // namespace lipkit::train
