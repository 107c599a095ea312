// `reglab run`: validate, expand and run a sweep, then print its comparison.
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <iostream>
#include <set>
#include <thread>

#include "cli/commands.h"
#include "cli/method_schemas.h"
#include "cluster/submit.h"
#include "query/compare.h"
#include "runner/scheduler.h"
#include "store/store.h"
#include "sweep/sweep.h"

namespace reglab::cli {

namespace {

struct RunArgs {
  std::string file;
  std::vector<std::string> sets;
  int jobs = 0;  // 0 = one per core, at most one per trial
  bool dry_run = false;
  bool retry_failed = false;
  std::string rerun = "changed";
  double trial_timeout = 0;
  std::string metric;  // empty: test.acc, tta.err for a sweep of tta trials, eval.id.pass_at_1 for rlvr
  bool no_compare = false;
  std::string progress = "auto";
  std::string executor = "local";
  cluster::SlurmOptions slurm;
  int max_array_size = 1001;
};

int submit_to_slurm(const sweep::Sweep& sw, const RunArgs& a, const GlobalOptions& g) {
  cluster::SubmitOptions o;
  o.db = g.db;
  o.reglab = std::filesystem::read_symlink("/proc/self/exe");
  o.slurm = a.slurm;
  o.max_array_size = a.max_array_size;
  cluster::SlurmClient slurm;
  cluster::SubmitResult r;
  try {
    r = cluster::submit_sweep(sw, o, slurm);
  } catch (const std::exception& e) {
    std::cerr << "reglab: " << e.what() << "\n";
    return 2;
  }
  for (const auto& p : r.collected.problems) std::cerr << "reglab: " << p << "\n";
  if (r.collected.merged > 0 || r.collected.failed_by_slurm > 0)
    std::fprintf(stderr, "merged %d finished shard(s) of earlier submissions; %d run(s) recorded as failed from Slurm's view\n",
                 r.collected.merged, r.collected.failed_by_slurm);
  if (r.submitted == 0) {
    std::printf("sweep %s: %d trial(s): %d completed, %d queued or running in Slurm; nothing to submit\n",
                sw.name.c_str(), r.total, r.completed, r.active);
    return 0;
  }
  if (r.stages_submitted > 0)
    std::printf("sweep %s: submitted %d stage(s) (init.from) as job array %lld; the trials wait for it\n",
                sw.name.c_str(), r.stages_submitted, static_cast<long long>(r.stage_job_id));
  std::printf("sweep %s: submitted %d trial(s) as job array %lld (%d completed, %d still queued or running)\n"
              "  collect job %lld merges the results when the array ends\n"
              "  scripts and manifest: %s\n"
              "  watch: reglab status %s    merge now: reglab collect %s    stop: reglab cancel %s\n",
              sw.name.c_str(), r.submitted, static_cast<long long>(r.job_id), r.completed, r.active,
              static_cast<long long>(r.collect_job_id), r.folder.string().c_str(), sw.name.c_str(), sw.name.c_str(),
              sw.name.c_str());
  return 0;
}

// The config keys whose values differ across trials (seed excluded): what the
// closing comparison groups by.
std::vector<std::string> varying_keys(const sweep::Sweep& sw) {
  std::map<std::string, std::set<std::string>> values;
  for (const auto& t : sw.trials)
    for (const auto& [k, v] : config::flatten(t.config))
      if (k != "seed") values[k].insert(v.dump());
  std::vector<std::string> keys;
  for (const auto& [k, vs] : values)
    if (vs.size() > 1) keys.push_back(k);
  if (keys.empty()) keys.push_back("method.name");
  return keys;
}

int run_command(const RunArgs& a, const GlobalOptions& g) {
  sweep::Sweep sw;
  try {
    sw = sweep::load_sweep(a.file, a.sets, registry_lookup(), registry_names());
  } catch (const config::ConfigError& e) {
    for (const auto& issue : e.issues()) std::cerr << "reglab: " << issue.str() << "\n";
    std::cerr << "reglab: the sweep is invalid; nothing was run or stored.\n";
    return 2;
  }
  if (a.dry_run) {
    std::printf("sweep %s: %zu trial(s)\n", sw.name.c_str(), sw.trials.size());
    std::printf("%-4s  %-32s  %s\n", "#", "key", "trial");
    for (std::size_t i = 0; i < sw.trials.size(); ++i)
      std::printf("%-4zu  %-32s  %s\n", i + 1, sw.trials[i].key.c_str(), sw.trials[i].label.c_str());
    return 0;
  }
  if (a.executor == "slurm") return submit_to_slurm(sw, a, g);
  const cluster::SlurmOptions slurm_defaults;
  if (!a.slurm.partition.empty() || !a.slurm.account.empty() || !a.slurm.mem.empty() || !a.slurm.time.empty() ||
      !a.slurm.sbatch_args.empty() || a.slurm.max_parallel != slurm_defaults.max_parallel ||
      a.slurm.cpus_per_trial != slurm_defaults.cpus_per_trial || a.slurm.gpus_per_trial != slurm_defaults.gpus_per_trial) {
    std::cerr << "reglab: --partition, --account, --mem, --time, --cpus-per-trial, --gpus-per-trial, --max-parallel and "
                 "--sbatch-arg apply only with --executor slurm\n";
    return 2;
  }
  runner::SchedulerOptions o;
  o.db = g.db;
  o.jobs = a.jobs > 0 ? a.jobs : static_cast<int>(std::max<std::size_t>(1, std::min<std::size_t>(std::thread::hardware_concurrency(), sw.trials.size())));
  o.retry_failed = a.retry_failed;
  o.rerun = a.rerun == "all" ? runner::RerunPolicy::kAll
            : a.rerun == "none" ? runner::RerunPolicy::kNone
                                : runner::RerunPolicy::kChanged;
  o.trial_timeout_s = a.trial_timeout;
  o.live_display = a.progress == "live" || (a.progress == "auto" && isatty(STDERR_FILENO));
  runner::SchedulerResult r = runner::run_sweep(sw, o);

  std::string extra;
  if (r.skipped_failed) extra += ", " + std::to_string(r.skipped_failed) + " failed earlier (not retried)";
  if (r.skipped_running)
    extra += ", " + std::to_string(r.skipped_running) + " running in another reglab process (not finished here)";
  std::fprintf(stderr, "sweep %s: %d trial(s): %d completed now, %d already completed, %d failed, %d interrupted%s\n",
               sw.name.c_str(), r.total, r.completed, r.skipped_completed, r.failed, r.interrupted, extra.c_str());
  if (!a.no_compare && !r.stopped_by_user) {
    store::Store store(g.db);
    query::CompareOptions co;
    co.sweep = sw.name;
    co.metric = a.metric;
    if (co.metric.empty()) {
      // tta and rlvr sweeps have no test.acc: their headlines are the online
      // error and the in-domain pass@1 at the end.
      auto all_of_paradigm = [&](const char* name) {
        return !sw.trials.empty() && std::all_of(sw.trials.begin(), sw.trials.end(), [&](const auto& t) {
          const config::Json* p = config::get_path(t.config, "task.paradigm");
          return p != nullptr && *p == name;
        });
      };
      co.metric = all_of_paradigm("tta") ? "tta.err" : all_of_paradigm("rlvr") ? "eval.id.pass_at_1" : "test.acc";
    }
    co.by = varying_keys(sw);
    try {
      std::cout << "\n" << query::format(query::compare(store, co), "table") << std::flush;
    } catch (const std::exception& e) {
      std::cerr << "reglab: no comparison: " << e.what() << "\n";
    }
  }
  if (r.stopped_by_user) {
    std::fprintf(stderr, "interrupted: run the same command again to resume.\n");
    return 130;
  }
  // Every trial this command did not finish counts: failed now or earlier,
  // interrupted, or left to another process that holds its lease.
  return std::min(r.failed + r.interrupted + r.skipped_running + r.skipped_failed, 100);
}

}  // namespace

void add_run(CLI::App& app, GlobalOptions& g, int& exit_code) {
  auto args = std::make_shared<RunArgs>();
  CLI::App* cmd = app.add_subcommand("run", "Run a sweep defined in TOML; finished trials are skipped, so re-running resumes.");
  cmd->footer(
      "Each trial runs in its own process; results go to the database (--db). A trial that crashes,\n"
      "returns a NaN loss or times out is recorded as failed and the sweep goes on; the exit code is\n"
      "the number of trials not finished (failed, interrupted, or running in another reglab process;\n"
      "at most 100), 130 after Ctrl-C, 2 for an invalid sweep. A completed trial whose method code\n"
      "changed is run again (--rerun). See experiments/README.md for the TOML format.\n\n"
      "Examples:\n"
      "  reglab run experiments/quickstart.toml -j 2\n"
      "  reglab run experiments/quickstart.toml --set task.epochs=1 --set data.limit=2000 --dry-run\n"
      "  reglab run experiments/noisy_labels.toml --executor slurm --partition cpu --cpus-per-trial 4 --max-parallel 20\n\n"
      "With --executor slurm the trials still to do go to Slurm as one job array and the command returns at\n"
      "once; see `reglab status`, `reglab collect`, `reglab cancel` and \"Running on a cluster\" in README.md.");
  // No CLI::ExistingFile: the loader reports a missing file like any other
  // sweep error (exit 2, the file named), not with CLI11's code 105.
  cmd->add_option("sweep", args->file, "sweep file (TOML)")->required();
  cmd->add_option("--set", args->sets, "override a key for every trial: --set optim.lr=0.05 (repeatable)");
  cmd->add_option("-j,--jobs", args->jobs, "trials run at once (default: one per core); intra-op threads are divided between them")
      ->check(CLI::Range(1, 256));
  cmd->add_flag("--dry-run", args->dry_run, "validate and print the trials without running anything");
  cmd->add_flag("--retry-failed", args->retry_failed, "run failed trials again");
  cmd->add_option("--rerun", args->rerun,
                  "completed trials whose code changed (the method plugin's version or library digest): "
                  "changed = run them again as new attempts, all = run every completed trial again, none = keep "
                  "them; old attempts stay queryable as 'superseded'")
      ->check(CLI::IsMember({"changed", "all", "none"}))->capture_default_str();
  cmd->add_option("--trial-timeout", args->trial_timeout, "seconds before a trial is killed and marked failed (0 = none)")
      ->capture_default_str();
  cmd->add_option("--metric", args->metric,
                  "metric of the closing comparison table (default: test.acc; tta.err when every trial is tta, "
                  "eval.id.pass_at_1 when every trial is rlvr)");
  cmd->add_flag("--no-compare", args->no_compare, "do not print the comparison table at the end");
  cmd->add_option("--progress", args->progress, "auto (live on a terminal), live, or plain")
      ->check(CLI::IsMember({"auto", "live", "plain"}))->capture_default_str();
  cmd->add_option("--executor", args->executor, "local (trials run here) or slurm (one job array, returns at once)")
      ->check(CLI::IsMember({"local", "slurm"}))->capture_default_str();
  const char* slurm_group = "Slurm (with --executor slurm)";
  cmd->add_option("--partition", args->slurm.partition, "partition of the array (default: the cluster's)")->group(slurm_group);
  cmd->add_option("--account", args->slurm.account, "account to charge")->group(slurm_group);
  cmd->add_option("--cpus-per-trial", args->slurm.cpus_per_trial, "CPUs per element; also the trial's threads")
      ->check(CLI::Range(1, 1024))->capture_default_str()->group(slurm_group);
  cmd->add_option("--gpus-per-trial", args->slurm.gpus_per_trial, "GPUs per element (--gres=gpu:G)")
      ->check(CLI::Range(0, 64))->capture_default_str()->group(slurm_group);
  cmd->add_option("--mem", args->slurm.mem, "memory per element, e.g. 4G")->group(slurm_group);
  cmd->add_option("--time", args->slurm.time, "time limit per element, e.g. 2:00:00")->group(slurm_group);
  cmd->add_option("--max-parallel", args->slurm.max_parallel, "elements running at once (the array's %K; 0 = no limit)")
      ->check(CLI::Range(0, 100000))->capture_default_str()->group(slurm_group);
  cmd->add_option("--sbatch-arg", args->slurm.sbatch_args, "extra sbatch option, verbatim: --sbatch-arg=--qos=long (repeatable)")
      ->group(slurm_group);
  cmd->add_option("--max-array-size", args->max_array_size, "the cluster's MaxArraySize")
      ->check(CLI::Range(2, 4000001))->capture_default_str()->group(slurm_group);
  cmd->callback([args, &g, &exit_code] { exit_code = run_command(*args, g); });
}

}  // namespace reglab::cli
