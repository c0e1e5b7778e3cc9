#include "lipkit/certify/report.h"
#include "lipkit/runtime.h"

#include <torch/torch.h>

#include <cairo-svg.h>
#include <cairo.h>

#include <cmath>
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
  j["proven"] = r.proven;
  j["bound"] = r.bound_source;
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

void check_plot_path(const std::string& path) {
  if (path.empty()) return;
  const auto dot = path.find_last_of('.');
  const std::string ext = dot == std::string::npos ? "" : path.substr(dot);
  TORCH_CHECK(ext == ".png" || ext == ".svg", "--plot ", path, ": the file name must end in .png or .svg, got '",
              ext, "'");
}

namespace {
// A round tick step (1, 2 or 5 times a power of ten) giving about `count` ticks up to `top`.
double tick_step(double top, int count) {
  const double raw = top / count, p = std::pow(10.0, std::floor(std::log10(raw)));
  for (double m : {1.0, 2.0, 5.0})
    if (m * p >= raw) return m * p;
  return 10 * p;
}

void text(cairo_t* cr, double x, double y, const std::string& s, double align) {
  cairo_text_extents_t e;
  cairo_text_extents(cr, s.c_str(), &e);
  cairo_move_to(cr, x - align * e.width, y);
  cairo_show_text(cr, s.c_str());
}

void draw(cairo_t* cr, const CertifyResult& r, const std::string& title, double W, double H) {
  const double L = 60, R = 20, T = 40, B = 50;
  const double step = tick_step(max_radius(r), 5);
  const double top = step * std::ceil(max_radius(r) / step - 1e-9);
  auto px = [&](double rad) { return L + (W - L - R) * rad / top; };
  auto py = [&](double acc) { return H - B - (H - T - B) * acc; };
  cairo_set_source_rgb(cr, 1, 1, 1);
  cairo_paint(cr);
  cairo_select_font_face(cr, "DejaVu Sans", CAIRO_FONT_SLANT_NORMAL, CAIRO_FONT_WEIGHT_NORMAL);
  cairo_set_font_size(cr, 14);
  cairo_set_source_rgb(cr, 0, 0, 0);
  text(cr, W / 2, 24, title, 0.5);
  cairo_set_font_size(cr, 12);
  cairo_set_line_width(cr, 1);
  for (int i = 0; i <= 10; ++i) {  // grid and y labels
    cairo_set_source_rgb(cr, 0.87, 0.87, 0.87);
    cairo_move_to(cr, L, py(i / 10.0));
    cairo_line_to(cr, W - R, py(i / 10.0));
    cairo_stroke(cr);
    cairo_set_source_rgb(cr, 0, 0, 0);
    text(cr, L - 6, py(i / 10.0) + 4, std::to_string(i * 10) + "%", 1.0);
  }
  for (double rad = 0; rad <= top + step * 1e-6; rad += step) {  // round x ticks
    char buf[32];
    std::snprintf(buf, sizeof buf, "%g", std::round(rad / step) * step);
    text(cr, px(rad), H - B + 18, buf, 0.5);
  }
  text(cr, (L + W - R) / 2, H - 12, to_string(r.norm) + " radius", 0.5);
  cairo_move_to(cr, L, T);
  cairo_line_to(cr, L, H - B);
  cairo_line_to(cr, W - R, H - B);
  cairo_stroke(cr);
  cairo_set_source_rgb(cr, 0.12, 0.47, 0.71);
  cairo_set_line_width(cr, 2);
  for (int i = 0; i <= 200; ++i) {
    const double rad = top * i / 200.0;
    (i ? cairo_line_to : cairo_move_to)(cr, px(rad), py(certified_fraction(r, rad)));
  }
  cairo_stroke(cr);
  for (size_t i = 0; i < r.radii.size(); ++i) {
    const double x = px(r.radii[i]), y = py(r.certified_accuracy(i));
    cairo_set_source_rgb(cr, 0.84, 0.15, 0.16);
    cairo_arc(cr, x, y, 4, 0, 2 * M_PI);
    cairo_fill(cr);
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.1f%% @ %.3g", 100 * r.certified_accuracy(i), r.radii[i]);
    cairo_set_source_rgb(cr, 0, 0, 0);
    text(cr, x + 6, y - 6, buf, 0.0);
  }
}
}  // namespace

void write_plot(const CertifyResult& r, const std::string& path, const std::string& title) {
  check_plot_path(path);
  const double W = 640, H = 420;
  const bool png = path.substr(path.size() - 4) == ".png";
  write_atomically(path, [&](const std::string& tmp) {
    cairo_surface_t* surface = png ? cairo_image_surface_create(CAIRO_FORMAT_RGB24, int(W), int(H))
                                   : cairo_svg_surface_create(tmp.c_str(), W, H);
    cairo_t* cr = cairo_create(surface);
    draw(cr, r, title, W, H);
    cairo_destroy(cr);
    cairo_surface_flush(surface);
    const auto status = png ? cairo_surface_write_to_png(surface, tmp.c_str()) : cairo_surface_status(surface);
    cairo_surface_destroy(surface);  // finishes the SVG file
    TORCH_CHECK(status == CAIRO_STATUS_SUCCESS, "cannot write plot ", path, ": ", cairo_status_to_string(status));
  });
}

void write_json(const CertifyResult& r, const std::string& path, const nlohmann::json& extra) {
  auto j = to_json(r);
  for (auto it = extra.begin(); it != extra.end(); ++it) j[it.key()] = it.value();
  write_atomically(path, [&](const std::string& tmp) {
    std::ofstream out(tmp);
    TORCH_CHECK(out, "cannot write ", path);
    out << j.dump(2) << "\n";
    TORCH_CHECK(out.good(), "cannot write ", path);
  });
}

}  // namespace lipkit::certify
