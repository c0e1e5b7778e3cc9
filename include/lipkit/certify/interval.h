#pragma once
// Interval bound propagation (IBP) through a model, the certification the official l_inf-dist
// net and SortNet code use: the input box [max(x - eps, 0), min(x + eps, 1)] (clipped to the pixel
// range) is pushed layer by layer; the point is certified when the lower bound of its logit beats
// the upper bound of every other logit. It complements margin / 2: clipping and the exact bounds
// of the first distance layer often certify more.

#include <torch/nn/modules/container/sequential.h>
#include <torch/types.h>

#include <string>
#include <utility>

namespace lipkit::certify {

/// Lower and upper bounds of the model's output (eval mode) over the box [lower, upper].
/// Supported: InputNormalization, Flatten, LinfDistLinear and SortNetLinear (p = inf), MeanShift,
/// NegatedDistance, Linear, LinearSpline, ReLU, Tanh, Sigmoid, MaxMin, GroupSort, Identity, Dropout.
/// throws: c10::Error naming the first module it cannot bound.
std::pair<torch::Tensor, torch::Tensor> interval_bounds(torch::nn::Sequential& model,
                                                        const torch::Tensor& lower,
                                                        const torch::Tensor& upper);

/// "" when interval_bounds supports every module of the model, else the reason.
std::string interval_unsupported(torch::nn::Sequential& model);

/// Per point (bool): correct and certified by IBP at l_inf radius eps, pixel range [0, 1]. The
/// bound gap must exceed margin_slack(dtype) * (1 + max |bound|), as for margins.
torch::Tensor interval_certified(torch::nn::Sequential& model, const torch::Tensor& x,
                                 const torch::Tensor& y, double eps);

namespace detail {
/// interval_certified without refreshing the eval caches first: for a Certificate, which refreshed them
/// once when it was built and calls this per batch and radius.
torch::Tensor interval_certified_as_is(torch::nn::Sequential& model, const torch::Tensor& x, const torch::Tensor& y,
                                       double eps);
}  // namespace detail

}  // namespace lipkit::certify
