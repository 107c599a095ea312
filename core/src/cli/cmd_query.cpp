// `reglab ls`, `reglab show`, `reglab compare`: read the results database.
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <iostream>

#include "cli/commands.h"
#include "config/config.h"
#include "query/compare.h"
#include "store/store.h"
#include "util/util.h"

namespace reglab::cli {

namespace fs = std::filesystem;

namespace {

store::Store open_existing(const std::string& db) {
  if (!fs::exists(db))
    throw std::runtime_error("no results database at " + db + " (run a sweep first, or pass --db)");
  return store::Store(db, store::ReadOnly{});  // an archived, read-only copy is queryable
}

int ls_command(const std::string& db, const std::string& sweep_name, const std::string& status) {
  store::Store store = open_existing(db);
  if (sweep_name.empty()) {
    auto sweeps = store.list_sweeps();
    std::printf("%-28s %6s %9s %7s %7s  %s\n", "sweep", "runs", "completed", "failed", "other", "created");
    for (const auto& s : sweeps) {
      int done = 0, failed = 0, other = 0;
      auto runs = store.list_runs(s.id);
      for (const auto& r : runs) {
        if (r.status == store::RunStatus::kCompleted) ++done;
        else if (r.status == store::RunStatus::kFailed) ++failed;
        else ++other;
      }
      std::printf("%-28s %6zu %9d %7d %7d  %s\n", s.name.c_str(), runs.size(), done, failed, other, s.created_at.c_str());
    }
    if (sweeps.empty()) std::printf("(no sweeps yet)\n");
    return 0;
  }
  auto sweep = store.find_sweep(sweep_name);
  if (!sweep) throw std::runtime_error("no sweep named '" + sweep_name + "' in " + db + " (see `reglab ls`)");
  std::printf("%-6s %-16s %-11s %8s %9s  %s\n", "run", "key", "status", "duration", "test.acc", "trial");
  for (const auto& r : store.list_runs(sweep->id)) {
    if (!status.empty() && status != store::to_string(r.status)) continue;
    auto acc = store.summary(r.id, "test.acc", "final");
    std::string acc_s = acc ? std::to_string(*acc).substr(0, 6) : "-";
    // The key's first 16 digits: unique in practice, and `show` takes a prefix.
    std::printf("%-6lld %-16s %-11s %7.1fs %9s  %s\n", static_cast<long long>(r.id), r.key.substr(0, 16).c_str(),
                store::to_string(r.status), r.duration_s, acc_s.c_str(), r.label.c_str());
  }
  return 0;
}

int show_command(const std::string& db, const std::string& run_ref, bool log, bool metrics) {
  store::Store store = open_existing(db);
  auto run = store.find_run(run_ref);
  if (!run) throw std::runtime_error("no run '" + run_ref + "' (give a run id or a key prefix; see `reglab ls SWEEP`)");
  if (log) {
    if (run->log_path.empty() || !fs::exists(run->log_path)) throw std::runtime_error("run " + run_ref + " has no log file");
    std::cout << util::read_file(run->log_path);
    return 0;
  }
  std::printf("run        %lld (sweep %s)\nkey        %s\ntrial      %s\nstatus     %s\n", static_cast<long long>(run->id),
              run->sweep_name.c_str(), run->key.c_str(), run->label.c_str(), store::to_string(run->status));
  std::printf("method     %s %s\nhost       %s\ngit        %s\nattempts   %d\n", run->method_name.c_str(),
              run->method_version.c_str(), run->host.c_str(), run->git_rev.c_str(), run->attempts);
  std::printf("code       method library %s, reglab binary %s\n",
              run->method_digest.empty() ? "(not recorded)" : run->method_digest.c_str(),
              run->reglab_digest.empty() ? "(not recorded)" : run->reglab_digest.c_str());
  if (run->superseded_by != 0)
    std::printf("superseded by run %lld\n", static_cast<long long>(run->superseded_by));
  std::printf("started    %s\nfinished   %s\nduration   %.1f s\nlog        %s\n", run->started_at.c_str(),
              run->finished_at.c_str(), run->duration_s, run->log_path.c_str());
  if (!run->error.empty()) std::printf("error      %s\n", run->error.c_str());
  std::printf("\nconfig\n%s\n", config::Json::parse(run->config_json).dump(2).c_str());
  auto points = store.metrics(run->id);
  std::map<std::string, std::pair<std::int64_t, double>> last;
  for (const auto& p : points) {
    auto& l = last[p.key];
    if (p.step >= l.first) l = {p.step, p.value};
  }
  if (!last.empty()) {
    std::printf("\n%-24s %12s %12s\n", "metric", "final", "best");
    for (const auto& [k, v] : last) {
      auto best = store.summary(run->id, k, "best");
      std::printf("%-24s %12.6g %12s\n", k.c_str(), v.second, best ? std::to_string(*best).c_str() : "-");
    }
  }
  if (metrics) {
    std::printf("\n%-24s %6s %14s\n", "metric", "step", "value");
    for (const auto& p : points) std::printf("%-24s %6lld %14.8g\n", p.key.c_str(), static_cast<long long>(p.step), p.value);
  }
  for (const auto& a : store.artifacts(run->id))
    std::printf("artifact   %s %s (checksum %s)\n", a.kind.c_str(), a.path.c_str(), a.checksum.c_str());
  return 0;
}

}  // namespace

void add_query(CLI::App& app, GlobalOptions& g, int& exit_code) {
  {
    auto sweep = std::make_shared<std::string>();
    auto status = std::make_shared<std::string>();
    CLI::App* cmd = app.add_subcommand("ls", "List sweeps, or the runs of one sweep.");
    cmd->add_option("sweep", *sweep, "sweep name (omit to list sweeps)");
    cmd->add_option("--status", *status, "only runs with this status")
        ->check(CLI::IsMember({"pending", "running", "completed", "failed", "interrupted"}));
    cmd->callback([sweep, status, &g, &exit_code] { exit_code = ls_command(g.db, *sweep, *status); });
  }
  {
    auto run = std::make_shared<std::string>();
    auto log = std::make_shared<bool>(false);
    auto metrics = std::make_shared<bool>(false);
    CLI::App* cmd = app.add_subcommand("show", "Show one run: configuration, status, error, summaries, artifacts.");
    cmd->add_option("run", *run, "run id, or a unique prefix of its key")->required();
    cmd->add_flag("--log", *log, "print the run's log file instead");
    cmd->add_flag("--metrics", *metrics, "also list every metric point");
    cmd->callback([run, log, metrics, &g, &exit_code] { exit_code = show_command(g.db, *run, *log, *metrics); });
  }
  {
    auto o = std::make_shared<query::CompareOptions>();
    auto by = std::make_shared<std::vector<std::string>>();
    auto where = std::make_shared<std::vector<std::string>>();
    auto fmt = std::make_shared<std::string>("table");
    CLI::App* cmd = app.add_subcommand("compare", "Compare groups of runs: mean, std, 95% CI and n over seeds.");
    cmd->footer("Example: reglab compare quickstart --metric test.acc --by method.name --format markdown");
    cmd->add_option("sweep", o->sweep, "sweep name")->required();
    cmd->add_option("--metric", o->metric, "metric key (test.acc, test.nll, test.ece, train.flipped_acc, ...)")
        ->capture_default_str();
    cmd->add_option("--by", *by, "config key to group by (repeatable; default method.name)");
    cmd->add_option("--summary", o->summary, "per-run value: final (last epoch) or best")
        ->check(CLI::IsMember({"final", "best"}))->capture_default_str();
    cmd->add_option("--where", *where, "only runs whose config KEY=VALUE (repeatable)");
    cmd->add_option("--format", *fmt, "table, markdown, csv or json")
        ->check(CLI::IsMember({"table", "markdown", "csv", "json"}))->capture_default_str();
    cmd->add_flag("--pool-code", o->pool_code,
                  "pool runs of different code identities (method version or library digest) in one group");
    add_direction_flags(cmd, o->direction);
    cmd->callback([o, by, where, fmt, &g, &exit_code] {
      if (!by->empty()) o->by = *by;
      for (const auto& w : *where) {
        auto eq = w.find('=');
        if (eq == std::string::npos) throw std::runtime_error("--where expects KEY=VALUE, got '" + w + "'");
        o->where.emplace_back(w.substr(0, eq), w.substr(eq + 1));
      }
      store::Store store = open_existing(g.db);
      std::cout << query::format(query::compare(store, *o), *fmt);
      exit_code = 0;
    });
  }
}

}  // namespace reglab::cli
