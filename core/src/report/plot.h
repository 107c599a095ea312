// report/plot.h — learning curves and bar charts of a sweep, as gnuplot scripts.
//
// Groups runs exactly as `reglab compare` does (query::group_runs: completed
// runs that logged the metric, filtered by `where`, grouped by the `by`
// config keys), so a plot and a comparison table of the same options always
// show the same groups. A line plot has one curve per group: at each step
// the mean over the group's runs that logged that step, with a shaded band
// of ± the sample standard deviation or ± the 95% confidence interval of the
// mean (Student t); the band is absent where fewer than two runs logged the
// step. A bar chart shows each group's mean per-run summary ("final" or
// "best") with the same kind of error bar.
//
// Scripts are self-contained: the data sit in the script as datablocks, so a
// kept script can be edited and re-run with plain `gnuplot file.gp`. Every
// string from the store reaches gnuplot through gnuplot_quote and is drawn
// with `noenhanced` text, so no label can inject commands or markup.
// Stateless. No torch.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "query/compare.h"
#include "report/gnuplot.h"
#include "store/store.h"

namespace reglab::report {

struct PlotOptions {
  std::string sweep;
  std::string metric = "test.acc";
  std::vector<std::string> by = {"method.name"};
  std::vector<std::pair<std::string, std::string>> where;  // config key == value
  std::string x = "epoch";        // x-axis label for the step column: "epoch" or "step"
  std::string band = "std";       // "std" or "ci" (95% confidence interval of the mean)
  std::string kind = "line";      // "line" (curves over steps) or "bar" (per-run summary)
  std::string summary = "final";  // bar charts: "final" or "best"
  std::string title;              // empty: a title naming the sweep, metric and band
  // Bar charts: rank by this direction instead of the runs' declarations.
  std::optional<MetricDirection> direction;
};

// std::invalid_argument naming the option and its choices for a bad x, band,
// kind or summary.
void validate(const PlotOptions& options);

struct CurvePoint {
  std::int64_t step = 0;
  std::int64_t n = 0;  // runs of the group that logged this step
  double mean = 0, std = 0, ci95 = 0;  // query::describe of those runs' values
};

struct Curve {
  std::vector<std::string> values;  // the group: one value per `by` key
  std::int64_t runs = 0;
  std::vector<CurvePoint> points;   // ascending step
};

// One curve per group, in query::group_runs order (by group values). Errors
// as query::compare (unknown sweep, metric or key, empty `where`).
std::vector<Curve> curves(store::Store& store, const PlotOptions& options);

// The legend text of a group: its value when grouping by one key, else
// "key=value key=value" leaving out keys the group does not set.
std::string group_label(const std::vector<std::string>& by, const std::vector<std::string>& values);

// Everything a plot needs from the store, read once; scripts for any output.
struct PlotData {
  PlotOptions options;
  std::vector<Curve> curves;      // kind "line"
  query::CompareResult bars;      // kind "bar"
};
PlotData load_plot(store::Store& store, const PlotOptions& options);

// The gnuplot script drawing `data` into `output` (png through pngcairo when
// the gnuplot at hand has it, else its libgd png; or svg).
std::string plot_script(const PlotData& data, ImageFormat format, const std::filesystem::path& output);

// The colour of the group at `index` in group-value order, "#rrggbb" (ten
// colours, then repeating): line and bar plots of the same groups match.
const char* group_colour(std::size_t index);

}  // namespace reglab::report
