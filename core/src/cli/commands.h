// cli/commands.h — the subcommands of `reglab`, each registering itself on
// the CLI11 app and returning the process exit code through `exit_code`.
#pragma once

#include <CLI/CLI.hpp>

#include <string>

namespace reglab::cli {

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
