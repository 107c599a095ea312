// Schema versions and migrations: older files are brought forward, newer
// ones refused, steps applied once and in order.
#include <SQLiteCpp/SQLiteCpp.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "store/run_folder.h"
#include "store/schema.h"
#include "store/store.h"
#include "store/testing.h"
#include "store/temp_db.h"

namespace reglab::store {
namespace {

using testing_support::TempDir;

bool has_table(SQLite::Database& db, const std::string& name) {
  SQLite::Statement q(db, "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?");
  q.bind(1, name);
  return q.executeStep();
}

bool has_column(SQLite::Database& db, const std::string& table, const std::string& column) {
  SQLite::Statement q(db, "SELECT 1 FROM pragma_table_info(?) WHERE name = ?");
  q.bind(1, table);
  q.bind(2, column);
  return q.executeStep();
}

std::string stored_version(SQLite::Database& db) {
  SQLite::Statement q(db, "SELECT value FROM meta WHERE key = 'schema_version'");
  if (!q.executeStep()) return "<none>";
  return q.getColumn(0).getString();
}

TEST(StoreMigration, StepsEndAtTheCurrentVersion) {
  const auto& steps = migrations();
  ASSERT_FALSE(steps.empty());
  EXPECT_EQ(steps.back().version, kSchemaVersion);
  // Increasing, not necessarily consecutive: versions are numbered where
  // they were planned, and a branch may merge before another's step.
  for (std::size_t i = 1; i < steps.size(); ++i) EXPECT_LT(steps[i - 1].version, steps[i].version) << i;
}

TEST(StoreMigration, VersionZeroWithOnlyMetaIsMigratedToCurrent) {
  TempDir dir;
  const auto path = dir.file("old.db");
  {
    SQLite::Database raw(path, SQLite::OPEN_READWRITE | SQLite::OPEN_CREATE);
    raw.exec("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)");
    raw.exec("INSERT INTO meta VALUES ('schema_version', '0')");
  }
  Store store(path);
  EXPECT_EQ(stored_version(store::raw_connection_for_tests(store)), std::to_string(kSchemaVersion));
  for (const char* t : {"sweeps", "runs", "params", "metrics", "summaries", "artifacts"}) {
    EXPECT_TRUE(has_table(store::raw_connection_for_tests(store), t)) << t;
  }
  // And it works.
  const auto sweep = store.upsert_sweep("s", "", "");
  EXPECT_GT(store.ensure_run(sweep, "k0000001", "", "{}", "m"), 0);
}

TEST(StoreMigration, FileWithSomeTablesButNoMetaKeepsItsRows) {
  TempDir dir;
  const auto path = dir.file("partial.db");
  {
    SQLite::Database raw(path, SQLite::OPEN_READWRITE | SQLite::OPEN_CREATE);
    raw.exec(
        "CREATE TABLE sweeps (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, "
        "description TEXT NOT NULL DEFAULT '', toml TEXT NOT NULL DEFAULT '', created_at TEXT NOT NULL)");
    raw.exec("INSERT INTO sweeps (name, created_at) VALUES ('kept', '2020-01-01T00:00:00.000Z')");
  }
  Store store(path);
  EXPECT_EQ(stored_version(store::raw_connection_for_tests(store)), std::to_string(kSchemaVersion));
  EXPECT_TRUE(has_table(store::raw_connection_for_tests(store), "metrics"));
  ASSERT_TRUE(store.find_sweep("kept"));
  EXPECT_EQ(store.find_sweep("kept")->created_at, "2020-01-01T00:00:00.000Z");
}

TEST(StoreMigration, Version1DatabaseGainsTheSlurmTablesAndKeepsItsRuns) {
  TempDir dir;
  const auto path = dir.file("v1.db");
  {
    SQLite::Database raw(path, SQLite::OPEN_READWRITE | SQLite::OPEN_CREATE);
    migrate(raw, {migrations().front()}, path);
    ASSERT_EQ(read_schema_version(raw), 1);
    raw.exec("INSERT INTO sweeps (name, created_at) VALUES ('old', '2026-01-01T00:00:00.000Z')");
    raw.exec("INSERT INTO runs (sweep_id, key, config_json, created_at, status) "
             "VALUES (1, 'k1k1k1k1', '{}', '2026-01-01T00:00:00.000Z', 'completed')");
    EXPECT_FALSE(has_table(raw, "slurm_jobs"));
  }
  Store store(path);
  EXPECT_EQ(read_schema_version(store::raw_connection_for_tests(store)), kSchemaVersion);
  for (const char* t : {"slurm_jobs", "slurm_tasks", "shard_merges"}) EXPECT_TRUE(has_table(store::raw_connection_for_tests(store), t)) << t;
  ASSERT_EQ(store.list_runs().size(), 1u);
  EXPECT_EQ(store.list_runs()[0].status, RunStatus::kCompleted);
}

// A results folder as reglab wrote it at schema 2 (16-digit keys from the
// old hash, run folders named by them, checksums of the old hash): schema 3
// rekeys it so that re-running the same sweep finds every run.
TEST(StoreMigration, Version2ResultsAreRekeyedWithTheirFoldersAndChecksums) {
  TempDir dir;
  namespace fs = std::filesystem;
  const auto path = dir.file("reglab.db");
  const std::string old_stage = "00000000000000aa", old_trial = "00000000000000bb";
  const fs::path stage_dir = dir.path() / "runs" / "_stages" / old_stage;
  const fs::path trial_dir = dir.path() / "runs" / "q" / old_trial;
  fs::create_directories(stage_dir);
  fs::create_directories(trial_dir);
  { std::ofstream(stage_dir / "checkpoint.pt") << "weights"; }
  { std::ofstream(trial_dir / "checkpoint.pt") << "other"; }
  {
    SQLite::Database raw(path, SQLite::OPEN_READWRITE | SQLite::OPEN_CREATE);
    migrate(raw, {migrations()[0], migrations()[1]}, path);
    ASSERT_EQ(read_schema_version(raw), 2);
    raw.exec("INSERT INTO sweeps (id, name, created_at) VALUES (1, '_stages', 't'), (2, 'q', 't')");
    raw.exec("INSERT INTO runs (id, sweep_id, key, config_json, created_at, status, log_path) VALUES "
             "(1, 1, '" + old_stage + "', '{\"seed\":0,\"task\":{\"epochs\":1}}', 't', 'completed', '" +
             (stage_dir / "trial.log").string() + "'), "
             "(2, 2, '" + old_trial + "', '{\"init\":{\"from\":\"stage.toml\",\"stage\":\"" + old_stage +
             "\"},\"seed\":1}', 't', 'completed', '" + (trial_dir / "trial.log").string() + "')");
    raw.exec("INSERT INTO params (run_id, key, value) VALUES (2, 'init.stage', '" + old_stage + "')");
    // 9296fccf0c30c964: FNV-1a 64 of b"weights" from the old basis
    // 1469598103934665603, by a Python loop (h ^= c; h = h * 1099511628211 % 2**64).
    raw.exec("INSERT INTO artifacts (run_id, kind, path, checksum, created_at) VALUES "
             "(1, 'checkpoint', '" + (stage_dir / "checkpoint.pt").string() + "', '9296fccf0c30c964', 't'), "
             "(2, 'checkpoint', '" + (trial_dir / "checkpoint.pt").string() + "', '0123456789abcdef', 't')");
  }
  Store store(path);
  EXPECT_EQ(read_schema_version(store::raw_connection_for_tests(store)), kSchemaVersion);
  EXPECT_EQ(store.store_id().size(), 32u);
  {
    SQLite::Statement q(store::raw_connection_for_tests(store), "SELECT value FROM meta WHERE key = 'hash_algorithm'");
    ASSERT_TRUE(q.executeStep());
    EXPECT_EQ(q.getColumn(0).getString(), "xxh3-128");
  }
  // Expected keys from Debian's python3-xxhash 3.0.0:
  //   xxhash.xxh3_128_hexdigest(json.dumps(cfg, sort_keys=True, separators=(",", ":")).encode())
  const std::string stage_key = "4613a904ca013feb4617bbf1f33e412e";  // {"seed":0,"task":{"epochs":1}}
  // {"init":{"from":"stage.toml","stage":"4613a904ca013feb4617bbf1f33e412e"},"seed":1}
  const std::string trial_key = "66b491874c341e439fd715ff1a5b9628";
  const auto stage = *store.get_run(1);
  const auto trial = *store.get_run(2);
  EXPECT_EQ(stage.key, stage_key);
  EXPECT_EQ(trial.key, trial_key);
  EXPECT_NE(trial.config_json.find(stage_key), std::string::npos) << trial.config_json;
  EXPECT_EQ(store.params(2).at(0).value, stage_key);
  EXPECT_EQ(trial.status, RunStatus::kCompleted);
  // Folders follow their keys, with their owner files; paths follow the folders.
  const fs::path new_stage_dir = dir.path() / "runs" / "_stages" / stage_key;
  EXPECT_FALSE(fs::exists(stage_dir));
  EXPECT_TRUE(fs::exists(new_stage_dir / "checkpoint.pt"));
  ASSERT_TRUE(read_run_folder_owner(new_stage_dir));
  EXPECT_EQ(*read_run_folder_owner(new_stage_dir), (FolderOwner{store.store_id(), 1, stage_key}));
  EXPECT_EQ(stage.log_path, (new_stage_dir / "trial.log").string());
  const auto arts = store.artifacts(1);
  ASSERT_EQ(arts.size(), 1u);
  EXPECT_EQ(arts[0].path, (new_stage_dir / "checkpoint.pt").string());
  // xxhash.xxh3_128_hexdigest(b"weights"): the checksum that matched is recomputed...
  EXPECT_EQ(arts[0].checksum, "bdbda1eb6e05adc4800d98e5524fefbc");
  // ...and one that did not match its file keeps its value (the file stays suspect).
  EXPECT_EQ(store.artifacts(2).at(0).checksum, "0123456789abcdef");
  // A current key is unique among runs that are not superseded.
  const auto sweep = store.find_sweep("q")->id;
  EXPECT_EQ(store.ensure_run(sweep, trial_key, "", trial.config_json, ""), 2);
}

TEST(StoreMigration, NewerDatabaseIsRefusedWithBothVersions) {
  TempDir dir;
  const auto path = dir.file("future.db");
  { Store store(path); }
  {
    SQLite::Database raw(path, SQLite::OPEN_READWRITE);
    raw.exec("UPDATE meta SET value = '99' WHERE key = 'schema_version'");
  }
  try {
    Store store(path);
    FAIL() << "expected an error";
  } catch (const std::runtime_error& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("99"), std::string::npos) << msg;
    EXPECT_NE(msg.find(std::to_string(kSchemaVersion)), std::string::npos) << msg;
    EXPECT_NE(msg.find(path.string()), std::string::npos) << msg;
  }
}

TEST(StoreMigration, GarbledVersionIsAnError) {
  TempDir dir;
  const auto path = dir.file("garbled.db");
  { Store store(path); }
  {
    SQLite::Database raw(path, SQLite::OPEN_READWRITE);
    raw.exec("UPDATE meta SET value = 'one' WHERE key = 'schema_version'");
  }
  try {
    Store store(path);
    FAIL() << "expected an error";
  } catch (const std::runtime_error& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("'one'"), std::string::npos) << msg;
    EXPECT_NE(msg.find(path.string()), std::string::npos) << msg;
  }
}

TEST(StoreMigration, StepsRunInOrderOnceEach) {
  TempDir dir;
  SQLite::Database db(dir.file("steps.db"), SQLite::OPEN_READWRITE | SQLite::OPEN_CREATE);
  std::vector<int> applied;
  const std::vector<Migration> steps = {
      {1, "create t", [&](SQLite::Database& d) { applied.push_back(1); d.exec("CREATE TABLE t (a INTEGER)"); }},
      {2, "add t.b", [&](SQLite::Database& d) { applied.push_back(2); d.exec("ALTER TABLE t ADD COLUMN b TEXT"); }},
      {3, "add t.c", [&](SQLite::Database& d) { applied.push_back(3); d.exec("ALTER TABLE t ADD COLUMN c REAL"); }},
  };
  EXPECT_EQ(read_schema_version(db), 0);
  migrate(db, steps, "steps.db");
  EXPECT_EQ(applied, (std::vector<int>{1, 2, 3}));
  EXPECT_EQ(read_schema_version(db), 3);
  EXPECT_TRUE(has_column(db, "t", "c"));
  migrate(db, steps, "steps.db");
  EXPECT_EQ(applied, (std::vector<int>{1, 2, 3}));  // nothing re-applied
}

TEST(StoreMigration, ACurrentDatabaseTakesOnlyTheNewStep) {
  TempDir dir;
  const auto path = dir.file("r.db");
  Store store(path);
  std::vector<Migration> steps = migrations();
  int calls = 0;
  steps.push_back({kSchemaVersion + 1, "add runs.notes", [&](SQLite::Database& d) {
                     ++calls;
                     d.exec("ALTER TABLE runs ADD COLUMN notes TEXT NOT NULL DEFAULT ''");
                   }});
  migrate(store::raw_connection_for_tests(store), steps, path);
  EXPECT_EQ(calls, 1);
  EXPECT_EQ(read_schema_version(store::raw_connection_for_tests(store)), kSchemaVersion + 1);
  EXPECT_TRUE(has_column(store::raw_connection_for_tests(store), "runs", "notes"));
}

TEST(StoreMigration, FailingStepIsRolledBackAndNamed) {
  TempDir dir;
  SQLite::Database db(dir.file("fail.db"), SQLite::OPEN_READWRITE | SQLite::OPEN_CREATE);
  const std::vector<Migration> steps = {
      {1, "create t", [](SQLite::Database& d) { d.exec("CREATE TABLE t (a INTEGER)"); }},
      {2, "broken step", [](SQLite::Database& d) {
         d.exec("CREATE TABLE u (a INTEGER)");
         d.exec("THIS IS NOT SQL");
       }},
  };
  try {
    migrate(db, steps, "fail.db");
    FAIL() << "expected an error";
  } catch (const std::runtime_error& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("broken step"), std::string::npos) << msg;
    EXPECT_NE(msg.find("fail.db"), std::string::npos) << msg;
  }
  EXPECT_EQ(read_schema_version(db), 1);  // step 1 committed, step 2 not
  EXPECT_TRUE(has_table(db, "t"));
  EXPECT_FALSE(has_table(db, "u"));
}

}  // namespace
}  // namespace reglab::store
