// store/shard_merge.cpp — a shard's run copied into the main store.
#include "store/shard_merge.h"

#include <SQLiteCpp/SQLiteCpp.h>

#include "store/connection.h"
#include "util/util.h"

namespace reglab::store {

namespace {

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

std::optional<LiveRun> find_live_run(Store& store, std::int64_t sweep_id, const std::string& key) {
  SQLite::Statement q(connection(store),
                      "SELECT id, status, error FROM runs WHERE sweep_id = ? AND key = ? AND status <> 'superseded'");
  q.bind(1, sweep_id);
  q.bind(2, key);
  if (!q.executeStep()) return std::nullopt;
  return LiveRun{q.getColumn(0).getInt64(), run_status_from_string(q.getColumn(1).getString()),
                 q.getColumn(2).getString()};
}

ShardCopy copy_shard_run(Store& main, Store& shard, std::int64_t shard_run, std::int64_t main_run,
                         const std::string& shard_name, const std::string& state) {
  SQLite::Database& db = connection(main);
  SQLite::Transaction tx(db, SQLite::TransactionBehavior::IMMEDIATE);
  {
    SQLite::Statement seen(db, "SELECT 1 FROM shard_merges WHERE shard_path = ? AND shard_state = ?");
    seen.bind(1, shard_name);
    seen.bind(2, state);
    if (seen.executeStep()) return ShardCopy::kAlreadyMerged;  // tx rolls back: nothing was written
  }
  copy_run(connection(shard), shard_run, db, main_run);
  SQLite::Statement note(db, "INSERT INTO shard_merges (shard_path, run_id, shard_state, merged_at) VALUES (?, ?, ?, ?)");
  note.bind(1, shard_name);
  note.bind(2, main_run);
  note.bind(3, state);
  note.bind(4, util::now_iso8601());
  note.exec();
  tx.commit();
  return ShardCopy::kCopied;
}

RunStatus peek_run_status(const std::filesystem::path& path) {
  SQLite::Database db(path, SQLite::OPEN_READONLY, kBusyTimeoutMs);
  SQLite::Statement q(db, "SELECT status FROM runs LIMIT 1");
  if (!q.executeStep()) return RunStatus::kPending;
  return run_status_from_string(q.getColumn(0).getString());
}

}  // namespace reglab::store
