#include "lipkit/layers/activations.h"

#include <torch/torch.h>

namespace lipkit {

namespace functional {
torch::Tensor group_sort(const torch::Tensor& x, int64_t group_size, const char* layer) {
  TORCH_CHECK(x.dim() >= 2, "lipkit::", layer, ": expected input of shape (N, C, ...), got ",
              x.sizes());
  TORCH_CHECK(group_size >= 1 && x.size(1) % group_size == 0, "lipkit::", layer, ": channel count ",
              x.size(1), " (dim 1 of input ", x.sizes(), ") must be divisible by group_size ",
              group_size);
  if (group_size == 1) return x;
  std::vector<int64_t> grouped = {x.size(0), x.size(1) / group_size, group_size};
  for (int64_t d = 2; d < x.dim(); ++d) grouped.push_back(x.size(d));
  auto g = x.reshape(grouped);
  torch::Tensor sorted;
  if (group_size == 2) {  // max/min is several times faster than a general sort
    auto a = g.select(2, 0), b = g.select(2, 1);
    sorted = torch::stack({torch::maximum(a, b), torch::minimum(a, b)}, 2);
  } else {
    sorted = std::get<0>(g.sort(2, /*descending=*/true));
  }
  return sorted.reshape(x.sizes());
}
}  // namespace functional

GroupSortOptions::GroupSortOptions(int64_t group_size) : group_size_(group_size) {}

GroupSortImpl::GroupSortImpl(const GroupSortOptions& options_) : options(options_) {
  TORCH_CHECK(options.group_size() >= 1, "lipkit::GroupSort: group_size must be >= 1, got ",
              options.group_size());
}

void GroupSortImpl::pretty_print(std::ostream& stream) const {
  stream << "lipkit::GroupSort(group_size=" << options.group_size() << ")";
}

torch::Tensor GroupSortImpl::forward(const torch::Tensor& input) {
  return functional::group_sort(input, options.group_size());
}

void MaxMinImpl::pretty_print(std::ostream& stream) const { stream << "lipkit::MaxMin()"; }

torch::Tensor MaxMinImpl::forward(const torch::Tensor& input) {
  return functional::group_sort(input, 2, "MaxMin");
}

}  // namespace lipkit
