// `reglab _trial`: the worker process of one trial (started by `reglab run`).
#include "cli/commands.h"
#include "runner/trial.h"

namespace reglab::cli {

void add_trial(CLI::App& app, int& exit_code) {
  auto o = std::make_shared<runner::TrialProcessOptions>();
  auto db = std::make_shared<std::string>();
  CLI::App* cmd = app.add_subcommand("_trial", "");  // empty description: hidden from --help
  cmd->group("");
  cmd->add_option("--db", *db)->required();
  cmd->add_option("--run", o->run_id)->required();
  cmd->add_option("--threads", o->threads);
  cmd->add_option("--spawned-at", o->spawned_at);
  cmd->add_option("--lease-fd", o->lease_fd);
  cmd->callback([o, db, &exit_code] {
    o->db = *db;
    exit_code = runner::run_trial_process(*o);
  });
}

}  // namespace reglab::cli
