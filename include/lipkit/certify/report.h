#pragma once
// Certification reports: a text table, JSON, and an SVG plot of certified accuracy against radius.

#include <nlohmann/json.hpp>

#include <string>

#include "lipkit/certify/certify.h"

namespace lipkit::certify {

/// Table: clean accuracy, then certified accuracy at each requested radius.
std::string format_table(const CertifyResult& r);

/// clean/certified accuracies, the Lipschitz bound used, the radius distribution (quantiles) and
/// the certified-accuracy curve on a radius grid.
nlohmann::json to_json(const CertifyResult& r);

/// Certified accuracy (y) against radius (x), with the requested radii marked. throws: c10::Error
/// when the file cannot be written.
void write_svg(const CertifyResult& r, const std::string& path, const std::string& title);

/// Fraction of points with radius > rad.
double certified_fraction(const CertifyResult& r, double rad);

}  // namespace lipkit::certify
