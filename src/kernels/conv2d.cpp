#include "lipkit/kernels/conv2d.h"

#include <torch/torch.h>

#include "kernels/cpu/conv2d_kernel.h"
#include "lipkit/linalg/conv_adjoint.h"

namespace lipkit::kernels {

namespace {
bool records_gradient(std::initializer_list<torch::Tensor> tensors) {
  if (!torch::GradMode::is_enabled()) return false;
  for (const auto& t : tensors)
    if (t.defined() && t.requires_grad()) return true;
  return false;
}

// Whether the direct kernel runs: CPU float64, a square kernel, no gradient recorded.
bool takes_direct(const torch::Tensor& x, const torch::Tensor& w, std::initializer_list<torch::Tensor> others) {
  bool ok = x.device().is_cpu() && x.scalar_type() == torch::kDouble && x.dim() == 4 && w.device().is_cpu() &&
            w.scalar_type() == torch::kDouble && w.dim() == 4 && w.size(2) == w.size(3) && w.size(1) == x.size(1);
  for (const auto& t : others)
    ok = ok && (!t.defined() || (t.device().is_cpu() && t.scalar_type() == torch::kDouble));
  return ok && !records_gradient(others) && !records_gradient({x, w});
}

// The checks conv2d_direct and conv2d_residual share: a bias per output channel, an output to make.
void check_bias_and_padding(const char* op, const torch::Tensor& x, const torch::Tensor& w, const torch::Tensor& bias,
                            int64_t padding) {
  TORCH_CHECK(!bias.defined() || (bias.dim() == 1 && bias.size(0) == w.size(0)), op, ": bias ", bias.sizes(),
              " does not match ", w.size(0), " output channels");
  TORCH_CHECK(padding >= 0 && x.size(2) + 2 * padding >= w.size(2) && x.size(3) + 2 * padding >= w.size(3), op,
              ": padding ", padding, " leaves no output for input ", x.sizes(), " and kernel ", w.sizes());
}

// The per-channel values of a 0-d or (Co) tensor, contiguous float64.
torch::Tensor per_channel(const torch::Tensor& t, int64_t co) {
  return t.dim() == 0 ? t.expand({co}).contiguous() : t.contiguous();
}
}  // namespace

torch::Tensor conv2d_direct(const torch::Tensor& x, const torch::Tensor& w, const torch::Tensor& bias,
                            int64_t padding) {
  TORCH_CHECK(x.dim() == 4 && w.dim() == 4 && w.size(1) == x.size(1) && w.size(2) == w.size(3),
              "conv2d_direct: expected x (N, C, H, W) and a square kernel (Co, C, k, k), got x ", x.sizes(),
              " and kernel ", w.sizes());
  TORCH_CHECK(x.device().is_cpu() && x.scalar_type() == torch::kDouble && w.scalar_type() == torch::kDouble &&
                  w.device().is_cpu() && (!bias.defined() || (bias.scalar_type() == torch::kDouble && bias.device().is_cpu())),
              "conv2d_direct: CPU float64 tensors only, got x ", x.scalar_type(), " on ", x.device());
  check_bias_and_padding("conv2d_direct", x, w, bias, padding);
  TORCH_CHECK(!records_gradient({x, w, bias}), "conv2d_direct: forward only, but a gradient is being recorded "
              "(use kernels::conv2d, which falls back to LibTorch)");
  const auto b = bias.defined() ? bias.contiguous() : bias;
  cpu::ConvEpilogue e;
  e.bias = b.defined() ? b.data_ptr<double>() : nullptr;
  return cpu::conv2d_direct_forward(x.contiguous(), w.contiguous(), padding, e);
}

torch::Tensor conv2d(const torch::Tensor& x, const torch::Tensor& w, const torch::Tensor& bias, int64_t padding) {
  return takes_direct(x, w, {bias}) ? conv2d_direct(x, w, bias, padding) : torch::conv2d(x, w, bias, 1, padding);
}

torch::Tensor conv2d_adjoint(const torch::Tensor& y, const torch::Tensor& w, int64_t padding) {
  const auto [flipped, flipped_padding] = linalg::adjoint_kernel(w, padding);
  return conv2d(y, flipped, {}, flipped_padding);
}

torch::Tensor conv2d_residual(const torch::Tensor& x, const torch::Tensor& w, const torch::Tensor& bias,
                              int64_t padding, const torch::Tensor& scale, double alpha) {
  TORCH_CHECK(alpha == 1.0 || alpha == 2.0, "conv2d_residual: alpha must be 1 or 2 (exact), got ", alpha);
  TORCH_CHECK(w.dim() == 4 && (scale.dim() == 0 || (scale.dim() == 1 && scale.size(0) == w.size(0))),
              "conv2d_residual: scale ", scale.sizes(), " is neither one value nor one per output channel of the "
              "kernel ", w.sizes());
  if (!takes_direct(x, w, {bias, scale})) {
    auto r = torch::relu(torch::conv2d(x, w, bias, 1, padding)) * (scale.dim() == 1 ? scale.view({1, -1, 1, 1}) : scale);
    auto update = conv2d_adjoint(r, w, padding);
    return x - (alpha == 1.0 ? update : alpha * update);
  }
  torch::NoGradGuard no_grad;
  const auto [flipped, flipped_padding] = linalg::adjoint_kernel(w, padding);  // checks 0 <= padding < k
  check_bias_and_padding("conv2d_residual", x, w, bias, padding);
  const auto b = bias.defined() ? bias.contiguous() : bias, s = per_channel(scale, w.size(0));
  cpu::ConvEpilogue hidden;
  hidden.bias = b.defined() ? b.data_ptr<double>() : nullptr;
  hidden.relu = true;
  hidden.scale = s.data_ptr<double>();
  // the adjoint with padding k - 1 - p maps the hidden map back to x's shape, whatever p
  return cpu::conv2d_residual_forward(x.contiguous(), w.contiguous(), flipped.contiguous(), padding, flipped_padding,
                                      hidden, alpha);
}

}  // namespace lipkit::kernels
