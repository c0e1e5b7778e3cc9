#pragma once
// Shared by the commands that read a checkpoint: its test data, and the certificate options that
// certify and attack both take (so attack checks exactly the certificate certify prints).

#include <CLI/CLI.hpp>

#include "lipkit/certify/certify.h"
#include "lipkit/data/dataset.h"
#include "lipkit/train/checkpoint.h"

namespace lipkit::cli {

/// The test split of --data, or of the data set the checkpoint was trained on. throws for a model
/// trained on a table: its guarantee is monotonicity (check-monotonic), not robustness on images.
inline data::Dataset load_test_data(const std::string& data_arg, const train::EvalModel& m, int64_t subset) {
  TORCH_CHECK(!m.meta.contains("table"), "this checkpoint is a model trained on a table (", m.data,
              "): certify and attack measure robustness on an image data set; a tabular model's guarantee is ",
              "monotonicity: lipkit check-monotonic --checkpoint ...; predictions: lipkit predict");
  return data::load_dataset(data_arg.empty() ? m.data : data_arg, data::Split::Test).head(subset);
}

struct CertificateArgs {
  std::string norm = "l2", bound;
  int64_t bound_iters = 0, batch_size = 500;
  bool reestimate = false;
};

inline void add_certificate_options(CLI::App& sub, CertificateArgs& a) {
  sub.add_option("--norm", a.norm, "l2 or linf")->capture_default_str();
  sub.add_option("--bound", a.bound,
                 "certify by a computed whole-model bound: gram (proven), exact (proven), power (estimate); "
                 "default: the lipkit layers' own guarantees");
  sub.add_option("--iters", a.bound_iters, "Gram squarings or power iterations for --bound (0: default)")
      ->check(kNonNegative);
  sub.add_option("--batch-size", a.batch_size, "evaluation batch size")->capture_default_str()->check(kPositive);
  sub.add_flag("--reestimate", a.reestimate,
               "recompute mean-shift statistics over the training set first (l_inf-dist / SortNet; "
               "lipkit train already does this after its last epoch)");
}

/// The certificate request; --reestimate loads the training split of the same data set.
inline certify::CertifyOptions certificate_options(const CertificateArgs& a, const std::string& data_arg,
                                                   const train::EvalModel& m) {
  certify::CertifyOptions o;
  o.norm = parse_norm(a.norm);
  o.bound = a.bound;
  o.bound_iters = a.bound_iters;
  o.batch_size = a.batch_size;
  if (a.reestimate) o.reestimate = data::load_dataset(data_arg.empty() ? m.data : data_arg, data::Split::Train);
  return o;
}

}  // namespace lipkit::cli
