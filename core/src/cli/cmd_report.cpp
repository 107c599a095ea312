// `reglab report`: one self-contained HTML page about a sweep.
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>

#include "cli/commands.h"
#include "report/html.h"
#include "store/store.h"

namespace reglab::cli {

namespace fs = std::filesystem;

namespace {

struct ReportArgs {
  report::ReportOptions report;
  std::string output;
  bool no_plots = false;
};

int report_command(ReportArgs& a, const GlobalOptions& g) {
  if (!fs::exists(g.db)) throw std::runtime_error("no results database at " + g.db + " (run a sweep first, or pass --db)");
  a.report.plots = !a.no_plots;
  store::Store store(g.db, store::ReadOnly{});
  const std::string html = report::build_report(store, a.report);
  const fs::path out(a.output);
  if (out.has_parent_path()) fs::create_directories(out.parent_path());
  // Written beside the target and renamed, so a browser never loads half a page.
  const fs::path tmp = out.string() + ".part";
  {
    std::ofstream f(tmp, std::ios::binary);
    f << html;
    if (!f) throw std::runtime_error("cannot write " + tmp.string());
  }
  fs::rename(tmp, out);
  std::cout << "wrote " << a.output << " (" << html.size() / 1024 << " KiB, self-contained: open it in any browser)\n";
  return 0;
}

}  // namespace

void add_report(CLI::App& app, GlobalOptions& g, int& exit_code) {
  auto a = std::make_shared<ReportArgs>();
  CLI::App* cmd =
      app.add_subcommand("report", "Write one self-contained HTML report of a sweep: tables, curves, failures.");
  cmd->footer(
      "The page holds the sweep's description and TOML, a comparison table per metric (mean ± std,\n"
      "95% CI, n over seeds; the best group marked), the learning curves (inline SVG drawn by gnuplot),\n"
      "the config keys that differ between groups, failed runs with their errors and log tails, and\n"
      "the environment (hosts, git revisions, plugin versions). It loads nothing from anywhere: mail it,\n"
      "archive it, open it offline. Metrics default to test.acc, test.nll, test.ece and test.aurc (those\n"
      "present); groups default to method.name plus every config key that tells the runs apart (seeds\n"
      "pooled). Curves need gnuplot (Debian package gnuplot-nox); --no-plots does without.\n\n"
      "Examples:\n"
      "  reglab report quickstart -o quickstart.html\n"
      "  reglab report lr_study --metric test.acc --metric train.flipped_acc --by method.name -o lr.html\n"
      "  reglab report quickstart --band ci --no-plots -o tables.html");
  cmd->add_option("sweep", a->report.sweep, "sweep name (see `reglab ls`)")->required();
  cmd->add_option("-o,--output", a->output, "HTML file to write")->required();
  cmd->add_option("--metric", a->report.metrics, "metric to tabulate and plot (repeatable; default: the main test metrics)");
  cmd->add_option("--by", a->report.by, "config key to group by (repeatable; default: the keys that tell runs apart)");
  cmd->add_option("--band", a->report.band, "curves' band: std or ci (95% CI of the mean)")
      ->check(CLI::IsMember({"std", "ci"}))->capture_default_str();
  cmd->add_flag("--no-plots", a->no_plots, "leave the curves out (gnuplot not needed)");
  cmd->add_option("--log-lines", a->report.log_lines, "log lines shown per failed run")->capture_default_str();
  add_direction_flags(cmd, a->report.direction);
  cmd->callback([a, &g, &exit_code] { exit_code = report_command(*a, g); });
}

}  // namespace reglab::cli
