#include "lipkit/certify/report.h"

#include <torch/torch.h>

#include <cstdio>
#include <fstream>
#include <sstream>

namespace lipkit::certify {

namespace {
double max_radius(const CertifyResult& r) {
  double m = r.radius.numel() ? r.radius.max().item<double>() : 0.0;
  for (double x : r.radii) m = std::max(m, x);
  return std::max(m, 1e-6);
}
}  // namespace

double certified_fraction(const CertifyResult& r, double rad) {
  return r.total ? (r.radius > rad).sum().item<double>() / double(r.total) : 0.0;
}

std::string format_table(const CertifyResult& r) {
  std::ostringstream s;
  char buf[160];
  std::snprintf(buf, sizeof buf, "%-28s %10s\n", ("radius (" + to_string(r.norm) + ")").c_str(), "accuracy");
  s << buf;
  std::snprintf(buf, sizeof buf, "%-28s %9.2f%%\n", "clean (radius 0)", 100 * r.clean_accuracy());
  s << buf;
  for (size_t i = 0; i < r.radii.size(); ++i) {
    std::snprintf(buf, sizeof buf, "certified at %-15.4f %9.2f%%", r.radii[i], 100 * r.certified_accuracy(i));
    s << buf;
    if (r.interval) {
      std::snprintf(buf, sizeof buf, "   (margin/2 %.2f%%, IBP %.2f%%)",
                    100.0 * r.certified_margin[i] / std::max<int64_t>(1, r.total),
                    100.0 * r.certified_interval[i] / std::max<int64_t>(1, r.total));
      s << buf;
    }
    s << "\n";
  }
  std::snprintf(buf, sizeof buf, "(%ld points; Lipschitz bound %.6g%s)\n", (long)r.total, r.lipschitz,
                r.pairwise_head ? ", per-pair last-layer rule" : "");
  s << buf;
  return s.str();
}

nlohmann::json to_json(const CertifyResult& r) {
  nlohmann::json j;
  j["norm"] = to_string(r.norm);
  j["points"] = r.total;
  j["clean_accuracy"] = r.clean_accuracy();
  j["lipschitz_bound"] = r.lipschitz;
  j["rule"] = r.pairwise_head ? "per-pair (normalized last layer)" : "margin / (c * L)";
  auto certified = nlohmann::json::array();
  for (size_t i = 0; i < r.radii.size(); ++i)
    if (r.interval) {
      const double n = std::max<int64_t>(1, r.total);
      certified.push_back({{"radius", r.radii[i]}, {"accuracy", r.certified_accuracy(i)},
                           {"accuracy_margin", r.certified_margin[i] / n},
                           {"accuracy_interval", r.certified_interval[i] / n}});
    } else {
      certified.push_back({{"radius", r.radii[i]}, {"accuracy", r.certified_accuracy(i)}});
    }
  j["certified"] = certified;
  if (r.interval) j["rule"] = "margin / (2 L), or interval bound propagation over the clipped box";
  auto correct = r.radius.masked_select(r.radius > 0);
  if (correct.numel() > 0) {
    auto q = torch::quantile(correct, torch::tensor({0.1, 0.25, 0.5, 0.75, 0.9}, torch::kDouble));
    j["radius_quantiles_of_correct_points"] = {{"p10", q[0].item<double>()}, {"p25", q[1].item<double>()},
                                               {"p50", q[2].item<double>()}, {"p75", q[3].item<double>()},
                                               {"p90", q[4].item<double>()}};
  }
  auto curve = nlohmann::json::array();
  const double top = max_radius(r);
  for (int i = 0; i <= 50; ++i) {
    const double rad = top * i / 50.0;
    curve.push_back({rad, certified_fraction(r, rad)});
  }
  j["curve"] = curve;
  return j;
}

void write_svg(const CertifyResult& r, const std::string& path, const std::string& title) {
  const double W = 640, H = 420, L = 60, R = 20, T = 40, B = 50;
  const double top = max_radius(r);
  auto px = [&](double rad) { return L + (W - L - R) * rad / top; };
  auto py = [&](double acc) { return H - B - (H - T - B) * acc; };
  std::ostringstream s;
  s << "<svg xmlns='http://www.w3.org/2000/svg' width='" << W << "' height='" << H
    << "' font-family='sans-serif' font-size='12'>\n<rect width='100%' height='100%' fill='white'/>\n";
  s << "<text x='" << W / 2 << "' y='22' text-anchor='middle' font-size='14'>" << title << "</text>\n";
  for (int i = 0; i <= 10; ++i) {  // grid and y labels
    const double y = py(i / 10.0);
    s << "<line x1='" << L << "' y1='" << y << "' x2='" << W - R << "' y2='" << y
      << "' stroke='#ddd'/><text x='" << L - 6 << "' y='" << y + 4 << "' text-anchor='end'>" << i * 10
      << "%</text>\n";
  }
  for (int i = 0; i <= 5; ++i) {
    const double rad = top * i / 5.0, x = px(rad);
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.3g", rad);
    s << "<text x='" << x << "' y='" << H - B + 18 << "' text-anchor='middle'>" << buf << "</text>\n";
  }
  s << "<text x='" << (L + W - R) / 2 << "' y='" << H - 12 << "' text-anchor='middle'>" << to_string(r.norm)
    << " radius</text>\n";
  s << "<line x1='" << L << "' y1='" << H - B << "' x2='" << W - R << "' y2='" << H - B << "' stroke='black'/>\n";
  s << "<line x1='" << L << "' y1='" << T << "' x2='" << L << "' y2='" << H - B << "' stroke='black'/>\n";
  s << "<polyline fill='none' stroke='#1f77b4' stroke-width='2' points='";
  for (int i = 0; i <= 200; ++i) {
    const double rad = top * i / 200.0;
    s << px(rad) << "," << py(certified_fraction(r, rad)) << " ";
  }
  s << "'/>\n";
  for (size_t i = 0; i < r.radii.size(); ++i) {
    const double x = px(r.radii[i]), y = py(r.certified_accuracy(i));
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.1f%% @ %.3g", 100 * r.certified_accuracy(i), r.radii[i]);
    s << "<circle cx='" << x << "' cy='" << y << "' r='4' fill='#d62728'/><text x='" << x + 6 << "' y='"
      << y - 6 << "'>" << buf << "</text>\n";
  }
  s << "</svg>\n";
  std::ofstream out(path);
  TORCH_CHECK(out, "cannot write plot ", path);
  out << s.str();
}

}  // namespace lipkit::certify
