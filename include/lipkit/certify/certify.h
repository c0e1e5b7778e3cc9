#pragma once
// Certified radii from margins and the model's Lipschitz bound (DESIGN.md, section 2).

#include <torch/nn/modules/container/sequential.h>
#include <torch/types.h>

#include <string>
#include <vector>

#include "lipkit/data/dataset.h"
#include "lipkit/layers/lipschitz_layer.h"

namespace lipkit::certify {

/// Per-point certified radius of `model` (eval mode) at inputs x with labels y: 0 where the
/// prediction is wrong, otherwise
///   with a NormalizedLinear head:  min_{j != y} (f_y - f_j) / (L_body * K_yj),
///     K_yj = ||w_y - w_j||_2 (l2) or ||w_y - w_j||_1 (l_inf), L_body the bound of the rest;
///   otherwise:  (f_y - max_{j != y} f_j) / (c L),  c = sqrt(2) (l2) or 2 (l_inf).
/// A point is certified at radius r iff its radius is > r.
/// throws: c10::Error when a layer has no bound in `norm` ("refused"), naming the layer.
torch::Tensor certified_radius(torch::nn::Sequential& model, const torch::Tensor& x,
                               const torch::Tensor& y, Norm norm);

/// Lipschitz bound of everything but a NormalizedLinear head (the whole model if there is none).
double body_lipschitz(torch::nn::Sequential& model, Norm norm);

struct CertifyResult {
  Norm norm = Norm::L2;
  int64_t total = 0;
  int64_t correct = 0;
  double lipschitz = 1.0;  // body bound used
  bool pairwise_head = false;
  std::vector<double> radii;
  std::vector<int64_t> certified;  // per radius: correct and radius > r
  torch::Tensor radius;            // per point (0 if wrong), float64
  double clean_accuracy() const { return total ? double(correct) / total : 0.0; }
  double certified_accuracy(size_t i) const { return total ? double(certified[i]) / total : 0.0; }
};

/// Certifies every point of `data` in batches (model switched to eval mode).
CertifyResult certify(torch::nn::Sequential& model, const data::Dataset& data, Norm norm,
                      const std::vector<double>& radii, int64_t batch_size = 500);

/// Parses "36/255", "0.5" or "1" into a radius. throws: c10::Error naming the text.
double parse_radius(const std::string& text);

}  // namespace lipkit::certify
