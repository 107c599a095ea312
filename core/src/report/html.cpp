// report/html.cpp — the sweep report: tables, curves, differences, failures.
#include "report/html.h"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <map>
#include <set>
#include <stdexcept>

#include "query/compare.h"
#include "reglab/version.h"
#include "report/plot.h"
#include "store/sweep_results.h"
#include "util/util.h"

namespace reglab::report {

namespace {

constexpr const char* kUnset = "(unset)";

// The same fixed precision as `reglab compare`'s table.
std::string human(double x) {
  if (std::isnan(x)) return "n/a";
  if (std::fabs(x) >= 1e6) return fmt::format("{:.3e}", x);
  return fmt::format("{:.4f}", x);
}

// run id -> key -> value (text) for the completed runs of a sweep.
using RunParams = std::map<std::int64_t, std::map<std::string, std::string>>;

RunParams completed_params(store::Store& store, std::int64_t sweep_id) {
  RunParams out;
  store::visit_completed_params(store, sweep_id,
                                [&out](store::RunParam& p) { out[p.run_id][std::move(p.key)] = std::move(p.value); });
  return out;
}

std::string value_of(const std::map<std::string, std::string>& params, const std::string& key) {
  const auto it = params.find(key);
  return it == params.end() ? kUnset : it->second;
}

std::size_t partition_size(const RunParams& runs, const std::vector<std::string>& keys) {
  std::set<std::vector<std::string>> seen;
  for (const auto& [id, p] : runs) {
    std::vector<std::string> t;
    for (const auto& k : keys) t.push_back(value_of(p, k));
    seen.insert(std::move(t));
  }
  return seen.size();
}

std::vector<std::string> varying(const RunParams& runs) {
  std::set<std::string> keys;
  for (const auto& [id, p] : runs)
    for (const auto& [k, v] : p) keys.insert(k);
  std::vector<std::string> out;
  for (const auto& k : keys) {
    if (k == "seed") continue;
    if (partition_size(runs, {k}) > 1) out.push_back(k);
  }
  return out;
}

// Final-summary metric keys of the completed runs.
std::vector<std::string> present_metrics(store::Store& store, std::int64_t sweep_id) {
  return store::completed_summary_keys(store, sweep_id, "final");
}

std::vector<std::string> report_metrics(const std::vector<std::string>& present) {
  std::vector<std::string> out;
  for (const char* m : {"test.acc", "test.nll", "test.ece", "test.aurc"}) {
    if (std::find(present.begin(), present.end(), m) != present.end()) out.emplace_back(m);
  }
  if (!out.empty()) return out;
  for (const auto& m : present) {
    if (!util::starts_with(m, "time.") && m != "lr") out.push_back(m);
  }
  return out;
}

std::string anchor(const std::string& metric) {
  std::string a = "m-";
  for (char c : metric) a += std::isalnum(static_cast<unsigned char>(c)) ? c : '-';
  return a;
}

const char* kStyle = R"(
body { font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: #222;
       max-width: 1100px; margin: 2em auto; padding: 0 1em; }
h1 { margin-bottom: .2em; } h2 { margin-top: 2em; border-bottom: 1px solid #ddd; padding-bottom: .2em; }
.meta, .note { color: #555; } nav a { margin-right: 1em; }
table { border-collapse: collapse; margin: .6em 0 1.2em; font-variant-numeric: tabular-nums; }
th, td { border: 1px solid #ddd; padding: .25em .6em; text-align: left; vertical-align: top; }
th { background: #f4f4f4; } td.num { text-align: right; white-space: nowrap; }
tr.best td { background: #eef7ee; font-weight: 600; }
pre { background: #f7f7f7; border: 1px solid #e3e3e3; padding: .6em; overflow-x: auto;
      white-space: pre-wrap; word-break: break-word; font-size: 13px; }
figure { margin: 1em 0 2em; } figure svg { max-width: 100%; height: auto; }
figcaption { color: #555; font-size: 14px; }
.failed { border-left: 4px solid #d62728; padding-left: .8em; margin-bottom: 1.5em; }
.swatch { display: inline-block; width: .8em; height: .8em; margin-right: .4em; border-radius: 2px; }
)";

class Html {
 public:
  Html& raw(std::string_view s) {
    out_ += s;
    return *this;
  }
  Html& text(std::string_view s) { return raw(html_escape(s)); }
  Html& el(const char* tag, std::string_view content, const char* attrs = "") {
    out_ += fmt::format("<{}{}{}>", tag, *attrs ? " " : "", attrs);
    out_ += html_escape(content);
    out_ += fmt::format("</{}>", tag);
    return *this;
  }
  std::string take() { return std::move(out_); }

 private:
  std::string out_;
};

void comparison_table(Html& o, const query::CompareResult& r, const std::vector<std::string>& by,
                      const std::vector<std::vector<std::string>>& colour_order) {
  o.raw("<table>\n<thead><tr><th>group</th><th>mean ± std</th><th>95% CI</th><th>n</th><th>min</th><th>max</th>"
        "</tr></thead>\n<tbody>\n");
  for (const auto& g : r.rows) {
    const auto idx = static_cast<std::size_t>(
        std::find(colour_order.begin(), colour_order.end(), g.values) - colour_order.begin());
    o.raw(g.best ? "<tr class=\"best\">" : "<tr>");
    o.raw(fmt::format("<td><span class=\"swatch\" style=\"background:{}\"></span>", group_colour(idx)));
    o.text(group_label(by, g.values));
    if (g.best) o.raw(" ◀ best");
    o.raw("</td>");
    o.el("td", human(g.mean) + " ± " + human(g.std), "class=\"num\"");
    o.el("td", std::isnan(g.ci95) ? "n/a" : "±" + human(g.ci95), "class=\"num\"");
    o.el("td", std::to_string(g.n), "class=\"num\"");
    o.el("td", human(g.min), "class=\"num\"");
    o.el("td", human(g.max), "class=\"num\"");
    o.raw("</tr>\n");
  }
  o.raw("</tbody>\n</table>\n");
}

std::string counts_text(const std::map<std::string, int>& counts) {
  std::vector<std::string> parts;
  for (const auto& [k, n] : counts) parts.push_back(k + " (" + std::to_string(n) + ")");
  return parts.empty() ? "none" : util::join(parts, ", ");
}

}  // namespace

std::string html_escape(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&#39;"; break;
      default: out += c;
    }
  }
  return out;
}

std::string inline_svg(std::string_view svg, std::string_view id_prefix) {
  const auto start = svg.find("<svg");
  if (start == std::string_view::npos) throw std::runtime_error("gnuplot's output holds no <svg> element");
  svg.remove_prefix(start);
  std::string out;
  out.reserve(svg.size() + 1024);
  // gnuplot escapes '<' and '&' in text, so '<' always opens a tag and
  // rewriting only inside tags never touches a label.
  bool in_tag = false;
  for (std::size_t i = 0; i < svg.size();) {
    const std::string_view rest = svg.substr(i);
    if (!in_tag) {
      if (rest.starts_with("<title>")) {
        const auto end = rest.find("</title>");
        if (end != std::string_view::npos) {
          i += end + 8;
          continue;
        }
      }
      if (svg[i] == '<') in_tag = true;
      out += svg[i++];
      continue;
    }
    if (svg[i] == '>') {
      in_tag = false;
      out += svg[i++];
      continue;
    }
    bool done = false;
    for (const std::string_view ns : {" xmlns=\"", " xmlns:xlink=\""}) {
      if (rest.starts_with(ns)) {
        const auto close = rest.find('"', ns.size());
        if (close != std::string_view::npos) {
          i += close + 1;
          done = true;
        }
        break;
      }
    }
    if (done) continue;
    for (const std::string_view ref : {"id='", "id=\"", "href='#", "href=\"#", "url(#"}) {
      if (rest.starts_with(ref)) {
        out += ref;
        out += id_prefix;
        i += ref.size();
        done = true;
        break;
      }
    }
    if (!done) out += svg[i++];
  }
  return out;
}

std::vector<std::string> varying_keys(store::Store& store, std::int64_t sweep_id) {
  return varying(completed_params(store, sweep_id));
}

std::vector<std::string> default_grouping(store::Store& store, std::int64_t sweep_id) {
  const RunParams runs = completed_params(store, sweep_id);
  std::vector<std::string> chosen = {"method.name"};
  std::size_t parts = partition_size(runs, chosen);
  for (const auto& k : varying(runs)) {
    if (k == "method.name") continue;
    std::vector<std::string> more = chosen;
    more.push_back(k);
    const std::size_t n = partition_size(runs, more);
    if (n > parts) {
      chosen = std::move(more);
      parts = n;
    }
  }
  return chosen;
}

std::string build_report(store::Store& store, const ReportOptions& options) {
  const auto sweep = store.find_sweep(options.sweep);
  if (!sweep) {
    // group_runs words the unknown-sweep error for every command alike
    // (with the sweeps present and a "did you mean").
    query::CompareOptions q;
    q.sweep = options.sweep;
    query::group_runs(store, q);
    throw std::runtime_error("unknown sweep '" + options.sweep + "'");
  }
  const auto runs = store.list_runs(sweep->id);
  const std::vector<std::string> by = options.by.empty() ? default_grouping(store, sweep->id) : options.by;
  const std::vector<std::string> present = present_metrics(store, sweep->id);
  const std::vector<std::string> metrics = options.metrics.empty() ? report_metrics(present) : options.metrics;

  std::map<std::string, int> status_counts;
  for (const auto& r : runs) ++status_counts[store::to_string(r.status)];

  Html o;
  o.raw("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\"/>\n");
  o.raw("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"/>\n");
  // Nothing may load from anywhere: the page is complete as it is.
  o.raw("<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'\"/>\n");
  o.raw("<title>").text("reglab report: " + sweep->name).raw("</title>\n");
  o.raw("<style>").raw(kStyle).raw("</style>\n</head>\n<body>\n");

  o.raw("<h1>").text("Sweep " + sweep->name).raw("</h1>\n");
  if (!sweep->description.empty()) o.el("p", sweep->description, "class=\"desc\"").raw("\n");
  o.el("p",
       "Created " + sweep->created_at + " · report generated " + util::now_iso8601() + " by reglab " +
           std::string(kVersion) + " from " + store.path().string(),
       "class=\"meta\"")
      .raw("\n");
  o.el("p", std::to_string(runs.size()) + " runs: " + counts_text(status_counts), "class=\"meta\"").raw("\n");
  o.raw("<nav><a href=\"#comparison\">Comparison</a><a href=\"#curves\">Curves</a>"
        "<a href=\"#differences\">Config differences</a><a href=\"#failures\">Failed runs</a>"
        "<a href=\"#runs\">All runs</a><a href=\"#environment\">Environment</a><a href=\"#toml\">Sweep TOML</a>"
        "</nav>\n");

  // Groups of the first metric fix the colour of each group everywhere.
  std::vector<query::RunGroup> groups;
  std::string group_error;
  if (!metrics.empty()) {
    query::CompareOptions q;
    q.sweep = sweep->name;
    q.metric = metrics.front();
    q.by = by;
    try {
      groups = query::group_runs(store, q);
    } catch (const std::runtime_error& e) {
      group_error = e.what();
    }
  }
  std::vector<std::vector<std::string>> colour_order;
  for (const auto& g : groups) colour_order.push_back(g.values);

  // --- comparison tables
  o.raw("<section id=\"comparison\">\n<h2>Comparison</h2>\n");
  o.el("p",
       "Groups by " + util::join(by, ", ") + (options.by.empty() ? " (the config keys that tell the runs apart)" : "") +
           "; seeds pooled. Per-run value: the final value of each metric; mean ± sample std, the 95% confidence "
           "interval of the mean (Student t) and n over the completed runs of each group.",
       "class=\"note\"")
      .raw("\n");
  if (metrics.empty()) {
    o.el("p", "No completed run has logged a metric yet.", "class=\"note\"").raw("\n");
  }
  for (const auto& m : metrics) {
    query::CompareOptions q;
    q.sweep = sweep->name;
    q.metric = m;
    q.by = by;
    q.direction = options.direction;
    std::optional<query::CompareResult> result;
    std::string error;
    try {
      result = query::compare(store, q);
    } catch (const std::runtime_error& e) {
      error = e.what();
    }
    // The direction is the compared runs' declaration (or the override), so
    // the heading waits for the comparison.
    o.raw(fmt::format("<h3 id=\"{}\">", anchor(m)))
        .text(m)
        .raw(" <small>")
        .text(result ? std::string("final, ") + query::direction_words(result->direction) : std::string("final"))
        .raw("</small></h3>\n");
    if (result) {
      comparison_table(o, *result, by, colour_order);
    } else {
      o.el("p", error, "class=\"note\"").raw("\n");
    }
  }
  o.raw("</section>\n");

  // --- curves
  o.raw("<section id=\"curves\">\n<h2>Curves</h2>\n");
  if (!options.plots) {
    o.el("p", "Curves left out (--no-plots).", "class=\"note\"").raw("\n");
  } else {
    for (std::size_t i = 0; i < metrics.size(); ++i) {
      PlotOptions p;
      p.sweep = sweep->name;
      p.metric = metrics[i];
      p.by = by;
      p.band = options.band;
      PlotData data;
      try {
        data = load_plot(store, p);
      } catch (const std::runtime_error& e) {
        o.el("p", metrics[i] + ": " + e.what(), "class=\"note\"").raw("\n");
        continue;
      }
      const std::string svg = render(
          [&data](const std::filesystem::path& out) { return plot_script(data, ImageFormat::kSvg, out); },
          ImageFormat::kSvg, options.gnuplot);
      o.raw("<figure>\n").raw(inline_svg(svg, "p" + std::to_string(i + 1) + "-")).raw("\n<figcaption>");
      o.text(metrics[i] + " per step: mean over each group's runs, band ± " +
             (options.band == "ci" ? std::string("95% CI of the mean") : std::string("sample std")) + ".");
      o.raw("</figcaption>\n</figure>\n");
    }
  }
  o.raw("</section>\n");

  // --- configuration keys that differ between groups
  o.raw("<section id=\"differences\">\n<h2>Config differences</h2>\n");
  const RunParams params = completed_params(store, sweep->id);
  // The grouping keys are in each group's name already.
  std::vector<std::string> keys;
  for (const auto& k : varying(params)) {
    if (std::find(by.begin(), by.end(), k) == by.end()) keys.push_back(k);
  }
  if (groups.empty()) {
    o.el("p", group_error.empty() ? "No completed runs." : group_error, "class=\"note\"").raw("\n");
  } else {
    o.el("p",
         "Config keys whose values differ between completed runs, besides the grouping keys (" + util::join(by, ", ") +
             "), with every value each group's runs have" + (keys.empty() ? ": none." : "."),
         "class=\"note\"")
        .raw("\n");
    o.raw("<table>\n<thead><tr><th>group</th><th>runs</th><th>seeds</th>");
    for (const auto& k : keys) o.el("th", k);
    o.raw("</tr></thead>\n<tbody>\n");
    for (const auto& g : groups) {
      o.raw("<tr>").el("td", group_label(by, g.values)).el("td", std::to_string(g.run_ids.size()), "class=\"num\"");
      std::set<std::string> seeds;
      for (const auto id : g.run_ids) seeds.insert(value_of(params.at(id), "seed"));
      o.el("td", util::join(std::vector<std::string>(seeds.begin(), seeds.end()), ", "));
      for (const auto& k : keys) {
        std::set<std::string> vals;
        for (const auto id : g.run_ids) vals.insert(value_of(params.at(id), k));
        o.el("td", util::join(std::vector<std::string>(vals.begin(), vals.end()), ", "));
      }
      o.raw("</tr>\n");
    }
    o.raw("</tbody>\n</table>\n");
  }
  o.raw("</section>\n");

  // --- failed and interrupted runs
  o.raw("<section id=\"failures\">\n<h2>Failed runs</h2>\n");
  int failures = 0;
  for (const auto& r : runs) {
    if (r.status != store::RunStatus::kFailed && r.status != store::RunStatus::kInterrupted) continue;
    ++failures;
    o.raw("<div class=\"failed\">\n<h3>").text("Run " + std::to_string(r.id) + ": " + r.label).raw("</h3>\n");
    o.el("p",
         std::string(store::to_string(r.status)) + " after " + std::to_string(r.attempts) + " attempt(s) on " +
             (r.host.empty() ? "?" : r.host) + ", finished " + (r.finished_at.empty() ? "?" : r.finished_at) +
             ", key " + r.key,
         "class=\"meta\"")
        .raw("\n");
    o.el("pre", r.error.empty() ? "(no error recorded)" : r.error).raw("\n");
    const std::string tail = r.log_path.empty() ? "" : util::tail_file(r.log_path, options.log_lines);
    o.raw("<details><summary>").text("Log tail (" + (r.log_path.empty() ? "no log" : r.log_path) + ")").raw("</summary>");
    o.el("pre", tail.empty() ? "(log not found)" : tail).raw("</details>\n</div>\n");
  }
  if (failures == 0) o.el("p", "None.", "class=\"note\"").raw("\n");
  o.raw("</section>\n");

  // --- every run
  o.raw("<section id=\"runs\">\n<h2>All runs</h2>\n<details><summary>").text(std::to_string(runs.size()) + " runs");
  o.raw("</summary>\n<table>\n<thead><tr><th>run</th><th>trial</th><th>status</th><th>attempts</th><th>duration</th>");
  for (const auto& m : metrics) o.el("th", m);
  o.raw("</tr></thead>\n<tbody>\n");
  for (const auto& r : runs) {
    o.raw("<tr>").el("td", std::to_string(r.id), "class=\"num\"").el("td", r.label).el("td", store::to_string(r.status));
    o.el("td", std::to_string(r.attempts), "class=\"num\"").el("td", fmt::format("{:.1f} s", r.duration_s), "class=\"num\"");
    for (const auto& m : metrics) {
      const auto v = store.summary(r.id, m, "final");
      o.el("td", v ? human(*v) : "-", "class=\"num\"");
    }
    o.raw("</tr>\n");
  }
  o.raw("</tbody>\n</table>\n</details>\n</section>\n");

  // --- environment
  std::map<std::string, int> hosts, revs, plugins;
  for (const auto& r : runs) {
    if (r.status == store::RunStatus::kPending) continue;
    ++hosts[r.host.empty() ? "?" : r.host];
    ++revs[r.git_rev.empty() ? "?" : r.git_rev];
    ++plugins[r.method_name + " " + (r.method_version.empty() ? "?" : r.method_version)];
  }
  o.raw("<section id=\"environment\">\n<h2>Environment</h2>\n<table>\n<tbody>\n");
  o.raw("<tr><th>hosts</th>").el("td", counts_text(hosts)).raw("</tr>\n");
  o.raw("<tr><th>git revisions</th>").el("td", counts_text(revs)).raw("</tr>\n");
  o.raw("<tr><th>method plugins</th>").el("td", counts_text(plugins)).raw("</tr>\n");
  o.raw("<tr><th>reglab</th>").el("td", std::string(kVersion) + " (this report)").raw("</tr>\n");
  o.raw("</tbody>\n</table>\n");
  o.el("p", "Counts are runs that have started; the git revision is the source tree's when the run started.",
       "class=\"note\"")
      .raw("\n</section>\n");

  // --- the sweep's TOML
  o.raw("<section id=\"toml\">\n<h2>Sweep TOML</h2>\n");
  o.el("pre", sweep->toml.empty() ? "(not recorded)" : sweep->toml).raw("\n</section>\n");

  o.raw("</body>\n</html>\n");
  return o.take();
}

}  // namespace reglab::report
