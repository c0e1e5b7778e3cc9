#pragma once
// Renyi differential privacy of the Poisson-subsampled Gaussian mechanism (Mironov, Talwar, Zhang,
// "Renyi Differential Privacy of the Sampled Gaussian Mechanism", 2019), composed over steps, and
// converted to (epsilon, delta). Add/remove-one neighbouring; the mechanism adds N(0, sigma^2 Delta^2)
// to a sum of per-example terms of norm <= Delta, each example included with probability q.

#include <nlohmann/json.hpp>

#include <cstdint>
#include <vector>

namespace lipkit::dp {

/// The RDP of one step at order alpha > 1 (integer: the binomial sum; fractional: the two-series
/// form of Mironov et al. section 3.3). q = 0 gives 0; q = 1 the plain Gaussian alpha / (2 sigma^2).
/// throws: c10::Error naming the value when q is outside [0, 1], sigma <= 0 or alpha <= 1.
double rdp_subsampled_gaussian(double q, double sigma, double alpha);

/// The orders searched by default: 1.25 to 10 in steps of 0.25 (fractional), then 11 to 64 and
/// 80, 96, 128, 256, 512.
std::vector<double> default_orders();

/// The conversion from RDP to (epsilon, delta): classic, eps = rdp + log(1/delta) / (alpha - 1)
/// (Mironov 2017), or improved, eps = rdp + log((alpha - 1) / alpha) - (log delta + log alpha) /
/// (alpha - 1) (Balle et al. 2020), the smaller of the two at every order.
enum class Conversion { Classic, Improved };

struct Epsilon {
  double epsilon = 0;
  double order = 0;  // the order where it is attained
};

/// The smallest epsilon over `orders` for the given RDP curve (rdp[i] at orders[i]).
Epsilon epsilon_from_rdp(const std::vector<double>& orders, const std::vector<double>& rdp, double delta,
                         Conversion conversion = Conversion::Improved);

/// Composition over steps of the same (q, sigma) mechanism, and its (epsilon, delta).
class RdpAccountant {
 public:
  explicit RdpAccountant(std::vector<double> orders = default_orders());
  void step(double q, double sigma, int64_t count = 1);
  /// The epsilon spent if `count` more steps of (q, sigma) were taken (does not change the state).
  Epsilon epsilon_after(double q, double sigma, int64_t count, double delta) const;
  Epsilon epsilon(double delta, Conversion conversion = Conversion::Improved) const;
  int64_t steps() const { return steps_; }
  const std::vector<double>& orders() const { return orders_; }
  const std::vector<double>& rdp() const { return rdp_; }
  nlohmann::json to_json() const;
  static RdpAccountant from_json(const nlohmann::json& j);

 private:
  const std::vector<double>& per_step(double q, double sigma) const;  // cached for the last (q, sigma)
  std::vector<double> orders_, rdp_;
  int64_t steps_ = 0;
  mutable double cached_q_ = -1, cached_sigma_ = -1;
  mutable std::vector<double> cached_;
};

/// The smallest noise multiplier sigma (to relative 1e-6) for which `steps` steps at rate q stay
/// within (epsilon, delta). throws: c10::Error when no sigma <= 1e4 does.
double calibrate_sigma(double q, int64_t steps, double epsilon, double delta);

/// The most steps at (q, sigma) that stay within (epsilon, delta) (0 if not even one).
int64_t max_steps(double q, double sigma, double epsilon, double delta);

}  // namespace lipkit::dp
