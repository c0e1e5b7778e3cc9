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

/// The schedules of l_inf-distance training (SortNet / l_inf-dist net official code), in epochs.
struct DistanceScheduleSpec {
  /// p grows geometrically from p_start to p_end over epochs [p_epochs_begin, p_epochs_end],
  /// then becomes inf (when p_end >= 100); an empty phase means p = inf from the start.
  double p_start = 8.0, p_end = 1000.0;
  double p_epochs_begin = 0.0, p_epochs_end = 0.0;
  /// the hinge's eps ramps from 0 to loss.eps over [eps_epochs_begin, eps_epochs_end]
  double eps_epochs_begin = 0.0, eps_epochs_end = 0.0;
  /// 0: linear ramp; r in (0, 1): quartic up to r, then linear, joined C^1 (official "smooth")
  double eps_smooth = 0.0;
};

/// Progress in [0, 1] of the phase [begin, end] (epochs) at iteration `step` (1 if the phase is empty).
double phase_progress(double begin_epoch, double end_epoch, int64_t step, int64_t steps_per_epoch);
/// p at progress rho of the p phase, rounded to an integer (inf once the phase is over).
double distance_p(const DistanceScheduleSpec& spec, double rho);
/// Fraction of the final eps at progress rho of the eps phase.
double eps_fraction(double rho, double smooth);

/// Learning rate at iteration `step` (0-based) of `total` iterations.
double learning_rate(const ScheduleSpec& spec, double base_lr, int64_t step, int64_t total);

}  // namespace lipkit::train
