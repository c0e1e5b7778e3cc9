#pragma once
// Deployment: a model as a TorchScript archive with its weights already normalised (every proven
// bound folded in: no power iteration, no Gram matrix, no projection at inference) and its
// certificate stored as attributes, loadable with torch.jit.load (Python) or torch::jit::load (C++).

#include <torch/nn/modules/container/sequential.h>

#include <nlohmann/json.hpp>

#include <string>
#include <vector>

#include "lipkit/layers/lipschitz_layer.h"

namespace lipkit::deploy {

struct ExportOptions {
  /// The input of one example, (C, H, W) or (F): conv layers fold their bound at this size, and the
  /// archive checks inputs against it.
  std::vector<int64_t> sample_shape;
  /// "": l2 unless the model has a bound only in l_inf (l_inf-distance and SortNet nets).
  std::string norm;
  /// Stock PyTorch operators only (no lipkit operators needed to load it); layers without such a
  /// form (SortNetLinear, LinearSpline and the layers that contain one) are refused by name.
  bool vanilla = false;
};

/// What the archive's attributes say (the certificate lipkit certify issues for the same model).
struct ExportedCertificate {
  Norm norm = Norm::L2;
  double lipschitz_bound = 1.0;  ///< of the body (everything before a NormalizedLinear head), or the model
  std::string rule;              ///< "lln-pairwise" (NormalizedLinear head) or "margin"
  std::string bound_source;      ///< "layers" or "gram" (a computed whole-model bound)
  double margin_slack = 0;       ///< subtracted from every margin (x (1 + max |logit|)), as certify does
  bool uses_lipkit_operators = false;
};

/// The input shape a checkpoint's metadata records: "input_shape", else from its preset spec ((F) for
/// the monotonic family, (C, H, W) otherwise); empty when it records none.
std::vector<int64_t> recorded_input_shape(const nlohmann::json& meta);

/// Writes the eval-mode model to `path` atomically (temp file + rename). Attributes of the archive:
/// lipschitz_bound (float), norm (str), rule (str), pairwise (Tensor (classes, classes), ||w_i - w_j||
/// of the head in the norm's dual sense; empty for the margin rule), margin_slack (float),
/// input_shape (int[]), format (str). The model is not changed.
/// throws: c10::Error naming the layer that has no export (or no stock-op form when vanilla), or
/// when the model has no proven bound in the norm.
ExportedCertificate export_torchscript(torch::nn::Sequential& model, const std::string& path,
                                       const ExportOptions& options);

}  // namespace lipkit::deploy
