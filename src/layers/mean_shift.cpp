#include "lipkit/layers/mean_shift.h"

#include <torch/torch.h>

namespace lipkit {

MeanShiftOptions::MeanShiftOptions(int64_t features) : features_(features) {}

MeanShiftImpl::MeanShiftImpl(const MeanShiftOptions& options_) : options(options_) { reset(); }

void MeanShiftImpl::reset() {
  TORCH_CHECK(options.features() > 0, "lipkit::MeanShift: features must be positive, got ", options.features());
  TORCH_CHECK(options.momentum() > 0 && options.momentum() <= 1,
              "lipkit::MeanShift: momentum must be in (0, 1], got ", options.momentum());
  running_mean = register_buffer("running_mean", torch::zeros({options.features()}));
}

void MeanShiftImpl::pretty_print(std::ostream& stream) const {
  stream << "lipkit::MeanShift(features=" << options.features() << ", momentum=" << options.momentum() << ")";
}

torch::Tensor MeanShiftImpl::forward(const torch::Tensor& input) {
  detail::check_input(input, "MeanShift", -1, options.features(), running_mean, "(N, features, ...)");
  std::vector<int64_t> shape(input.dim(), 1);
  shape[1] = options.features();
  if (!is_training()) return input - running_mean.view(shape);
  std::vector<int64_t> dims = {0};
  for (int64_t d = 2; d < input.dim(); ++d) dims.push_back(d);
  auto mean = input.mean(dims);
  if (synchronize_mean) mean = synchronize_mean(mean);
  {
    torch::NoGradGuard no_grad;
    const double n = static_cast<double>(input.numel() / options.features());
    const double rate = averaging_ ? n / (seen_ + n) : options.momentum();
    seen_ += n;
    running_mean.add_((mean.detach() - running_mean) * rate);
  }
  return input - mean.view(shape);
}

void MeanShiftImpl::begin_average() {
  averaging_ = true;
  seen_ = 0;
}

void MeanShiftImpl::end_average() { averaging_ = false; }

}  // namespace lipkit
