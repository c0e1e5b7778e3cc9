#include "lipkit/dp/accountant.h"

#include <c10/util/Exception.h>

#include <algorithm>
#include <cmath>
#include <limits>

namespace lipkit::dp {

namespace {
constexpr double kNegInf = -std::numeric_limits<double>::infinity();

// log(exp(a) + exp(b)) and log(exp(a) - exp(b)) for a >= b, without overflow.
double log_add(double a, double b) {
  if (a < b) std::swap(a, b);
  return a == kNegInf ? a : a + std::log1p(std::exp(b - a));
}
double log_sub(double a, double b) {
  TORCH_CHECK(a >= b, "rdp: negative intermediate in the fractional-order series");
  return b == kNegInf ? a : a + std::log1p(-std::exp(b - a));
}

// log erfc(x), also where erfc underflows (asymptotic series, relative error < 1e-12 for x > 25).
double log_erfc(double x) {
  if (x < 25) return std::log(std::erfc(x));
  const double r = 1 / (x * x);
  return -x * x - std::log(x) - 0.5 * std::log(M_PI) + std::log1p(-0.5 * r + 0.75 * r * r - 1.875 * r * r * r);
}

// log A_alpha for integer alpha: sum_k C(alpha, k) (1 - q)^(alpha - k) q^k exp((k^2 - k) / (2 sigma^2)).
double log_a_integer(double q, double sigma, int64_t alpha) {
  double log_a = kNegInf, log_binom = 0;
  for (int64_t k = 0; k <= alpha; ++k) {
    if (k > 0) log_binom += std::log(double(alpha - k + 1)) - std::log(double(k));
    const double term = log_binom + (alpha - k) * std::log1p(-q) + k * std::log(q) +
                        double(k * k - k) / (2 * sigma * sigma);
    log_a = log_add(log_a, term);
  }
  return log_a;
}

// log A_alpha for fractional alpha (Mironov, Talwar, Zhang 2019, section 3.3): the integral split at
// z0, where (1 - q) mu_0 = q mu_1, each side a series in generalised binomial coefficients.
double log_a_fractional(double q, double sigma, double alpha) {
  double pos0 = kNegInf, neg0 = kNegInf, pos1 = kNegInf, neg1 = kNegInf;
  const double z0 = sigma * sigma * std::log(1 / q - 1) + 0.5, s2 = sigma * sigma;
  double log_coef = 0, sign = 1;  // C(alpha, i), as log |.| and sign
  for (int64_t i = 0;; ++i) {
    if (i > 0) {
      const double factor = (alpha - double(i - 1)) / double(i);
      sign *= factor < 0 ? -1 : 1;
      log_coef += std::log(std::abs(factor));
    }
    const double j = alpha - double(i);
    const double s0 = log_coef + i * std::log(q) + j * std::log1p(-q) + (double(i) * i - i) / (2 * s2) +
                      std::log(0.5) + log_erfc((i - z0) / (std::sqrt(2.0) * sigma));
    const double s1 = log_coef + j * std::log(q) + i * std::log1p(-q) + (j * j - j) / (2 * s2) + std::log(0.5) +
                      log_erfc((z0 - j) / (std::sqrt(2.0) * sigma));
    if (sign > 0) {
      pos0 = log_add(pos0, s0);
      pos1 = log_add(pos1, s1);
    } else {
      neg0 = log_add(neg0, s0);
      neg1 = log_add(neg1, s1);
    }
    if (i > alpha && std::max(s0, s1) < -40 + std::max(pos0, pos1)) break;
    TORCH_CHECK(i < 100000, "rdp: the fractional-order series did not converge (q ", q, ", sigma ", sigma,
                ", alpha ", alpha, ")");
  }
  return log_add(log_sub(pos0, neg0), log_sub(pos1, neg1));
}
}  // namespace

double rdp_subsampled_gaussian(double q, double sigma, double alpha) {
  TORCH_CHECK(q >= 0 && q <= 1, "rdp: the sampling rate q must be in [0, 1], got ", q);
  TORCH_CHECK(sigma > 0, "rdp: the noise multiplier sigma must be positive, got ", sigma);
  TORCH_CHECK(alpha > 1, "rdp: the order alpha must be > 1, got ", alpha);
  if (q == 0) return 0;
  if (q == 1) return alpha / (2 * sigma * sigma);
  const bool integer = std::floor(alpha) == alpha;
  const double log_a = integer ? log_a_integer(q, sigma, static_cast<int64_t>(alpha)) : log_a_fractional(q, sigma, alpha);
  return log_a / (alpha - 1);
}

std::vector<double> default_orders() {
  std::vector<double> o;
  for (double a = 1.25; a <= 10; a += 0.25) o.push_back(a);
  for (int a = 11; a <= 64; ++a) o.push_back(a);
  for (double a : {80.0, 96.0, 128.0, 256.0, 512.0}) o.push_back(a);
  return o;
}

Epsilon epsilon_from_rdp(const std::vector<double>& orders, const std::vector<double>& rdp, double delta,
                         Conversion conversion) {
  TORCH_CHECK(delta > 0 && delta < 1, "epsilon: delta must be in (0, 1), got ", delta);
  TORCH_CHECK(orders.size() == rdp.size() && !orders.empty(), "epsilon: one RDP value per order required");
  Epsilon best{std::numeric_limits<double>::infinity(), 0};
  for (size_t i = 0; i < orders.size(); ++i) {
    const double a = orders[i];
    const double eps = conversion == Conversion::Classic
                           ? rdp[i] + std::log(1 / delta) / (a - 1)
                           : rdp[i] + std::log((a - 1) / a) - (std::log(delta) + std::log(a)) / (a - 1);
    if (eps < best.epsilon) best = {eps, a};
  }
  best.epsilon = std::max(best.epsilon, 0.0);
  return best;
}

RdpAccountant::RdpAccountant(std::vector<double> orders) : orders_(std::move(orders)), rdp_(orders_.size(), 0.0) {
  for (double a : orders_) TORCH_CHECK(a > 1, "RdpAccountant: every order must be > 1, got ", a);
}

const std::vector<double>& RdpAccountant::per_step(double q, double sigma) const {
  if (q != cached_q_ || sigma != cached_sigma_) {
    cached_.clear();
    for (double a : orders_) cached_.push_back(rdp_subsampled_gaussian(q, sigma, a));
    cached_q_ = q;
    cached_sigma_ = sigma;
  }
  return cached_;
}

void RdpAccountant::step(double q, double sigma, int64_t count) {
  TORCH_CHECK(count >= 0, "RdpAccountant: step count must be >= 0, got ", count);
  const auto& r = per_step(q, sigma);
  for (size_t i = 0; i < orders_.size(); ++i) rdp_[i] += double(count) * r[i];
  steps_ += count;
}

Epsilon RdpAccountant::epsilon_after(double q, double sigma, int64_t count, double delta) const {
  RdpAccountant next = *this;
  next.step(q, sigma, count);
  return next.epsilon(delta);
}

Epsilon RdpAccountant::epsilon(double delta, Conversion conversion) const {
  return epsilon_from_rdp(orders_, rdp_, delta, conversion);
}

nlohmann::json RdpAccountant::to_json() const { return {{"orders", orders_}, {"rdp", rdp_}, {"steps", steps_}}; }

RdpAccountant RdpAccountant::from_json(const nlohmann::json& j) {
  RdpAccountant a(j.at("orders").get<std::vector<double>>());
  a.rdp_ = j.at("rdp").get<std::vector<double>>();
  a.steps_ = j.at("steps").get<int64_t>();
  TORCH_CHECK(a.rdp_.size() == a.orders_.size(), "RdpAccountant: orders and rdp differ in length");
  return a;
}

double calibrate_sigma(double q, int64_t steps, double epsilon, double delta) {
  TORCH_CHECK(epsilon > 0, "calibrate_sigma: epsilon must be positive, got ", epsilon);
  TORCH_CHECK(steps >= 1, "calibrate_sigma: steps must be >= 1, got ", steps);
  auto eps_at = [&](double sigma) { return RdpAccountant().epsilon_after(q, sigma, steps, delta).epsilon; };
  double hi = 1e4, lo = 1e-2;
  TORCH_CHECK(eps_at(hi) <= epsilon, "calibrate_sigma: even sigma = 1e4 spends more than epsilon ", epsilon,
              " in ", steps, " steps at q ", q, " (delta ", delta, ")");
  if (eps_at(lo) <= epsilon) return lo;
  while (hi / lo > 1 + 1e-6) {
    const double mid = std::sqrt(lo * hi);
    (eps_at(mid) <= epsilon ? hi : lo) = mid;
  }
  return hi;  // eps_at(hi) <= epsilon holds at every iteration
}

int64_t max_steps(double q, double sigma, double epsilon, double delta) {
  const auto orders = default_orders();
  std::vector<double> per_step;
  for (double a : orders) per_step.push_back(rdp_subsampled_gaussian(q, sigma, a));
  auto within = [&](int64_t t) {
    std::vector<double> total;
    for (double r : per_step) total.push_back(r * double(t));
    return epsilon_from_rdp(orders, total, delta).epsilon <= epsilon;
  };
  if (!within(1)) return 0;
  int64_t lo = 1, hi = 2;
  while (within(hi)) {
    lo = hi;
    hi *= 2;
    if (hi > (int64_t(1) << 40)) return lo;
  }
  while (hi - lo > 1) {
    const int64_t mid = lo + (hi - lo) / 2;
    (within(mid) ? lo : hi) = mid;
  }
  return lo;
}

}  // namespace lipkit::dp
