// report/html.h — one self-contained HTML report of a sweep.
//
// The report is a single file that works offline: inline CSS, plots as
// inline SVG drawn by gnuplot, no scripts, fonts, images or links outside
// the page, and a Content-Security-Policy that forbids loading anything
// should a string ever slip through. Every string that comes from the store
// (names, labels, config values, errors, logs, the sweep's TOML) passes
// through html_escape. Stateless. No torch.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "report/gnuplot.h"
#include "store/store.h"

namespace reglab::report {

// Text made safe for HTML element content and quoted attribute values:
// & < > " ' become character references; everything else is unchanged.
std::string html_escape(std::string_view text);

// A gnuplot SVG document made fit to sit inside an HTML page: the XML prolog,
// DOCTYPE, namespace declarations and <title> go, and every id, with each
// reference to it (href="#…", url(#…)), gets `id_prefix`, so several plots
// can share one page. Text content is left alone.
std::string inline_svg(std::string_view svg, std::string_view id_prefix);

struct ReportOptions {
  std::string sweep;
  // Metrics to tabulate and plot; empty: test.acc, test.nll, test.ece and
  // test.aurc, those the completed runs have; failing that, every metric
  // they have except time.* and lr.
  std::vector<std::string> metrics;
  // Config keys to group by; empty: default_grouping().
  std::vector<std::string> by;
  std::string band = "std";  // curves' band: "std" or "ci"
  bool plots = true;         // false: no curves, and gnuplot is not needed
  std::string gnuplot = default_gnuplot();
  std::size_t log_lines = 40;  // log tail shown per failed run
  // Rank every tabulated metric by this direction instead of the runs'
  // declarations (--higher-is-better / --lower-is-better).
  std::optional<MetricDirection> direction;
};

// The config keys whose values are not the same in every completed run of
// the sweep (a key some runs lack counts as differing), except `seed`;
// sorted.
std::vector<std::string> varying_keys(store::Store& store, std::int64_t sweep_id);

// The keys a report groups by when none are given: method.name, then each
// other varying key (in order) that splits the runs further. A key whose
// value follows from the keys already chosen (method.epsilon from
// method.name in a sweep with one epsilon per method) adds nothing, and
// seeds are pooled. method.name alone when nothing but the seed varies.
std::vector<std::string> default_grouping(store::Store& store, std::int64_t sweep_id);

// The report as one HTML document. std::runtime_error for an unknown sweep
// (listing the sweeps), and when plots are on and gnuplot cannot draw them.
std::string build_report(store::Store& store, const ReportOptions& options);

}  // namespace reglab::report
