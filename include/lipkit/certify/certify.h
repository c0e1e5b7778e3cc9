#pragma once
// Certified radii from margins and the model's Lipschitz bound (DESIGN.md, section 2).

#include <torch/nn/modules/container/sequential.h>
#include <torch/types.h>

#include <c10/util/Optional.h>

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
/// whole_model_bound > 0 replaces the layers' bounds by this bound of the whole map (an ordinary
/// network bounded by lipschitz::upper_bound), with the margin / (c L) rule.
/// Rounding: every margin is first reduced by kMarginSlack(dtype) * (1 + max |logit|): 1e-6 for
/// float64 logits (the worst-case float64 error of a length-n dot product is n * 1.1e-16 of the sum
/// of absolute terms, under 1e-11 at the papers' widths, and 1-Lipschitz layers do not amplify
/// errors made earlier, so 100 layers stay far below it); 1e-3 for float32 (a heuristic, about
/// 10^4 unit roundoffs). certify() evaluates in float64.
/// throws: c10::Error when a layer has no bound in `norm` ("refused"), naming the layer.
torch::Tensor certified_radius(torch::nn::Sequential& model, const torch::Tensor& x,
                               const torch::Tensor& y, Norm norm, double whole_model_bound = 0);

/// The rounding slack of certified_radius for logits of this dtype.
double margin_slack(torch::ScalarType dtype);

/// Lipschitz bound of everything but a NormalizedLinear head (the whole model if there is none).
double body_bound(torch::nn::Sequential& model, Norm norm);

/// A certification request: the norm, the radii, and where the Lipschitz bound comes from.
struct CertifyOptions {
  Norm norm = Norm::L2;
  std::vector<double> radii;  ///< empty: default_radii(norm, channels of the data)
  int64_t batch_size = 500;
  /// "": the lipkit layers' own guarantees. "gram" or "exact" (proven), "power" (an estimate): a
  /// whole-model l2 bound computed by lipschitz::upper_bound, for ordinary networks.
  std::string bound;
  int64_t bound_iters = 0;  ///< Gram squarings or power iterations for `bound` (0: default)
  /// Set: the mean-shift statistics of the certified copy are recomputed over this data set first
  /// (reestimate_mean_shift; l_inf-dist and SortNet nets).
  c10::optional<data::Dataset> reestimate;
};

/// The field's standard radii: l2 36/255, 72/255, 108/255, 1; l_inf 0.1, 0.3 (grayscale) or 2/255,
/// 8/255 (colour).
std::vector<double> default_radii(Norm norm, int64_t channels);

/// The certificate certify() issues, for reuse (attack_and_check checks its flips against it): the
/// network evaluated in float64 from the stored weights, in eval mode, with its Lipschitz bound.
/// Building one never changes the caller's model.
class Certificate {
 public:
  /// sample_shape: one input without the batch dimension (for a computed whole-model bound).
  /// throws: c10::Error when the model has no bound in the norm ("refused"), naming the layer.
  Certificate(torch::nn::Sequential& model, const CertifyOptions& options, std::vector<int64_t> sample_shape);
  /// Per point: the certified radius by the margin rule (0 if wrong or tied), as certified_radius.
  torch::Tensor radius(const torch::Tensor& x, const torch::Tensor& y);
  /// Per point: certified at radius r, given radius(x, y): radius > r, or (l_inf) interval bounds.
  torch::Tensor certified_at(const torch::Tensor& x, const torch::Tensor& y, double r, const torch::Tensor& radius);
  /// Per point: certified at l_inf radius r by interval bounds (requires `interval`).
  torch::Tensor interval_at(const torch::Tensor& x, const torch::Tensor& y, double r);
  /// Per point: the float64 network still predicts y strictly (a tie counts as a flip).
  torch::Tensor predicts(const torch::Tensor& x, const torch::Tensor& y);

  torch::nn::Sequential model;  // float64 copy, eval mode
  Norm norm;
  double lipschitz = 1.0;        // body bound used
  double whole_model_bound = 0;  // > 0: a computed bound of the whole map
  bool proven = false;
  std::string bound_source;
  bool pairwise_head = false;
  bool interval = false;  // l_inf, and every layer supports interval bounds
  int64_t reestimated = 0;  // mean-shift layers re-estimated (CertifyOptions::reestimate)
};

struct CertifyResult {
  Norm norm = Norm::L2;
  int64_t total = 0;
  int64_t correct = 0;
  double lipschitz = 1.0;  // body bound used
  bool pairwise_head = false;
  bool proven = false;     // true only when the bound source is proven (not an estimate)
  std::string bound_source;
  int64_t reestimated = 0;  // mean-shift layers re-estimated before certifying
  std::vector<double> radii;
  std::vector<int64_t> certified;  // per radius: correct and radius > r (or, l_inf, by IBP)
  /// l_inf with a model interval_bounds supports: the counts of each rule (certified = either)
  bool interval = false;
  std::vector<int64_t> certified_margin, certified_interval;
  torch::Tensor radius;            // per point (0 if wrong), float64
  double clean_accuracy() const { return total ? double(correct) / total : 0.0; }
  double certified_accuracy(size_t i) const { return total ? double(certified[i]) / total : 0.0; }
};

/// Certifies every point of `data` in batches with a Certificate (float64 copy, eval mode). In
/// l_inf, models made of layers interval bound propagation supports (certify/interval.h) are also
/// certified by IBP at each radius; a point counts when either rule certifies it.
CertifyResult certify(torch::nn::Sequential& model, const data::Dataset& data, const CertifyOptions& options);

/// Parses "36/255", "0.5" or "1" into a radius. throws: c10::Error naming the text.
double parse_radius(const std::string& text);

}  // namespace lipkit::certify
