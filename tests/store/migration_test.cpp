// Schema versions and migrations: older files are brought forward, newer
// ones refused, steps applied once and in order.
#include <SQLiteCpp/SQLiteCpp.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "store/schema.h"
#include "store/store.h"
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
  EXPECT_EQ(stored_version(store.db()), std::to_string(kSchemaVersion));
  for (const char* t : {"sweeps", "runs", "params", "metrics", "summaries", "artifacts"}) {
    EXPECT_TRUE(has_table(store.db(), t)) << t;
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
  EXPECT_EQ(stored_version(store.db()), std::to_string(kSchemaVersion));
  EXPECT_TRUE(has_table(store.db(), "metrics"));
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
  EXPECT_EQ(read_schema_version(store.db()), kSchemaVersion);
  for (const char* t : {"slurm_jobs", "slurm_tasks", "shard_merges"}) EXPECT_TRUE(has_table(store.db(), t)) << t;
  ASSERT_EQ(store.list_runs().size(), 1u);
  EXPECT_EQ(store.list_runs()[0].status, RunStatus::kCompleted);
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
  migrate(store.db(), steps, path);
  EXPECT_EQ(calls, 1);
  EXPECT_EQ(read_schema_version(store.db()), kSchemaVersion + 1);
  EXPECT_TRUE(has_column(store.db(), "runs", "notes"));
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
