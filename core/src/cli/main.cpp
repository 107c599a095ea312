// reglab — run sweeps of regularisation methods and compare them.
#include <spdlog/spdlog.h>

#include <iostream>

#include "cli/commands.h"
#include "config/config.h"
#include "reglab/version.h"

int main(int argc, char** argv) {
  CLI::App app{
      "reglab — compare regularisation methods fairly and fast.\n\n"
      "  reglab run experiments/quickstart.toml -j 2     run a sweep, then print its comparison table\n"
      "  reglab ls                                       list sweeps (or `reglab ls SWEEP` for its runs)\n"
      "  reglab compare SWEEP --metric test.acc --by method.name\n"
      "  reglab show RUN [--log]                         one run: config, status, summaries, log\n"
      "  reglab plot SWEEP -o curves.png                 learning curves per group: mean over seeds ± band\n"
      "  reglab report SWEEP -o report.html              one self-contained HTML report of a sweep\n"
      "  reglab serve [--port 8080]                      a live dashboard in the browser (read-only)\n"
      "  reglab methods [NAME]                           installed method plugins and their parameters\n"
      "  reglab probe request.json                       evaluate a method's hooks on given tensors\n"
      "  reglab run SWEEP --executor slurm               submit a sweep to Slurm as one job array\n"
      "  reglab status SWEEP | collect SWEEP | cancel SWEEP   follow, merge or cancel it\n",
      "reglab"};
  app.set_version_flag("--version", std::string(reglab::kVersion));
  app.require_subcommand(1);
  app.fallthrough();
  reglab::cli::GlobalOptions global;
  app.add_option("--db", global.db, "results database (SQLite)")->capture_default_str();
  int exit_code = 0;
  reglab::cli::add_run(app, global, exit_code);
  reglab::cli::add_query(app, global, exit_code);
  reglab::cli::add_plot(app, global, exit_code);
  reglab::cli::add_report(app, global, exit_code);
  reglab::cli::add_serve(app, global, exit_code);
  reglab::cli::add_methods(app, exit_code);
  reglab::cli::add_probe(app, exit_code);
  reglab::cli::add_trial(app, exit_code);
  reglab::cli::add_cluster(app, global, exit_code);
  // Every user error exits 2 with one style (README.md, "Exit codes"):
  // `reglab: file:line:col: key 'k': message` where there is a location,
  // `reglab: message` otherwise. CLI11's own codes (105, 106, ...) are not used.
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == static_cast<int>(CLI::ExitCodes::Success)) return app.exit(e);  // --help, --version
    std::cerr << "reglab: " << e.what() << " (see reglab --help)\n";
    return 2;
  } catch (const reglab::config::ConfigError& e) {
    for (const auto& issue : e.issues()) std::cerr << "reglab: " << issue.str() << "\n";
    return 2;
  } catch (const std::exception& e) {
    std::cerr << "reglab: " << e.what() << "\n";
    return 2;
  }
  return exit_code;
}
