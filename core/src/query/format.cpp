// query/format.cpp — a CompareResult as text for people (table, markdown)
// and for programs (csv, json).
#include <fmt/format.h>

#include <cmath>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string>
#include <vector>

#include "query/compare.h"
#include "util/util.h"

namespace reglab::query {
namespace {

// Four decimals suit accuracies, calibration errors and losses alike, and one
// fixed precision keeps a mean and its spread comparable at a glance (exact
// values are in the csv and json formats). Only huge magnitudes switch to
// scientific notation.
std::string human(double x) {
  if (std::isnan(x)) return "n/a";
  if (std::fabs(x) >= 1e6) return fmt::format("{:.3e}", x);
  return fmt::format("{:.4f}", x);
}

// Shortest text that reads back as the same double; empty for NaN.
std::string exact(double x) {
  if (std::isnan(x)) return "";
  return fmt::format("{}", x);
}

// Columns are aligned by characters, not bytes ('±', '◀' are multi-byte).
std::size_t display_width(const std::string& s) {
  std::size_t n = 0;
  for (unsigned char c : s) n += (c & 0xC0) != 0x80;
  return n;
}

std::string pad(const std::string& s, std::size_t width, bool right) {
  const std::size_t w = display_width(s);
  if (w >= width) return s;
  const std::string fill(width - w, ' ');
  return right ? fill + s : s + fill;
}

// "higher is better", "lower is better" or "no declared direction", with why
// when the runs disagree or the caller chose it.
std::string direction_text(const CompareResult& r) {
  std::string s = direction_words(r.direction);
  if (r.direction_source == DirectionSource::kDisagree) s += ": the runs declare different directions";
  if (r.direction_source == DirectionSource::kOverride) s += " (as asked)";
  return s;
}

const char* source_name(DirectionSource source) {
  switch (source) {
    case DirectionSource::kDeclared: return "declared";
    case DirectionSource::kOverride: return "override";
    case DirectionSource::kUndeclared: return "undeclared";
    case DirectionSource::kDisagree: return "disagree";
  }
  return "undeclared";
}

std::string heading(const CompareResult& r) {
  std::string s = r.options.metric + " (" + r.options.summary + ", " + direction_text(r) + "), sweep '" +
                  r.options.sweep + "'";
  if (!r.options.where.empty()) {
    std::vector<std::string> conds;
    for (const auto& [k, v] : r.options.where) conds.push_back(k + "=" + v);
    s += ", where " + util::join(conds, ", ");
  }
  return s;
}

std::string as_table(const CompareResult& r) {
  std::vector<std::string> header = r.options.by;
  const std::size_t nby = header.size();
  for (const char* h : {"mean ± std", "ci95", "n", "min", "max"}) header.emplace_back(h);
  std::vector<std::vector<std::string>> cells;
  for (const auto& g : r.rows) {
    std::vector<std::string> row = g.values;
    row.push_back(human(g.mean) + " ± " + human(g.std));
    row.push_back(std::isnan(g.ci95) ? "n/a" : "±" + human(g.ci95));
    row.push_back(std::to_string(g.n));
    row.push_back(human(g.min));
    row.push_back(human(g.max));
    cells.push_back(std::move(row));
  }
  std::vector<std::size_t> width(header.size());
  for (std::size_t c = 0; c < header.size(); ++c) {
    width[c] = display_width(header[c]);
    for (const auto& row : cells) width[c] = std::max(width[c], display_width(row[c]));
  }
  auto line = [&](const std::vector<std::string>& row, const std::string& marker) {
    std::string out;
    for (std::size_t c = 0; c < row.size(); ++c) {
      if (c) out += "  ";
      out += pad(row[c], width[c], c >= nby);
    }
    if (!marker.empty()) out += "  " + marker;
    // No trailing blanks: the last cell may be padded.
    while (!out.empty() && out.back() == ' ') out.pop_back();
    return out + "\n";
  };
  std::string out = heading(r) + "\n";
  out += line(header, "");
  std::vector<std::string> rule;
  for (std::size_t w : width) rule.emplace_back(w, '-');
  out += line(rule, "");
  for (std::size_t i = 0; i < cells.size(); ++i) out += line(cells[i], r.rows[i].best ? "◀ best" : "");
  if (r.rows.empty()) out += "(no groups)\n";
  return out;
}

std::string md_escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (c == '|') out += '\\';
    out += c;
  }
  return out;
}

std::string as_markdown(const CompareResult& r) {
  // Cells are appended one by one (GCC 12 warns falsely on chains of
  // operator+ over temporaries).
  // The heading first, as the table format has it: the direction decides
  // which mean is bold.
  std::string out = md_escape(heading(r));
  out += "\n\n|";
  auto cell = [&out](const std::string& text) {
    out += ' ';
    out += text;
    out += " |";
  };
  for (const auto& k : r.options.by) cell(md_escape(k));
  for (const char* h : {"n", "mean", "std", "ci95", "min", "max"}) cell(h);
  out += "\n|";
  for (std::size_t i = 0; i < r.options.by.size(); ++i) cell("---");
  for (int i = 0; i < 6; ++i) cell("---:");
  out += "\n";
  for (const auto& g : r.rows) {
    out += "|";
    for (const auto& v : g.values) cell(md_escape(v));
    cell(std::to_string(g.n));
    cell(g.best ? fmt::format("**{}**", human(g.mean)) : human(g.mean));
    for (double x : {g.std, g.ci95, g.min, g.max}) cell(human(x));
    out += "\n";
  }
  return out;
}

// RFC 4180: quote fields holding a comma, quote or line break; double quotes.
std::string csv_field(const std::string& s) {
  if (s.find_first_of(",\"\r\n") == std::string::npos) return s;
  std::string out = "\"";
  for (char c : s) {
    if (c == '"') out += '"';
    out += c;
  }
  return out + "\"";
}

std::string as_csv(const CompareResult& r) {
  std::vector<std::string> header = r.options.by;
  for (const char* h : {"metric", "summary", "n", "mean", "std", "ci95", "min", "max", "best", "direction"})
    header.emplace_back(h);
  std::string out;
  auto emit = [&out](const std::vector<std::string>& row) {
    for (std::size_t i = 0; i < row.size(); ++i) {
      if (i) out += ',';
      out += csv_field(row[i]);
    }
    out += "\n";
  };
  emit(header);
  for (const auto& g : r.rows) {
    std::vector<std::string> row = g.values;
    row.push_back(r.options.metric);
    row.push_back(r.options.summary);
    row.push_back(std::to_string(g.n));
    for (double x : {g.mean, g.std, g.ci95, g.min, g.max}) row.push_back(exact(x));
    row.push_back(g.best ? "true" : "false");
    row.push_back(direction_words(r.direction));
    emit(row);
  }
  return out;
}

nlohmann::ordered_json number_or_null(double x) {
  if (std::isnan(x) || std::isinf(x)) return nullptr;
  return x;
}

std::string as_json(const CompareResult& r) {
  nlohmann::ordered_json where = nlohmann::ordered_json::object();
  for (const auto& [k, v] : r.options.where) where[k] = v;
  nlohmann::ordered_json groups = nlohmann::ordered_json::array();
  for (const auto& g : r.rows) {
    nlohmann::ordered_json values = nlohmann::ordered_json::object();
    for (std::size_t i = 0; i < g.values.size() && i < r.options.by.size(); ++i) {
      values[r.options.by[i]] = g.values[i];
    }
    groups.push_back({{"values", values},
                      {"n", g.n},
                      {"mean", number_or_null(g.mean)},
                      {"std", number_or_null(g.std)},
                      {"ci95", number_or_null(g.ci95)},
                      {"min", number_or_null(g.min)},
                      {"max", number_or_null(g.max)},
                      {"best", g.best}});
  }
  nlohmann::ordered_json doc = {{"sweep", r.options.sweep},
                        {"metric", r.options.metric},
                        {"summary", r.options.summary},
                        {"by", r.options.by},
                        {"where", where},
                        {"direction", direction_name(r.direction)},  // "higher", "lower" or "none"
                        {"direction_source", source_name(r.direction_source)},
                        {"groups", groups}};
  return doc.dump(2) + "\n";
}

}  // namespace

std::string format(const CompareResult& result, const std::string& format) {
  if (format == "table") return as_table(result);
  if (format == "markdown") return as_markdown(result);
  if (format == "csv") return as_csv(result);
  if (format == "json") return as_json(result);
  throw std::invalid_argument("unknown output format '" + format + "' (choose table, markdown, csv or json)");
}

}  // namespace reglab::query
