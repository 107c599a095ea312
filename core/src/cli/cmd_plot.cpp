// `reglab plot`: learning curves or bar charts of a sweep, drawn by gnuplot.
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>

#include "cli/commands.h"
#include "report/plot.h"
#include "store/store.h"

namespace reglab::cli {

namespace fs = std::filesystem;

namespace {

struct PlotArgs {
  report::PlotOptions plot;
  std::vector<std::string> by, where;
  std::string output, keep_script;
};

void write_file(const fs::path& path, const std::string& bytes) {
  if (path.has_parent_path()) fs::create_directories(path.parent_path());
  // Written beside the target and renamed, so a reader never sees half a file.
  const fs::path tmp = path.string() + ".part";
  {
    std::ofstream f(tmp, std::ios::binary);
    f << bytes;
    if (!f) throw std::runtime_error("cannot write " + tmp.string());
  }
  fs::rename(tmp, path);
}

int plot_command(PlotArgs& a, const GlobalOptions& g) {
  // The extension is checked before anything is read, so a typo costs nothing.
  const report::ImageFormat format = report::image_format(a.output);
  if (!a.by.empty()) a.plot.by = a.by;
  for (const auto& w : a.where) {
    const auto eq = w.find('=');
    if (eq == std::string::npos) throw std::runtime_error("--where expects KEY=VALUE, got '" + w + "'");
    a.plot.where.emplace_back(w.substr(0, eq), w.substr(eq + 1));
  }
  report::validate(a.plot);
  if (!fs::exists(g.db)) throw std::runtime_error("no results database at " + g.db + " (run a sweep first, or pass --db)");
  store::Store store(g.db, store::ReadOnly{});
  const report::PlotData data = report::load_plot(store, a.plot);
  const fs::path output = fs::absolute(a.output);
  if (!a.keep_script.empty()) {
    // Kept before drawing, so a script gnuplot rejects can be read and fixed.
    write_file(a.keep_script, report::plot_script(data, format, output));
  }
  std::string image;
  try {
    image = report::render([&data, format](const fs::path& out) { return report::plot_script(data, format, out); },
                           format);
  } catch (const std::runtime_error& e) {
    if (!a.keep_script.empty()) throw;
    throw std::runtime_error(std::string(e.what()) + "\n(add --keep-script plot.gp to keep the script gnuplot was given)");
  }
  write_file(output, image);
  const std::size_t groups = a.plot.kind == "bar" ? data.bars.rows.size() : data.curves.size();
  std::cout << "wrote " << a.output << ": " << a.plot.metric << ", " << groups << " group(s)";
  if (!a.keep_script.empty()) std::cout << "; gnuplot script " << a.keep_script;
  std::cout << "\n";
  return 0;
}

}  // namespace

void add_plot(CLI::App& app, GlobalOptions& g, int& exit_code) {
  auto a = std::make_shared<PlotArgs>();
  CLI::App* cmd = app.add_subcommand(
      "plot", "Plot a sweep: one curve per group (mean over seeds, shaded band), or bars of the final values.");
  cmd->footer(
      "Runs are grouped as `reglab compare` groups them (completed runs, --by keys, --where filters).\n"
      "A line plot has one curve per group: at each epoch, the mean over the group's runs with a band\n"
      "of ± the sample std (--band std) or ± the 95% confidence interval of the mean (--band ci). A bar\n"
      "chart (--kind bar) shows each group's mean final (or best) value with the same error bar.\n"
      "The format follows the extension of -o: .png or .svg. Drawing needs gnuplot (Debian package\n"
      "gnuplot-nox; REGLAB_GNUPLOT names another executable); --keep-script saves the self-contained\n"
      "gnuplot script (data included) to restyle the figure and re-run it with `gnuplot FILE`.\n\n"
      "Examples:\n"
      "  reglab plot quickstart -o curves.png\n"
      "  reglab plot quickstart --metric test.ece --band ci -o ece.svg\n"
      "  reglab plot lr_study --metric test.acc --by method.name --by optim.lr --where optim.name=sgd -o acc.png\n"
      "  reglab plot quickstart --metric train.flipped_acc --kind bar --summary best -o memorised.png\n"
      "  reglab plot quickstart -o curves.svg --keep-script curves.gp   # then edit curves.gp; gnuplot curves.gp");
  cmd->add_option("sweep", a->plot.sweep, "sweep name (see `reglab ls`)")->required();
  cmd->add_option("-o,--output", a->output, "image to write: FILE.png or FILE.svg")->required();
  cmd->add_option("--metric", a->plot.metric, "metric key (test.acc, test.nll, test.ece, train.loss, ...)")
      ->capture_default_str();
  cmd->add_option("--by", a->by, "config key to group by (repeatable; default method.name)");
  cmd->add_option("--where", a->where, "only runs whose config KEY=VALUE (repeatable)");
  cmd->add_option("--x", a->plot.x, "x-axis label for the step column: epoch or step")
      ->check(CLI::IsMember({"epoch", "step"}))->capture_default_str();
  cmd->add_option("--band", a->plot.band, "spread shown: std (sample std over runs) or ci (95% CI of the mean)")
      ->check(CLI::IsMember({"std", "ci"}))->capture_default_str();
  cmd->add_option("--kind", a->plot.kind, "line (curves over epochs) or bar (per-run final/best value)")
      ->check(CLI::IsMember({"line", "bar"}))->capture_default_str();
  cmd->add_option("--summary", a->plot.summary, "bar charts: per-run value, final or best")
      ->check(CLI::IsMember({"final", "best"}))->capture_default_str();
  add_direction_flags(cmd, a->plot.direction);  // bar charts: which bar is best
  cmd->add_option("--title", a->plot.title, "plot title (default: sweep, metric and band)");
  cmd->add_option("--keep-script", a->keep_script, "also write the gnuplot script (self-contained) to this file");
  cmd->callback([a, &g, &exit_code] { exit_code = plot_command(*a, g); });
}

}  // namespace reglab::cli
