// report/plot.cpp — curves from the store, gnuplot scripts for lines and bars.
#include "report/plot.h"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <limits>
#include <map>
#include <stdexcept>

#include "store/metric_series.h"
#include "util/util.h"

namespace reglab::report {

namespace fs = std::filesystem;

namespace {

constexpr int kWidth = 960, kHeight = 600;
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

// Tableau's ten categorical colours: distinct for the common colour-vision
// deficiencies and in greyscale print.
constexpr std::array<const char*, 10> kColours = {"#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
                                                  "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"};

void check_choice(const std::string& option, const std::string& value, std::initializer_list<const char*> choices) {
  std::vector<std::string> names;
  for (const char* c : choices) {
    if (value == c) return;
    names.emplace_back(c);
  }
  throw std::invalid_argument("plot: " + option + " must be one of " + util::join(names, ", ") + ", got '" + value +
                              "'");
}

// Numbers as gnuplot reads them back; a missing value (NaN, ±inf) is "NaN",
// which `set datafile missing` turns into a gap.
std::string num(double v) { return std::isfinite(v) ? fmt::format("{:.10g}", v) : "NaN"; }

std::string band_words(const std::string& band) { return band == "ci" ? "95% CI" : "std"; }

std::string default_title(const PlotOptions& o) {
  const std::string what = o.kind == "bar" ? o.summary + " " + o.metric : o.metric;
  std::string title = o.sweep + ": " + what + ", mean ± " + band_words(o.band) + " over runs";
  std::vector<std::string> conds;
  for (const auto& [k, v] : o.where) conds.push_back(k + "=" + v);
  if (!conds.empty()) title += ", where " + util::join(conds, ", ");
  return title;
}

std::string preamble(const PlotOptions& o, ImageFormat format, const fs::path& output) {
  std::string s;
  s += "# reglab plot of sweep " + gnuplot_quote(o.sweep) + ": " + gnuplot_quote(o.metric) + " (" + o.kind +
       ", band " + o.band + ")\n";
  s += "# Self-contained: edit and re-run with `gnuplot FILE`.\n";
  s += "set encoding utf8\n";
  if (format == ImageFormat::kPng) {
    s += fmt::format(
        "if (strstrt(GPVAL_TERMINALS, 'pngcairo') > 0) {{\n"
        "  set terminal pngcairo size {0},{1} font 'Sans,11'\n"
        "}} else {{\n"
        "  set terminal png size {0},{1}\n"
        "}}\n",
        kWidth, kHeight);
  } else {
    s += fmt::format("set terminal svg size {},{} font 'Sans,12' background '#ffffff'\n", kWidth, kHeight);
  }
  // Labels are data, not markup: no enhanced-text ^ _ @ { } interpretation.
  s += "set termoption noenhanced\n";
  s += "set output " + gnuplot_quote(output.string()) + "\n";
  s += "set datafile missing 'NaN'\n";
  s += "set title " + gnuplot_quote(o.title.empty() ? default_title(o) : o.title) + "\n";
  s += "set grid back lc rgb '#dddddd'\n";
  s += "set border 3\nset tics nomirror\n";
  return s;
}

std::size_t longest(const std::vector<std::string>& labels) {
  std::size_t n = 0;
  for (const auto& l : labels) n = std::max(n, l.size());
  return n;
}

std::string line_script(const PlotData& d, ImageFormat format, const fs::path& output) {
  const PlotOptions& o = d.options;
  std::string s = preamble(o, format, output);
  s += "# One datablock per group. Columns: step, mean, band low, band high, runs at that step;\n";
  s += "# the band is the mean ± the " +
       std::string(o.band == "ci" ? "95% confidence interval of the mean (Student t)" : "sample standard deviation") +
       " over those runs.\n";
  std::vector<std::string> labels;
  std::int64_t lo = 0, hi = 0;
  bool any = false;
  for (std::size_t i = 0; i < d.curves.size(); ++i) {
    const Curve& c = d.curves[i];
    labels.push_back(group_label(o.by, c.values));
    s += "# group " + gnuplot_quote(labels.back()) + ", " + std::to_string(c.runs) + " runs\n";
    s += "$group" + std::to_string(i + 1) + " << EOD\n";
    for (const CurvePoint& p : c.points) {
      const double half = o.band == "ci" ? p.ci95 : p.std;
      const double band_lo = p.n < 2 ? kNaN : p.mean - half, band_hi = p.n < 2 ? kNaN : p.mean + half;
      s += fmt::format("{} {} {} {} {}\n", p.step, num(p.mean), num(band_lo), num(band_hi), p.n);
      lo = any ? std::min(lo, p.step) : p.step;
      hi = any ? std::max(hi, p.step) : p.step;
      any = true;
    }
    s += "EOD\n";
  }
  s += "set xlabel " + gnuplot_quote(o.x) + "\n";
  s += "set ylabel " + gnuplot_quote(o.metric) + "\n";
  // Steps are whole numbers: one tick per step while that stays readable.
  if (any && hi - lo <= 20) s += "set xtics 1\n";
  s += "set format x '%.0f'\n";
  if (longest(labels) > 28 || labels.size() > 12) {
    s += "set key outside below center Left reverse\n";
  } else {
    s += "set key outside right top Left reverse\n";
  }
  if (o.by.size() == 1) s += "set key title " + gnuplot_quote(o.by.front()) + "\n";
  std::vector<std::string> bands, lines;
  for (std::size_t i = 0; i < d.curves.size(); ++i) {
    const std::string block = "$group" + std::to_string(i + 1);
    const std::string colour = gnuplot_quote(group_colour(i));
    bands.push_back(block + " using 1:3:4 with filledcurves fc rgb " + colour +
                    " fs transparent solid 0.18 noborder notitle");
    lines.push_back(block + " using 1:2 with linespoints lc rgb " + colour + " lw 2 pt 7 ps 0.5 title " +
                    gnuplot_quote(labels[i] + " (n=" + std::to_string(d.curves[i].runs) + ")"));
  }
  // Bands first, so that no band covers another group's line.
  std::vector<std::string> all = bands;
  all.insert(all.end(), lines.begin(), lines.end());
  s += "plot " + util::join(all, ", \\\n     ") + "\n";
  return s;
}

std::string bar_script(const PlotData& d, ImageFormat format, const fs::path& output) {
  const PlotOptions& o = d.options;
  const auto& rows = d.bars.rows;
  // Colours follow group-value order, as in line plots; bars stay best first.
  std::vector<std::vector<std::string>> order;
  for (const auto& r : rows) order.push_back(r.values);
  std::sort(order.begin(), order.end());
  std::string s = preamble(o, format, output);
  s += "# Columns: position, mean, error bar half-width (0 when a group has one run), runs, colour.\n";
  s += "# The error bar is ± the " +
       std::string(o.band == "ci" ? "95% confidence interval of the mean (Student t)" : "sample standard deviation") +
       " of the per-run " + o.summary + " values.\n";
  s += "$bars << EOD\n";
  std::vector<std::string> ticks, labels;
  double lowest = 0;
  for (std::size_t i = 0; i < rows.size(); ++i) {
    const auto& g = rows[i];
    const double half = o.band == "ci" ? g.ci95 : g.std;
    lowest = std::min(lowest, g.mean - (std::isnan(half) ? 0.0 : half));
    const std::size_t colour_index =
        static_cast<std::size_t>(std::lower_bound(order.begin(), order.end(), g.values) - order.begin());
    const std::string colour = group_colour(colour_index);
    s += fmt::format("{} {} {} {} {}\n", i, num(g.mean), num(std::isnan(half) ? 0.0 : half), g.n,
                     std::stol(colour.substr(1), nullptr, 16));
    labels.push_back(group_label(o.by, g.values) + " (n=" + std::to_string(g.n) + ")");
    ticks.push_back(gnuplot_quote(labels.back()) + " " + std::to_string(i));
  }
  s += "EOD\n";
  s += "set ylabel " + gnuplot_quote(o.metric + " (" + o.summary + ")") + "\n";
  if (o.by.size() == 1) s += "set xlabel " + gnuplot_quote(o.by.front()) + "\n";
  s += "set xtics (" + util::join(ticks, ", ") + ")\n";
  if (longest(labels) * rows.size() > 100) s += "set xtics rotate by -30\n";
  s += fmt::format("set xrange [-0.6:{}]\n", num(static_cast<double>(rows.size()) - 0.4));
  // Bars are read by their length, so they start at zero (unless a value is
  // negative): a cut-off axis would exaggerate small differences.
  if (!(lowest < 0)) s += "set yrange [0:*]\n";
  s += "set boxwidth 0.6\nset style fill solid 0.75 border lc rgb '#333333'\nset grid noxtics\nunset key\n";
  s += "plot $bars using 1:2:3:5 with boxerrorbars lc rgb variable notitle, \\\n"
       "     $bars using 1:($2 + $3):(sprintf('%.4f', $2)) with labels offset 0,0.8 notitle\n";
  return s;
}

}  // namespace

void validate(const PlotOptions& o) {
  check_choice("--x", o.x, {"epoch", "step"});
  check_choice("--band", o.band, {"std", "ci"});
  check_choice("--kind", o.kind, {"line", "bar"});
  check_choice("--summary", o.summary, {"final", "best"});
  if (o.by.empty()) throw std::invalid_argument("plot: give at least one --by key");
}

std::vector<Curve> curves(store::Store& store, const PlotOptions& options) {
  validate(options);
  query::CompareOptions q;
  q.sweep = options.sweep;
  q.metric = options.metric;
  q.by = options.by;
  q.where = options.where;
  std::vector<Curve> out;
  for (const query::RunGroup& g : query::group_runs(store, q)) {
    std::map<std::int64_t, std::vector<double>> at_step;
    for (const std::vector<store::SeriesPoint>& run : store::metric_series(store, g.run_ids, options.metric)) {
      for (const store::SeriesPoint& p : run) at_step[p.step].push_back(p.value);
    }
    Curve c;
    c.values = g.values;
    c.runs = static_cast<std::int64_t>(g.run_ids.size());
    for (const auto& [step, xs] : at_step) {
      const query::GroupRow s = query::describe(xs);
      c.points.push_back({.step = step, .n = s.n, .mean = s.mean, .std = s.std, .ci95 = s.ci95});
    }
    out.push_back(std::move(c));
  }
  return out;
}

std::string group_label(const std::vector<std::string>& by, const std::vector<std::string>& values) {
  if (by.size() == 1 && values.size() == 1) return values.front();
  std::vector<std::string> parts;
  for (std::size_t i = 0; i < by.size() && i < values.size(); ++i) {
    if (values[i] != "(unset)") parts.push_back(by[i] + "=" + values[i]);
  }
  return parts.empty() ? "(all runs)" : util::join(parts, " ");
}

PlotData load_plot(store::Store& store, const PlotOptions& options) {
  validate(options);
  PlotData d;
  d.options = options;
  if (options.kind == "bar") {
    query::CompareOptions q;
    q.sweep = options.sweep;
    q.metric = options.metric;
    q.by = options.by;
    q.where = options.where;
    q.summary = options.summary;
    q.direction = options.direction;
    d.bars = query::compare(store, q);
  } else {
    d.curves = curves(store, options);
  }
  return d;
}

std::string plot_script(const PlotData& data, ImageFormat format, const fs::path& output) {
  return data.options.kind == "bar" ? bar_script(data, format, output) : line_script(data, format, output);
}

const char* group_colour(std::size_t index) { return kColours[index % kColours.size()]; }

}  // namespace reglab::report
