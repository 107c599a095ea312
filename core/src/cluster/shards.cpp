#include "cluster/shards.h"

#include <SQLiteCpp/SQLiteCpp.h>

#include <algorithm>
#include <stdexcept>

#include "cluster/records.h"
#include "util/util.h"

namespace reglab::cluster {

namespace fs = std::filesystem;

namespace {

struct MainRun {
  std::int64_t id;
  store::RunStatus status;
  std::string error;
};

std::optional<MainRun> find_main_run(store::Store& main, std::int64_t sweep_id, const std::string& key) {
  SQLite::Statement q(main.db(), "SELECT id, status, error FROM runs WHERE sweep_id = ? AND key = ? AND status <> 'superseded'");
  q.bind(1, sweep_id);
  q.bind(2, key);
  if (!q.executeStep()) return std::nullopt;
  return MainRun{q.getColumn(0).getInt64(), store::run_status_from_string(q.getColumn(1).getString()),
                 q.getColumn(2).getString()};
}

bool finished(store::RunStatus s) {
  return s == store::RunStatus::kCompleted || s == store::RunStatus::kFailed || s == store::RunStatus::kInterrupted;
}

// Copies the shard's run row, metrics, metric directions, summaries and artifacts onto main run
// `to`, inside the caller's transaction on main.
void copy_run(SQLite::Database& src, std::int64_t from, SQLite::Database& dst, std::int64_t to) {
  {
    SQLite::Statement r(src,
                        "SELECT status, method_version, host, git_rev, attempts, started_at, finished_at, "
                        "heartbeat_at, duration_s, error, log_path, method_digest, reglab_digest FROM runs WHERE id = ?");
    r.bind(1, from);
    r.executeStep();
    SQLite::Statement u(dst,
                        "UPDATE runs SET status = ?, method_version = ?, host = ?, git_rev = ?, pid = 0, attempts = ?, "
                        "started_at = ?, finished_at = ?, heartbeat_at = ?, duration_s = ?, error = ?, log_path = ?, "
                        "method_digest = ?, reglab_digest = ? WHERE id = ?");
    for (int c = 0; c < 13; ++c) {
      const auto col = r.getColumn(c);
      if (col.isNull())
        u.bind(c + 1);
      else if (c == 4)
        u.bind(c + 1, col.getInt());
      else if (c == 8)
        u.bind(c + 1, col.getDouble());
      else
        u.bind(c + 1, col.getString());
    }
    u.bind(14, to);
    u.exec();
  }
  {
    SQLite::Statement m(src, "SELECT key, step, value, time FROM metrics WHERE run_id = ?");
    m.bind(1, from);
    SQLite::Statement ins(dst, "INSERT OR REPLACE INTO metrics (run_id, key, step, value, time) VALUES (?, ?, ?, ?, ?)");
    while (m.executeStep()) {
      ins.bind(1, to);
      ins.bind(2, m.getColumn(0).getString());
      ins.bind(3, m.getColumn(1).getInt64());
      if (m.getColumn(2).isNull())
        ins.bind(4);
      else
        ins.bind(4, m.getColumn(2).getDouble());
      ins.bind(5, m.getColumn(3).getDouble());
      ins.exec();
      ins.reset();
    }
  }
  {
    // Before the summaries, which were ranked by these directions.
    SQLite::Statement d(src, "SELECT key, direction FROM metric_directions WHERE run_id = ?");
    d.bind(1, from);
    SQLite::Statement ins(dst,
                          "INSERT INTO metric_directions (run_id, key, direction) VALUES (?, ?, ?) "
                          "ON CONFLICT (run_id, key) DO UPDATE SET direction = excluded.direction");
    while (d.executeStep()) {
      ins.bind(1, to);
      ins.bind(2, d.getColumn(0).getString());
      ins.bind(3, d.getColumn(1).getString());
      ins.exec();
      ins.reset();
    }
  }
  {
    SQLite::Statement del(dst, "DELETE FROM summaries WHERE run_id = ?");
    del.bind(1, to);
    del.exec();
    SQLite::Statement s(src, "SELECT key, kind, value, step FROM summaries WHERE run_id = ?");
    s.bind(1, from);
    SQLite::Statement ins(dst, "INSERT INTO summaries (run_id, key, kind, value, step) VALUES (?, ?, ?, ?, ?)");
    while (s.executeStep()) {
      ins.bind(1, to);
      ins.bind(2, s.getColumn(0).getString());
      ins.bind(3, s.getColumn(1).getString());
      if (s.getColumn(2).isNull())
        ins.bind(4);
      else
        ins.bind(4, s.getColumn(2).getDouble());
      ins.bind(5, s.getColumn(3).getInt64());
      ins.exec();
      ins.reset();
    }
  }
  {
    SQLite::Statement a(src, "SELECT kind, path, checksum, created_at FROM artifacts WHERE run_id = ? ORDER BY id");
    a.bind(1, from);
    SQLite::Statement ins(dst,
                          "INSERT INTO artifacts (run_id, kind, path, checksum, created_at) SELECT ?, ?, ?, ?, ? "
                          "WHERE NOT EXISTS (SELECT 1 FROM artifacts WHERE run_id = ? AND kind = ? AND path = ? "
                          "AND checksum = ?)");
    while (a.executeStep()) {
      const std::string kind = a.getColumn(0).getString(), path = a.getColumn(1).getString(),
                        sum = a.getColumn(2).getString();
      ins.bind(1, to);
      ins.bind(2, kind);
      ins.bind(3, path);
      ins.bind(4, sum);
      ins.bind(5, a.getColumn(3).getString());
      ins.bind(6, to);
      ins.bind(7, kind);
      ins.bind(8, path);
      ins.bind(9, sum);
      ins.exec();
      ins.reset();
    }
  }
}

}  // namespace

fs::path shard_directory(const fs::path& results_dir, const std::string& sweep) {
  return results_dir / "shards" / sweep;
}

fs::path shard_path(const fs::path& results_dir, const std::string& sweep, const std::string& key) {
  return shard_directory(results_dir, sweep) / (key + ".db");
}

std::optional<store::RunStatus> peek_shard(const fs::path& shard) {
  if (!fs::exists(shard)) return std::nullopt;
  SQLite::Database db(shard, SQLite::OPEN_READONLY, store::kBusyTimeoutMs);
  SQLite::Statement q(db, "SELECT status FROM runs LIMIT 1");
  if (!q.executeStep()) return store::RunStatus::kPending;
  return store::run_status_from_string(q.getColumn(0).getString());
}

MergeOutcome merge_shard(store::Store& main, const fs::path& shard) {
  auto fail = [&](const std::string& why) { return std::runtime_error("shard " + shard.string() + ": " + why); };
  if (!fs::exists(shard)) throw fail("no such file");
  std::unique_ptr<store::Store> src;
  try {
    src = std::make_unique<store::Store>(shard, store::Journal::kRollback);
  } catch (const std::exception& e) {
    throw fail(e.what());
  }
  const auto runs = src->list_runs();
  if (runs.size() != 1) throw fail("holds " + std::to_string(runs.size()) + " runs; a shard holds exactly one");
  const store::RunRow& r = runs.front();
  MergeOutcome out;
  out.shard_status = r.status;
  const auto sweep = main.find_sweep(r.sweep_name);
  if (!sweep) throw fail("its sweep '" + r.sweep_name + "' is not in " + main.path().string());
  const auto target = find_main_run(main, sweep->id, r.key);
  if (!target) throw fail("its run " + r.key + " is not in sweep '" + r.sweep_name + "' of " + main.path().string());
  out.run_id = target->id;
  if (!finished(r.status)) return out;  // kInProgress
  if (target->status == store::RunStatus::kCompleted) {
    out.result = MergeResult::kRunCompleted;
    return out;
  }
  const std::string state =
      std::string(store::to_string(r.status)) + " " + r.finished_at + " attempt " + std::to_string(r.attempts);
  const std::string shard_name = fs::absolute(shard).lexically_normal().string();
  SQLite::Transaction tx(main.db(), SQLite::TransactionBehavior::IMMEDIATE);
  {
    SQLite::Statement seen(main.db(), "SELECT 1 FROM shard_merges WHERE shard_path = ? AND shard_state = ?");
    seen.bind(1, shard_name);
    seen.bind(2, state);
    if (seen.executeStep()) {
      out.result = MergeResult::kAlreadyMerged;
      return out;  // tx rolls back: nothing was written
    }
  }
  copy_run(src->db(), r.id, main.db(), target->id);
  SQLite::Statement note(main.db(),
                         "INSERT INTO shard_merges (shard_path, run_id, shard_state, merged_at) VALUES (?, ?, ?, ?)");
  note.bind(1, shard_name);
  note.bind(2, target->id);
  note.bind(3, state);
  note.bind(4, util::now_iso8601());
  note.exec();
  tx.commit();
  out.result = MergeResult::kMerged;
  return out;
}

CollectResult collect_sweep(store::Store& main, const std::string& sweep, const fs::path& results_dir,
                            const SlurmView& view) {
  const auto sw = main.find_sweep(sweep);
  if (!sw) throw std::runtime_error("no sweep named '" + sweep + "' in " + main.path().string());
  CollectResult result;
  const fs::path dir = shard_directory(results_dir, sweep);
  std::vector<fs::path> shards;
  if (fs::is_directory(dir))
    for (const auto& e : fs::directory_iterator(dir))
      if (e.is_regular_file() && e.path().extension() == ".db") shards.push_back(e.path());
  std::sort(shards.begin(), shards.end());
  // A shard is named by its run's key: runs already complete are skipped
  // without opening their shard, so collecting a finished sweep again is cheap.
  std::map<std::string, store::RunStatus> status_of_key;
  for (const auto& r : main.list_runs(sw->id)) status_of_key[r.key] = r.status;
  std::map<std::int64_t, store::RunStatus> shard_status;
  for (const auto& shard : shards) {
    if (auto it = status_of_key.find(shard.stem().string());
        it != status_of_key.end() && it->second == store::RunStatus::kCompleted) {
      ++result.run_completed;
      continue;
    }
    try {
      const MergeOutcome o = merge_shard(main, shard);
      shard_status[o.run_id] = o.shard_status;
      switch (o.result) {
        case MergeResult::kMerged: ++result.merged; break;
        case MergeResult::kAlreadyMerged: ++result.already_merged; break;
        case MergeResult::kRunCompleted: ++result.run_completed; break;
        case MergeResult::kInProgress: ++result.in_progress; break;
      }
    } catch (const std::exception& e) {
      result.problems.push_back(e.what());
    }
  }
  if (view.empty()) return result;
  // Elements Slurm has ended while their trial had not finished: the shard is
  // missing (never started), still says running (killed hard: out of memory,
  // node failure), or says interrupted (cancelled, time limit).
  for (const auto& [run_id, element] : current_elements(main, sw->id)) {
    const auto it = view.find(element);
    if (it == view.end() || !is_terminal(it->second.state)) continue;
    const auto run = main.get_run(run_id);
    if (!run || run->status == store::RunStatus::kCompleted) continue;
    if (run->status == store::RunStatus::kFailed) continue;  // already recorded, by the trial or by us
    const auto ss = shard_status.find(run_id);
    std::string why = describe(element, it->second);
    if (it->second.state == "COMPLETED")
      why += ": the element ended but its trial recorded no result";
    if (ss == shard_status.end())
      why += "; the trial never started (no shard)";
    else if (!run->error.empty())
      why += "; the trial said: " + run->error.substr(0, run->error.find('\n'));
    main.mark_finished(run_id, store::RunStatus::kFailed, why);
    ++result.failed_by_slurm;
  }
  return result;
}

}  // namespace reglab::cluster
