#pragma once
// Certification reports: a text table, JSON, and a PNG or SVG plot of certified accuracy against radius.

#include <nlohmann/json.hpp>

#include <string>

#include "lipkit/certify/certify.h"

namespace lipkit::certify {

/// Table: clean accuracy, then certified accuracy at each requested radius.
std::string format_table(const CertifyResult& r);

/// clean/certified accuracies, the Lipschitz bound used, the radius distribution (quantiles) and
/// the certified-accuracy curve on a radius grid.
nlohmann::json to_json(const CertifyResult& r);

/// Certified accuracy (y) against radius (x) on round radius ticks, the requested radii marked: a PNG
/// image for a name ending in .png, SVG for .svg; written atomically. throws: c10::Error for any other
/// extension (check_plot_path) or when the file cannot be written.
void write_plot(const CertifyResult& r, const std::string& path, const std::string& title);

/// throws: c10::Error unless `path` ends in .png or .svg (call before long work; "" passes).
void check_plot_path(const std::string& path);

/// to_json(r) plus the keys of `extra`, written atomically to `path`.
void write_json(const CertifyResult& r, const std::string& path, const nlohmann::json& extra = {});

/// Fraction of points with radius > rad.
double certified_fraction(const CertifyResult& r, double rad);

}  // namespace lipkit::certify
