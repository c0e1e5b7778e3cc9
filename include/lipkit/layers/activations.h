#pragma once
// Gradient-norm-preserving activations (Anil, Lucas, Grosse, "Sorting out Lipschitz function
// approximation", ICML 2019): sort the values inside each group of consecutive channels.
// A sort is a piecewise permutation, so it is 1-Lipschitz in every l_p norm, l2 and l_inf included.

#include <torch/arg.h>
#include <torch/nn/cloneable.h>
#include <torch/nn/pimpl.h>
#include <torch/types.h>

#include "lipkit/layers/lipschitz_layer.h"

namespace lipkit {

namespace functional {
/// Sorts each group of `group_size` consecutive entries of dim 1 in decreasing order.
torch::Tensor group_sort(const torch::Tensor& x, int64_t group_size,
                         const char* layer = "GroupSort");
}  // namespace functional

struct GroupSortOptions {
  /* implicit */ GroupSortOptions(int64_t group_size);
  /// entries per group along dim 1; must divide the channel count. 2 is MaxMin.
  TORCH_ARG(int64_t, group_size);
};

/// (N, C, ...) -> (N, C, ...), C divisible by group_size.
class GroupSortImpl : public torch::nn::Cloneable<GroupSortImpl>, public LipschitzLayer {
 public:
  explicit GroupSortImpl(const GroupSortOptions& options_);
  void reset() override {}
  void pretty_print(std::ostream& stream) const override;
  torch::Tensor forward(const torch::Tensor& input);
  double lipschitz_bound(Norm) const override { return 1.0; }
  GroupSortOptions options;
};
TORCH_MODULE(GroupSort);

/// MaxMin = GroupSort(2): each pair (a, b) of consecutive channels becomes (max(a, b), min(a, b)).
class MaxMinImpl : public torch::nn::Cloneable<MaxMinImpl>, public LipschitzLayer {
 public:
  MaxMinImpl() = default;
  void reset() override {}
  void pretty_print(std::ostream& stream) const override;
  torch::Tensor forward(const torch::Tensor& input);
  double lipschitz_bound(Norm) const override { return 1.0; }
};
TORCH_MODULE(MaxMin);

}  // namespace lipkit
