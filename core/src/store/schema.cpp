// store/schema.cpp — the schema versions and the migration runner.
#include "store/schema.h"

#include <SQLiteCpp/SQLiteCpp.h>
#include <sqlite3.h>

#include <cstdint>
#include <cstdio>
#include <map>
#include <nlohmann/json.hpp>
#include <random>
#include <stdexcept>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include "metrics/directions.h"
#include "store/run_folder.h"
#include "store/store.h"
#include "util/hash.h"
#include "util/util.h"

namespace reglab::store {
namespace {

// Version 1: every table. IF NOT EXISTS so that a file that already holds some
// of the tables but no version (an interrupted first open, an older tool that
// never wrote meta) is completed rather than refused.
constexpr const char* kSchemaV1 = R"sql(
CREATE TABLE IF NOT EXISTS meta (
  key   TEXT PRIMARY KEY,
  value TEXT NOT NULL
);

CREATE TABLE IF NOT EXISTS sweeps (
  id          INTEGER PRIMARY KEY,
  name        TEXT NOT NULL UNIQUE,
  description TEXT NOT NULL DEFAULT '',
  toml        TEXT NOT NULL DEFAULT '',
  created_at  TEXT NOT NULL
);

CREATE TABLE IF NOT EXISTS runs (
  id             INTEGER PRIMARY KEY,
  sweep_id       INTEGER NOT NULL REFERENCES sweeps(id) ON DELETE CASCADE,
  key            TEXT NOT NULL,
  label          TEXT NOT NULL DEFAULT '',
  status         TEXT NOT NULL DEFAULT 'pending'
                 CHECK (status IN ('pending', 'running', 'completed', 'failed', 'interrupted')),
  config_json    TEXT NOT NULL,
  method_name    TEXT NOT NULL DEFAULT '',
  method_version TEXT NOT NULL DEFAULT '',
  host           TEXT NOT NULL DEFAULT '',
  git_rev        TEXT NOT NULL DEFAULT '',
  pid            INTEGER NOT NULL DEFAULT 0,
  attempts       INTEGER NOT NULL DEFAULT 0,
  created_at     TEXT NOT NULL,
  started_at     TEXT,
  finished_at    TEXT,
  heartbeat_at   TEXT,
  duration_s     REAL,
  error          TEXT NOT NULL DEFAULT '',
  log_path       TEXT NOT NULL DEFAULT '',
  UNIQUE (sweep_id, key)
);
CREATE INDEX IF NOT EXISTS runs_status ON runs (sweep_id, status);

CREATE TABLE IF NOT EXISTS params (
  run_id    INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
  key       TEXT NOT NULL,
  value     TEXT NOT NULL,
  value_num REAL,
  PRIMARY KEY (run_id, key)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS params_key ON params (key, value);

-- The primary key is the (run_id, key, step) uniqueness and the index in
-- one B-tree: WITHOUT ROWID makes a batched insert about 1.6x faster than a
-- rowid table with a separate UNIQUE index.
CREATE TABLE IF NOT EXISTS metrics (
  run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
  key    TEXT NOT NULL,
  step   INTEGER NOT NULL,
  value  REAL,
  time   REAL NOT NULL,
  PRIMARY KEY (run_id, key, step)
) WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS summaries (
  run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
  key    TEXT NOT NULL,
  kind   TEXT NOT NULL CHECK (kind IN ('final', 'best')),
  value  REAL,
  step   INTEGER NOT NULL,
  PRIMARY KEY (run_id, key, kind)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS summaries_key ON summaries (key, kind);

CREATE TABLE IF NOT EXISTS artifacts (
  id         INTEGER PRIMARY KEY,
  run_id     INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
  kind       TEXT NOT NULL,
  path       TEXT NOT NULL,
  checksum   TEXT NOT NULL DEFAULT '',
  created_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS artifacts_run ON artifacts (run_id);
)sql";

// Version 2: the Slurm executor's records. slurm_jobs holds every submitted
// array (and the dependent collect job); slurm_tasks maps an array element to
// the run it executes (a run resubmitted later has several rows, the newest
// job is its current one); shard_merges remembers which state of which shard
// was merged, so collecting twice adds nothing.
constexpr const char* kSchemaV2 = R"sql(
CREATE TABLE IF NOT EXISTS slurm_jobs (
  job_id       INTEGER PRIMARY KEY,
  sweep_id     INTEGER NOT NULL REFERENCES sweeps(id) ON DELETE CASCADE,
  kind         TEXT NOT NULL CHECK (kind IN ('trials', 'collect')),
  array_size   INTEGER NOT NULL DEFAULT 0,
  script_path  TEXT NOT NULL DEFAULT '',
  submitted_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS slurm_jobs_sweep ON slurm_jobs (sweep_id);

CREATE TABLE IF NOT EXISTS slurm_tasks (
  job_id      INTEGER NOT NULL REFERENCES slurm_jobs(job_id) ON DELETE CASCADE,
  array_index INTEGER NOT NULL,
  run_id      INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
  PRIMARY KEY (job_id, array_index)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS slurm_tasks_run ON slurm_tasks (run_id);

CREATE TABLE IF NOT EXISTS shard_merges (
  shard_path  TEXT NOT NULL,
  run_id      INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
  shard_state TEXT NOT NULL,
  merged_at   TEXT NOT NULL,
  PRIMARY KEY (shard_path, shard_state)
) WITHOUT ROWID;
)sql";

// Version 3: records are identities.
// - runs gains the code identity of each attempt (the method plugin's library
//   digest and reglab's own binary digest; method_version was there already),
//   the status 'superseded' (an old attempt kept queryable after its trial was
//   re-run with other code) with superseded_by naming the attempt that
//   replaced it. (sweep_id, key) is unique among the runs that are not
//   superseded. SQLite cannot change a CHECK or UNIQUE constraint in place,
//   so the table is rebuilt (foreign keys are off while the store migrates).
// - meta gains store_id (the owner of the store's run folders) and
//   hash_algorithm.
// - Trial keys, stage keys in configs and artifact checksums are recomputed
//   with util/hash.h (see rekey_v3).
constexpr const char* kSchemaV3 = R"sql(
CREATE TABLE runs_v3 (
  id             INTEGER PRIMARY KEY,
  sweep_id       INTEGER NOT NULL REFERENCES sweeps(id) ON DELETE CASCADE,
  key            TEXT NOT NULL,
  label          TEXT NOT NULL DEFAULT '',
  status         TEXT NOT NULL DEFAULT 'pending'
                 CHECK (status IN ('pending', 'running', 'completed', 'failed', 'interrupted', 'superseded')),
  config_json    TEXT NOT NULL,
  method_name    TEXT NOT NULL DEFAULT '',
  method_version TEXT NOT NULL DEFAULT '',
  method_digest  TEXT NOT NULL DEFAULT '',
  reglab_digest  TEXT NOT NULL DEFAULT '',
  host           TEXT NOT NULL DEFAULT '',
  git_rev        TEXT NOT NULL DEFAULT '',
  pid            INTEGER NOT NULL DEFAULT 0,
  attempts       INTEGER NOT NULL DEFAULT 0,
  created_at     TEXT NOT NULL,
  started_at     TEXT,
  finished_at    TEXT,
  heartbeat_at   TEXT,
  duration_s     REAL,
  error          TEXT NOT NULL DEFAULT '',
  log_path       TEXT NOT NULL DEFAULT '',
  superseded_by  INTEGER
);
INSERT INTO runs_v3 (id, sweep_id, key, label, status, config_json, method_name, method_version, host, git_rev,
                     pid, attempts, created_at, started_at, finished_at, heartbeat_at, duration_s, error, log_path)
  SELECT id, sweep_id, key, label, status, config_json, method_name, method_version, host, git_rev,
         pid, attempts, created_at, started_at, finished_at, heartbeat_at, duration_s, error, log_path FROM runs;
DROP TABLE runs;
ALTER TABLE runs_v3 RENAME TO runs;
CREATE INDEX runs_status ON runs (sweep_id, status);
CREATE UNIQUE INDEX runs_current_key ON runs (sweep_id, key) WHERE status <> 'superseded';
CREATE INDEX runs_key ON runs (key);
)sql";

// reglab's trial keys and checksums before schema 3: FNV-1a 64 over the
// bytes, but from the offset basis 1469598103934665603 (a digit short of
// FNV's 14695981039346656037). Kept only to verify checksums recorded then,
// so that a file that no longer matches is not blessed by the migration.
std::string legacy_checksum(const std::string& bytes) {
  std::uint64_t h = 1469598103934665603ULL;
  for (unsigned char c : bytes) {
    h ^= c;
    h *= 1099511628211ULL;
  }
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(h));
  return buf;
}

// A path with its folder component `from` replaced by `to` ("" when absent).
std::string replace_component(const std::string& path, const std::string& from, const std::string& to) {
  const std::string needle = "/" + from + "/";
  const std::size_t at = path.find(needle);
  if (at == std::string::npos) return path;
  return path.substr(0, at) + "/" + to + "/" + path.substr(at + needle.size());
}

// Trial keys are the hash of the canonical resolved configuration, whose
// init.stage holds its stage's key: stages (which never chain) are rekeyed
// first, then the trials that start from them. A run's folder
// (<db folder>/runs/<sweep>/<key>) is renamed with its key, its log and
// artifact paths follow, and each folder gets its owner file. Artifact
// checksums that still match their file are recomputed; one that does not
// keeps its old value, so the file is treated as corrupt, as before.
void rekey_v3(SQLite::Database& db) {
  const std::string store_id = new_store_id();
  {
    SQLite::Statement m(db, "INSERT OR REPLACE INTO meta (key, value) VALUES ('store_id', ?), ('hash_algorithm', ?)");
    m.bind(1, store_id);
    m.bind(2, util::kHashAlgorithm);
    m.exec();
  }
  const std::filesystem::path db_file = db.getFilename();
  const std::filesystem::path results = db_file.has_parent_path() ? db_file.parent_path() : std::filesystem::path(".");
  struct Old {
    std::int64_t id;
    std::string sweep, key, config;
  };
  std::vector<Old> runs;
  {
    SQLite::Statement q(db, "SELECT r.id, s.name, r.key, r.config_json FROM runs r JOIN sweeps s ON s.id = r.sweep_id "
                            "ORDER BY (s.name <> '_stages'), r.id");
    while (q.executeStep())
      runs.push_back({q.getColumn(0).getInt64(), q.getColumn(1).getString(), q.getColumn(2).getString(),
                      q.getColumn(3).getString()});
  }
  std::map<std::string, std::string> new_key;  // old key -> new key
  SQLite::Statement up(db, "UPDATE runs SET key = ?, config_json = ?, log_path = ? WHERE id = ?");
  SQLite::Statement param(db, "UPDATE params SET value = ? WHERE run_id = ? AND key = 'init.stage'");
  for (const Old& r : runs) {
    nlohmann::json cfg;
    try {
      cfg = nlohmann::json::parse(r.config);
    } catch (const std::exception&) {
      continue;  // not a configuration reglab wrote; left as it is
    }
    std::string stage;
    if (cfg.contains("init") && cfg["init"].is_object() && cfg["init"].contains("stage") &&
        cfg["init"]["stage"].is_string()) {
      const auto it = new_key.find(cfg["init"]["stage"].get<std::string>());
      if (it != new_key.end()) {
        cfg["init"]["stage"] = it->second;
        stage = it->second;
      }
    }
    const std::string config = cfg.dump();
    const std::string key = util::hash_hex(config);
    new_key[r.key] = key;
    std::string log_path;
    {
      SQLite::Statement l(db, "SELECT log_path FROM runs WHERE id = ?");
      l.bind(1, r.id);
      l.executeStep();
      log_path = replace_component(l.getColumn(0).getString(), r.key, key);
    }
    up.bind(1, key);
    up.bind(2, config);
    up.bind(3, log_path);
    up.bind(4, r.id);
    up.exec();
    up.reset();
    if (!stage.empty()) {
      param.bind(1, stage);
      param.bind(2, r.id);
      param.exec();
      param.reset();
    }
    const std::filesystem::path old_dir = results / "runs" / r.sweep / r.key;
    const std::filesystem::path new_dir = results / "runs" / r.sweep / key;
    std::error_code ec;
    if (std::filesystem::is_directory(old_dir, ec) && !std::filesystem::exists(new_dir, ec))
      std::filesystem::rename(old_dir, new_dir, ec);  // a failure leaves an orphan folder, never resumed from
    if (std::filesystem::is_directory(new_dir, ec) && !read_run_folder_owner(new_dir))
      write_run_folder_owner(new_dir, {store_id, r.id, key});
    std::vector<std::pair<std::int64_t, std::string>> arts;
    {
      SQLite::Statement a(db, "SELECT id, path, checksum FROM artifacts WHERE run_id = ?");
      a.bind(1, r.id);
      while (a.executeStep()) {
        const std::string path = replace_component(a.getColumn(1).getString(), r.key, key);
        std::string checksum = a.getColumn(2).getString();
        try {
          if (std::filesystem::is_regular_file(path) && legacy_checksum(util::read_file(path)) == checksum)
            checksum = util::hash_file_hex(path);
        } catch (const std::exception&) {
        }
        arts.emplace_back(a.getColumn(0).getInt64(), path + '\n' + checksum);
      }
    }
    SQLite::Statement au(db, "UPDATE artifacts SET path = ?, checksum = ? WHERE id = ?");
    for (const auto& [id, both] : arts) {
      const std::size_t nl = both.find('\n');
      au.bind(1, both.substr(0, nl));
      au.bind(2, both.substr(nl + 1));
      au.bind(3, id);
      au.exec();
      au.reset();
    }
  }
}

// Version 4: the direction each run declared for each of its metrics
// (MetricSink::declare; "none" for fractions, counts, timings). Rankings use
// it instead of guessing from names. Runs recorded before it get the core's
// own keys back-filled from metrics/directions.h; plugin keys of those runs
// stay undeclared, so they are never ranked.
constexpr const char* kSchemaV4 = R"sql(
CREATE TABLE IF NOT EXISTS metric_directions (
  run_id    INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
  key       TEXT NOT NULL,
  direction TEXT NOT NULL CHECK (direction IN ('higher', 'lower', 'none')),
  PRIMARY KEY (run_id, key)
) WITHOUT ROWID;
)sql";

// The back-fill of version 4: a direction for every (run, key) of the core's
// that has metrics, then the "best" summaries again, since the old ones were
// ranked by a guess from the key's name (max for tta.err.<corruption>, a
// "best" for fractions). A best is kept only where a run already had
// summaries (they are written when a run finishes), as the earliest step
// reaching the max or min, the way Store::write_summaries does.
void backfill_metric_directions(SQLite::Database& db) {
  std::vector<std::pair<std::int64_t, std::string>> keys;
  {
    SQLite::Statement q(db, "SELECT DISTINCT run_id, key FROM metrics");
    while (q.executeStep()) keys.emplace_back(q.getColumn(0).getInt64(), q.getColumn(1).getString());
  }
  SQLite::Statement ins(db, "INSERT OR IGNORE INTO metric_directions (run_id, key, direction) VALUES (?, ?, ?)");
  for (const auto& [run_id, key] : keys) {
    const auto direction = metrics::core_direction(key);
    if (!direction) continue;
    ins.bind(1, run_id);
    ins.bind(2, key);
    ins.bind(3, to_string(*direction));
    ins.exec();
    ins.reset();
  }
  db.exec(R"sql(
DELETE FROM summaries WHERE kind = 'best';
INSERT INTO summaries (run_id, key, kind, value, step)
SELECT d.run_id, d.key, 'best', m.value, MIN(m.step)
FROM metric_directions d
JOIN metrics m ON m.run_id = d.run_id AND m.key = d.key
WHERE d.direction IN ('higher', 'lower')
  AND EXISTS (SELECT 1 FROM summaries s WHERE s.run_id = d.run_id AND s.key = d.key AND s.kind = 'final')
  AND m.value = (SELECT CASE d.direction WHEN 'higher' THEN MAX(x.value) ELSE MIN(x.value) END
                 FROM metrics x WHERE x.run_id = d.run_id AND x.key = d.key)
GROUP BY d.run_id, d.key;
)sql");
}

bool has_table(SQLite::Database& db, const char* name) {
  SQLite::Statement q(db, "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?");
  q.bind(1, name);
  return q.executeStep();
}

void write_version(SQLite::Database& db, int version) {
  SQLite::Statement q(db,
                      "INSERT INTO meta (key, value) VALUES ('schema_version', ?) "
                      "ON CONFLICT (key) DO UPDATE SET value = excluded.value");
  q.bind(1, std::to_string(version));
  q.exec();
}

}  // namespace

std::string new_store_id() {
  std::random_device rd;
  std::string seed;
  for (int i = 0; i < 8; ++i) seed += std::to_string(rd()) + ":";
  seed += util::now_iso8601() + ":" + util::hostname();
  return util::hash_hex(seed);
}

const std::vector<Migration>& migrations() {
  static const std::vector<Migration> steps = {
      {1, "create sweeps, runs, params, metrics, summaries, artifacts",
       [](SQLite::Database& db) { db.exec(kSchemaV1); }},
      {2, "add slurm_jobs, slurm_tasks, shard_merges (the Slurm executor)",
       [](SQLite::Database& db) { db.exec(kSchemaV2); }},
      {3, "code identity and superseded runs, the store's id, XXH3-128 keys and checksums",
       [](SQLite::Database& db) {
         db.exec(kSchemaV3);
         rekey_v3(db);
         // The rebuild must leave every reference to a run intact.
         SQLite::Statement check(db, "PRAGMA foreign_key_check");
         if (check.executeStep())
           throw std::runtime_error("foreign key check failed in table " + check.getColumn(0).getString());
       }},
      {4, "add metric_directions, back-filled for the core's metrics",
       [](SQLite::Database& db) {
         db.exec(kSchemaV4);
         backfill_metric_directions(db);
       }},
  };
  return steps;
}

int read_schema_version(SQLite::Database& db) {
  if (!has_table(db, "meta")) return 0;
  SQLite::Statement q(db, "SELECT value FROM meta WHERE key = 'schema_version'");
  if (!q.executeStep()) return 0;
  const std::string text = q.getColumn(0).getString();
  try {
    std::size_t used = 0;
    const int v = std::stoi(text, &used);
    if (used == text.size() && v >= 0) return v;
  } catch (const std::exception&) {
  }
  throw std::runtime_error("meta.schema_version is '" + text + "', not a version number");
}

void migrate(SQLite::Database& db, const std::vector<Migration>& steps,
             const std::filesystem::path& path) {
  const int newest = steps.empty() ? 0 : steps.back().version;
  auto version = [&] {
    try {
      return read_schema_version(db);
    } catch (const SQLite::Exception&) {
      throw;  // the store retries a busy open; other errors it names itself
    } catch (const std::runtime_error& e) {
      throw std::runtime_error("results database " + path.string() + ": " + e.what());
    }
  };
  for (const Migration& step : steps) {
    // Cheap check outside the lock first: an up-to-date database (the common
    // case) takes no write lock at all.
    if (version() >= step.version) continue;
    SQLite::Transaction tx(db, SQLite::TransactionBehavior::IMMEDIATE);
    const int current = version();  // another process may have moved it
    if (current >= step.version) continue;         // tx rolls back: nothing was written
    try {
      step.apply(db);
      if (!has_table(db, "meta")) db.exec("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)");
      write_version(db, step.version);
      tx.commit();
    } catch (const SQLite::Exception& e) {
      const int code = e.getErrorCode() & 0xff;
      if (code == SQLITE_BUSY || code == SQLITE_LOCKED) throw;  // retried by the store
      throw std::runtime_error("results database " + path.string() + ": migration to schema version " +
                               std::to_string(step.version) + " (" + step.description +
                               ") failed: " + e.what());
    } catch (const std::exception& e) {
      throw std::runtime_error("results database " + path.string() + ": migration to schema version " +
                               std::to_string(step.version) + " (" + step.description +
                               ") failed: " + e.what());
    }
  }
  const int final_version = version();
  if (final_version > newest) {
    throw std::runtime_error("results database " + path.string() + " has schema version " +
                             std::to_string(final_version) + ", newer than this reglab build (" +
                             std::to_string(newest) +
                             "); use a newer reglab or a different --db file");
  }
}

}  // namespace reglab::store
