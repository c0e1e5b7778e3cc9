#include "lipkit/data/tabular.h"

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include <algorithm>
#include <cerrno>
#include <cctype>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <map>
#include <optional>
#include <sstream>

namespace lipkit::data {

namespace {

// One cell: absent (missing) or its text; `number` set when the text is a finite number.
struct Cell {
  bool missing = true;
  std::string text;
  std::optional<double> number;
};

struct RawTable {
  std::vector<std::string> header;
  std::vector<std::vector<Cell>> rows;
  std::vector<std::string> where;  // "line 7" / "record 3", per row
};

bool is_missing_text(const std::string& t) { return t.empty() || t == "NA" || t == "?" || t == "nan" || t == "NaN"; }

// An ISO date YYYY-MM-DD as a decimal year (vega-datasets' cars.json gives the model year so).
std::optional<double> decimal_year(const std::string& t) {
  if (t.size() != 10 || t[4] != '-' || t[7] != '-') return std::nullopt;
  for (size_t i : {0, 1, 2, 3, 5, 6, 8, 9})
    if (!std::isdigit(static_cast<unsigned char>(t[i]))) return std::nullopt;
  const int month = std::stoi(t.substr(5, 2)), day = std::stoi(t.substr(8, 2));
  if (month < 1 || month > 12 || day < 1 || day > 31) return std::nullopt;
  return std::stoi(t.substr(0, 4)) + (month - 1) / 12.0 + (day - 1) / 365.25;
}

Cell cell_of(const std::string& text) {
  Cell c;
  if (is_missing_text(text)) return c;
  c.missing = false;
  c.text = text;
  if ((c.number = decimal_year(text))) return c;
  char* end = nullptr;
  errno = 0;
  const double v = std::strtod(text.c_str(), &end);
  if (errno == 0 && end && *end == '\0' && std::isfinite(v)) c.number = v;
  return c;
}

// Splits one CSV record (quotes: "a, b" and "" for a quote); a quoted field may span lines, so the
// caller passes the stream. Returns false at the end of the input.
bool next_record(std::istream& in, std::vector<std::string>& fields, int64_t& line, const std::string& path) {
  std::string text;
  if (!std::getline(in, text)) return false;
  ++line;
  const int64_t first = line;
  fields.assign(1, "");
  bool quoted = false;
  for (size_t i = 0;; ++i) {
    if (i == text.size()) {
      if (!quoted) break;
      std::string more;
      TORCH_CHECK(std::getline(in, more), path, ": line ", first, ": a quoted field is never closed");
      ++line;
      text += "\n" + more;
    }
    const char ch = text[i];
    if (quoted) {
      if (ch == '"' && i + 1 < text.size() && text[i + 1] == '"') fields.back() += '"', ++i;
      else if (ch == '"') quoted = false;
      else fields.back() += ch;
    } else if (ch == '"') {
      quoted = true;
    } else if (ch == ',') {
      fields.emplace_back();
    } else if (ch != '\r') {
      fields.back() += ch;
    }
  }
  for (auto& f : fields) {  // spaces around unquoted values are not part of them
    const auto b = f.find_first_not_of(' '), e = f.find_last_not_of(' ');
    f = b == std::string::npos ? "" : f.substr(b, e - b + 1);
  }
  return true;
}

RawTable read_csv(const std::string& path) {
  std::ifstream in(path);
  TORCH_CHECK(in, path, ": cannot open the table");
  RawTable t;
  int64_t line = 0;
  TORCH_CHECK(next_record(in, t.header, line, path), path, ": empty file (a header row is required)");
  std::vector<std::string> fields;
  while (next_record(in, fields, line, path)) {
    if (fields.size() == 1 && fields[0].empty()) continue;  // blank line
    TORCH_CHECK(fields.size() == t.header.size(), path, ": line ", line, ": ", fields.size(), " fields, the header has ",
                t.header.size());
    std::vector<Cell> row;
    for (const auto& f : fields) row.push_back(cell_of(f));
    t.rows.push_back(std::move(row));
    t.where.push_back("line " + std::to_string(line));
  }
  return t;
}

RawTable read_json_records(const std::string& path) {
  std::ifstream in(path);
  TORCH_CHECK(in, path, ": cannot open the table");
  nlohmann::json j;
  try {
    in >> j;
  } catch (const nlohmann::json::parse_error& e) {
    TORCH_CHECK(false, path, ": not valid JSON: ", e.what());
  }
  TORCH_CHECK(j.is_array() && !j.empty() && j[0].is_object(), path, ": expected a JSON array of records (objects)");
  RawTable t;
  for (auto it = j[0].begin(); it != j[0].end(); ++it) t.header.push_back(it.key());
  for (size_t r = 0; r < j.size(); ++r) {
    TORCH_CHECK(j[r].is_object(), path, ": record ", r + 1, " is not an object");
    std::vector<Cell> row;
    for (const auto& name : t.header) {
      const auto v = j[r].value(name, nlohmann::json());
      Cell c;
      if (v.is_number()) c = Cell{false, v.dump(), v.get<double>()};
      else if (v.is_string()) c = cell_of(v.get<std::string>());
      else TORCH_CHECK(v.is_null(), path, ": record ", r + 1, ": column '", name, "': expected a number, a string or null, got ",
                       v.dump());
      row.push_back(c);
    }
    t.rows.push_back(std::move(row));
    t.where.push_back("record " + std::to_string(r + 1));
  }
  return t;
}

int64_t column_index(const RawTable& t, const std::string& name, const std::string& path) {
  auto it = std::find(t.header.begin(), t.header.end(), name);
  if (it != t.header.end()) return it - t.header.begin();
  std::string known;
  for (const auto& h : t.header) known += (known.empty() ? "" : ", ") + h;
  TORCH_CHECK(false, path, ": no column '", name, "' (columns: ", known, ")");
}

// The encoding of a feature column from the file itself: categorical when its first present value is
// not a number; categories sorted.
TabularColumn infer_column(const RawTable& t, int64_t c, const std::string& name) {
  TabularColumn col{name, {}};
  for (const auto& row : t.rows) {
    if (row[c].missing) continue;
    if (row[c].number) return col;
    break;
  }
  for (const auto& row : t.rows)
    if (!row[c].missing && std::find(col.categories.begin(), col.categories.end(), row[c].text) == col.categories.end())
      col.categories.push_back(row[c].text);
  std::sort(col.categories.begin(), col.categories.end());
  return col;
}

// A label's text: a number in its shortest form (so 1 and 1.0 are one class), else the text.
std::string label_of(const Cell& c) {
  if (!c.number) return c.text;
  std::ostringstream o;
  o << *c.number;
  return o.str();
}

// The class labels present in column c, sorted numerically when all are numbers, else as text.
std::vector<std::string> infer_classes(const RawTable& t, int64_t c) {
  std::vector<std::pair<double, std::string>> found;
  bool numeric = true;
  for (const auto& row : t.rows) {
    if (row[c].missing) continue;
    const auto label = label_of(row[c]);
    numeric = numeric && row[c].number.has_value();
    if (std::none_of(found.begin(), found.end(), [&](const auto& f) { return f.second == label; }))
      found.emplace_back(row[c].number.value_or(0.0), label);
  }
  if (numeric) std::sort(found.begin(), found.end());
  else std::sort(found.begin(), found.end(), [](const auto& a, const auto& b) { return a.second < b.second; });
  std::vector<std::string> out;
  for (const auto& f : found) out.push_back(f.second);
  return out;
}

}  // namespace

Table read_table(const std::string& path, const TabularOptions& options, const std::vector<TabularColumn>* schema,
                 bool require_target) {
  TORCH_CHECK(options.missing == "error" || options.missing == "drop", path, ": the missing-value policy must be ",
              "error or drop, got '", options.missing, "'");
  const bool json = path.size() >= 5 && path.substr(path.size() - 5) == ".json";
  const RawTable raw = json ? read_json_records(path) : read_csv(path);
  TORCH_CHECK(!options.target.empty(), path, ": a target column is required");
  const bool has_target = std::find(raw.header.begin(), raw.header.end(), options.target) != raw.header.end();
  const int64_t target = has_target || require_target ? column_index(raw, options.target, path) : -1;
  Table out;
  out.target = options.target;
  if (options.class_target) out.classes = options.classes.empty() && target >= 0 ? infer_classes(raw, target) : options.classes;
  std::vector<int64_t> used;
  if (schema) {
    out.columns = *schema;
  } else {
    std::vector<std::string> names = options.features;
    if (names.empty())
      for (const auto& h : raw.header)
        if (h != options.target) names.push_back(h);
    for (const auto& n : names) {
      TORCH_CHECK(n != options.target, path, ": the target column '", n, "' is also listed as a feature");
      out.columns.push_back(infer_column(raw, column_index(raw, n, path), n));
    }
  }
  for (const auto& col : out.columns) {
    used.push_back(column_index(raw, col.name, path));
    if (col.categories.empty()) out.feature_names.push_back(col.name);
    for (const auto& cat : col.categories) out.feature_names.push_back(col.name + "=" + cat);
  }
  std::vector<double> xs, ys;
  int64_t rows = 0;
  for (size_t r = 0; r < raw.rows.size(); ++r) {
    const auto& row = raw.rows[r];
    bool skip = false;
    auto present = [&](int64_t c) {
      if (!row[c].missing) return true;
      TORCH_CHECK(options.missing == "drop", path, ": ", raw.where[r], ": column '", raw.header[c],
                  "': missing value (set the missing-value policy to drop to skip such rows)");
      skip = true;
      return false;
    };
    std::vector<double> encoded;
    for (size_t k = 0; k < out.columns.size() && !skip; ++k) {
      const auto& col = out.columns[k];
      const int64_t c = used[k];
      if (!present(c)) break;
      if (col.categories.empty()) {
        TORCH_CHECK(row[c].number, path, ": ", raw.where[r], ": column '", col.name, "': '", row[c].text,
                    "' is not a number (the column is numeric)");
        encoded.push_back(*row[c].number);
        continue;
      }
      auto it = std::find(col.categories.begin(), col.categories.end(), row[c].text);
      TORCH_CHECK(it != col.categories.end(), path, ": ", raw.where[r], ": column '", col.name, "': unknown category '",
                  row[c].text, "'");
      for (size_t i = 0; i < col.categories.size(); ++i) encoded.push_back(col.categories.begin() + i == it ? 1.0 : 0.0);
    }
    if (!skip && target >= 0 && present(target)) {
      if (options.class_target) {
        const auto label = label_of(row[target]);
        auto it = std::find(out.classes.begin(), out.classes.end(), label);
        TORCH_CHECK(it != out.classes.end(), path, ": ", raw.where[r], ": target column '", options.target,
                    "': unknown class '", label, "'");
        ys.push_back(static_cast<double>(it - out.classes.begin()));
      } else {
        TORCH_CHECK(row[target].number, path, ": ", raw.where[r], ": target column '", options.target, "': '",
                    row[target].text, "' is not a number");
        ys.push_back(*row[target].number);
      }
    }
    if (skip) continue;
    xs.insert(xs.end(), encoded.begin(), encoded.end());
    ++rows;
  }
  TORCH_CHECK(rows > 0, path, ": no rows with values");
  const auto f = static_cast<int64_t>(out.feature_names.size());
  out.x = torch::tensor(xs, torch::kDouble).view({rows, f});
  out.y = target >= 0 ? torch::tensor(ys, torch::kDouble) : torch::Tensor();
  return out;
}

std::pair<Table, Table> split_table(const Table& table, double test_fraction, uint64_t seed) {
  TORCH_CHECK(test_fraction > 0 && test_fraction < 1, "split_table: test_fraction must be in (0, 1), got ",
              test_fraction);
  const int64_t n = table.x.size(0), test = std::llround(test_fraction * n);
  TORCH_CHECK(test >= 1 && test < n, "split_table: ", n, " rows cannot be split ", test_fraction, " for testing");
  auto gen = at::make_generator<at::CPUGeneratorImpl>(seed);
  auto perm = torch::randperm(n, gen, torch::kLong);
  auto part = [&](int64_t from, int64_t len) {
    Table t = table;
    auto idx = perm.narrow(0, from, len);
    t.x = table.x.index_select(0, idx);
    if (table.y.defined()) t.y = table.y.index_select(0, idx);
    return t;
  };
  return {part(test, n - test), part(0, test)};
}

Standardization fit_standardization(const torch::Tensor& x) {
  auto mean = x.mean(0), std = x.std(0, /*unbiased=*/false);
  return {mean, torch::where(std > 0, std, torch::ones_like(std))};
}

}  // namespace lipkit::data
