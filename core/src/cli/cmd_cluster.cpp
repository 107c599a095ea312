// `reglab collect`, `reglab status`, `reglab cancel` and the hidden
// `reglab _slurm-element`: the Slurm side of a sweep (see cluster/submit.h).
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <map>

#include "cli/commands.h"
#include "runner/lease.h"
#include "cluster/submit.h"
#include "runner/slurm_element.h"
#include "store/store.h"
#include "sweep/stage.h"

namespace reglab::cli {

namespace fs = std::filesystem;

namespace {

int collect_one(store::Store& main, const std::string& sweep, const GlobalOptions& g);

// The sweep, and the stages (init.from) its trials may have run first.
int collect_command(const std::string& sweep, const GlobalOptions& g) {
  store::Store main(g.db);
  int rc = 0;
  if (sweep != sweep::kStagesSweep && main.find_sweep(sweep) && main.find_sweep(sweep::kStagesSweep))
    rc = collect_one(main, sweep::kStagesSweep, g);
  return std::max(rc, collect_one(main, sweep, g));
}

int collect_one(store::Store& main, const std::string& sweep, const GlobalOptions& g) {
  const auto sw = main.find_sweep(sweep);
  if (!sw) {
    std::cerr << "reglab: no sweep named '" << sweep << "' in " << g.db << " (see `reglab ls`)\n";
    return 2;
  }
  cluster::SlurmClient slurm;
  cluster::SlurmView view;
  try {
    view = cluster::view_of_sweep(main, sw->id, slurm);
  } catch (const std::exception& e) {
    std::cerr << "reglab: Slurm is not reachable (" << e.what() << "); merging the shards only\n";
  }
  const auto r = cluster::collect_sweep(main, sweep, fs::absolute(g.db).parent_path(), view);
  std::printf("sweep %s: %d shard(s) merged, %d already merged, %d skipped (run already complete), %d still running; "
              "%d run(s) recorded as failed from Slurm's view\n",
              sweep.c_str(), r.merged, r.already_merged, r.run_completed, r.in_progress, r.failed_by_slurm);
  for (const auto& p : r.problems) std::fprintf(stderr, "reglab: %s\n", p.c_str());
  return r.problems.empty() ? 0 : 1;
}

std::string element_text(const cluster::ElementId& e) {
  if (e.first == 0) return "-";
  return std::to_string(e.first) + "_" + std::to_string(e.second);
}

int status_command(const std::string& sweep, bool all, const GlobalOptions& g) {
  if (!std::filesystem::exists(g.db)) throw std::runtime_error("no results database at " + g.db + " (pass --db)");
  store::Store main(g.db, store::ReadOnly{});  // status only reads
  cluster::SlurmClient slurm;
  const auto rows = cluster::sweep_status(main, sweep, slurm);
  // One word per run: what a person wants to know first.
  auto verdict = [](const cluster::RunState& s) -> std::string {
    if (s.store_status == "completed") return "completed";
    if (s.store_status == "failed") return "failed";
    if (!s.slurm.state.empty()) {
      if (s.slurm.state == "RUNNING" || s.slurm.state == "COMPLETING") return "running";
      if (s.slurm.state == "PENDING" || s.slurm.state == "REQUEUED" || s.slurm.state == "CONFIGURING") return "pending";
      if (s.slurm.state != "COMPLETED") return "failed";
      return s.shard_status == "completed" ? "done (not collected)" : "ended";
    }
    if (s.shard_status == "running") return "running";
    return s.store_status;
  };
  std::map<std::string, int> counts;
  for (const auto& s : rows) ++counts[verdict(s)];
  std::printf("sweep %s: %zu trial(s)", sweep.c_str(), rows.size());
  for (const auto& [k, n] : counts) std::printf(", %d %s", n, k.c_str());
  std::printf("\n");
  std::printf("%-16s  %-22s  %-12s  %-12s  %-14s  %s\n", "key", "status", "store", "shard", "slurm job", "slurm state / reason");
  for (const auto& s : rows) {
    const std::string v = verdict(s);
    if (!all && v == "completed") continue;
    std::string slurm_text = s.slurm.state.empty() ? "-" : s.slurm.state;
    if (!s.slurm.reason.empty() && s.slurm.reason != "None") slurm_text += " (" + s.slurm.reason + ")";
    std::printf("%-16s  %-22s  %-12s  %-12s  %-14s  %s\n", s.key.c_str(), v.c_str(), s.store_status.c_str(),
                s.shard_status.empty() ? "-" : s.shard_status.c_str(), element_text(s.element).c_str(),
                slurm_text.c_str());
    if (v == "failed" && !s.error.empty()) std::printf("%16s  error: %s\n", "", s.error.c_str());
  }
  // Whether a run is running is its lease (runner/lease.h); elements take it
  // in the results folder, which must be on a file system with flock.
  const std::filesystem::path runs_dir =
      (std::filesystem::path(g.db).has_parent_path() ? std::filesystem::path(g.db).parent_path()
                                                      : std::filesystem::path(".")) / "runs";
  const std::string problem = runner::lease_support_problem(runs_dir);
  if (problem.empty())
    std::printf("run leases: flock works in %s\n", runs_dir.string().c_str());
  else
    std::printf("run leases: NOT supported in %s (%s): elements run without leases, so whether one is still "
                "running is taken from Slurm's view only\n",
                runs_dir.string().c_str(), problem.c_str());
  return 0;
}

int cancel_command(const std::string& sweep, const GlobalOptions& g) {
  store::Store main(g.db);
  cluster::SlurmClient slurm;
  const auto ids = cluster::cancel_sweep(main, sweep, slurm);
  if (ids.empty()) {
    std::printf("sweep %s: nothing queued or running in Slurm\n", sweep.c_str());
    return 0;
  }
  std::printf("sweep %s: cancelled job(s)", sweep.c_str());
  for (auto id : ids) std::printf(" %lld", static_cast<long long>(id));
  std::printf("\nthe collect job records the cancelled trials as failed when they end (or run `reglab collect %s`);\n"
              "re-running the sweep with --executor slurm submits them again\n",
              sweep.c_str());
  return 0;
}

}  // namespace

void add_cluster(CLI::App& app, GlobalOptions& g, int& exit_code) {
  {
    auto sweep = std::make_shared<std::string>();
    CLI::App* cmd = app.add_subcommand("collect", "Merge the Slurm trial shards of a sweep into the database.");
    cmd->footer(
        "Each Slurm array element writes its trial to results/shards/SWEEP/KEY.db. collect merges them into\n"
        "--db, one transaction per shard; collecting again adds nothing. Elements that Slurm ended without the\n"
        "trial finishing (cancelled, out of memory, time limit, node failure) are recorded as failed with\n"
        "Slurm's reason. The collect job submitted with the array runs this when the array ends.");
    cmd->add_option("sweep", *sweep, "sweep name")->required();
    cmd->callback([sweep, &g, &exit_code] { exit_code = collect_command(*sweep, g); });
  }
  {
    auto sweep = std::make_shared<std::string>();
    auto all = std::make_shared<bool>(false);
    CLI::App* cmd = app.add_subcommand("status", "Show a Slurm sweep: the store, the shards and Slurm's view of each trial.");
    cmd->add_option("sweep", *sweep, "sweep name")->required();
    cmd->add_flag("--all", *all, "list completed trials too");
    cmd->callback([sweep, all, &g, &exit_code] { exit_code = status_command(*sweep, *all, g); });
  }
  {
    auto sweep = std::make_shared<std::string>();
    CLI::App* cmd = app.add_subcommand("cancel", "Cancel a sweep's Slurm job arrays.");
    cmd->add_option("sweep", *sweep, "sweep name")->required();
    cmd->callback([sweep, &g, &exit_code] { exit_code = cancel_command(*sweep, g); });
  }
  {
    auto o = std::make_shared<runner::SlurmElementOptions>();
    auto manifest = std::make_shared<std::string>(), shards = std::make_shared<std::string>(),
         results = std::make_shared<std::string>();
    CLI::App* cmd = app.add_subcommand("_slurm-element", "");  // empty description: hidden from --help
    cmd->group("");
    cmd->add_option("--manifest", *manifest)->required();
    cmd->add_option("--index", o->index)->required();
    cmd->add_option("--shards", *shards)->required();
    cmd->add_option("--results", *results)->required();
    cmd->add_option("--threads", o->threads);
    cmd->callback([o, manifest, shards, results, &exit_code] {
      o->manifest = *manifest;
      o->shard_dir = *shards;
      o->results_dir = *results;
      exit_code = runner::run_slurm_element(*o);
    });
  }
}

}  // namespace reglab::cli
