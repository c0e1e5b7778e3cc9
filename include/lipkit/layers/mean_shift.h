#pragma once
// Mean-shift normalization of l_inf-distance nets: subtract a per-feature mean, no scaling (a
// translation keeps every Lipschitz constant). Train mode: the batch mean, with a running mean
// kept (momentum 0.1); eval: the running mean. Before certification the running means are
// recomputed as exact averages over the training set (certify::reestimate_mean_shift).

#include <torch/arg.h>
#include <torch/nn/cloneable.h>
#include <torch/nn/pimpl.h>
#include <torch/types.h>

#include "lipkit/layers/lipschitz_layer.h"

#include <functional>

namespace lipkit {

struct MeanShiftOptions {
  /* implicit */ MeanShiftOptions(int64_t features);
  TORCH_ARG(int64_t, features);
  TORCH_ARG(double, momentum) = 0.1;
};

/// (N, features, ...) -> same shape, x - mean per feature (dim 1).
class MeanShiftImpl : public torch::nn::Cloneable<MeanShiftImpl>, public LipschitzLayer {
 public:
  explicit MeanShiftImpl(const MeanShiftOptions& options_);
  void reset() override;
  void pretty_print(std::ostream& stream) const override;
  torch::Tensor forward(const torch::Tensor& input);
  double lipschitz_bound(Norm) const override { return 1.0; }
  /// Starts an exact average: running_mean becomes the mean of every sample seen from now on (in
  /// train mode) until end_average().
  void begin_average();
  void end_average();
  /// Distributed training: maps this process's batch mean (features) to the global batch's, with
  /// its backward (train::Distributed::synchronized_mean), so every rank normalises as one process
  /// would. Empty: the local mean. Used in training mode only.
  std::function<torch::Tensor(const torch::Tensor&)> synchronize_mean;

  MeanShiftOptions options;
  torch::Tensor running_mean;

 private:
  bool averaging_ = false;
  double seen_ = 0;
};
TORCH_MODULE(MeanShift);

}  // namespace lipkit
