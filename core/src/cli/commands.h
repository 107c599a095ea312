// cli/commands.h — the subcommands of `reglab`, each registering itself on
// the CLI11 app and returning the process exit code through `exit_code`.
#pragma once

#include <CLI/CLI.hpp>

#include <optional>
#include <string>

#include "reglab/metric_direction.h"

namespace reglab::cli {

// --higher-is-better / --lower-is-better (at most one): rank by this
// direction instead of the one the compared runs declared for the metric.
// `direction` must outlive the parse (a member of the command's options).
inline void add_direction_flags(CLI::App* cmd, std::optional<MetricDirection>& direction) {
  CLI::Option* higher = cmd->add_flag_callback(
      "--higher-is-better", [&direction] { direction = MetricDirection::kHigher; },
      "rank with higher values best, whatever the runs declared");
  CLI::Option* lower = cmd->add_flag_callback(
      "--lower-is-better", [&direction] { direction = MetricDirection::kLower; },
      "rank with lower values best, whatever the runs declared");
  higher->excludes(lower);
}

struct GlobalOptions {
  std::string db = "results/reglab.db";
};

// Each add_* defines a subcommand and its callback; the callback sets exit_code.
void add_run(CLI::App& app, GlobalOptions& g, int& exit_code);
void add_query(CLI::App& app, GlobalOptions& g, int& exit_code);  // ls, show, compare
void add_plot(CLI::App& app, GlobalOptions& g, int& exit_code);
void add_report(CLI::App& app, GlobalOptions& g, int& exit_code);
void add_serve(CLI::App& app, GlobalOptions& g, int& exit_code);
void add_methods(CLI::App& app, int& exit_code);
void add_probe(CLI::App& app, int& exit_code);
void add_trial(CLI::App& app, int& exit_code);  // hidden: the worker process
void add_cluster(CLI::App& app, GlobalOptions& g, int& exit_code);  // collect, status, cancel, _slurm-element

}  // namespace reglab::cli
