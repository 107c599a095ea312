// Store: schema, sweeps, runs, status transitions, stale runs, metrics,
// summaries and artifacts, all on real SQLite files.
#include "store/store.h"

#include <SQLiteCpp/SQLiteCpp.h>
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmath>
#include <fstream>
#include <limits>
#include <set>
#include <string>

#include "store/temp_db.h"
#include "store/testing.h"

namespace reglab::store {
namespace {

using testing_support::TempDir;

std::int64_t count(SQLite::Database& db, const std::string& sql) {
  SQLite::Statement q(db, sql);
  q.executeStep();
  return q.getColumn(0).getInt64();
}

std::set<std::string> tables(SQLite::Database& db) {
  std::set<std::string> out;
  SQLite::Statement q(db, "SELECT name FROM sqlite_master WHERE type = 'table'");
  while (q.executeStep()) out.insert(q.getColumn(0).getString());
  return out;
}

std::string text(SQLite::Database& db, const std::string& sql) {
  SQLite::Statement q(db, sql);
  q.executeStep();
  return q.getColumn(0).getString();
}

const char* kConfig = R"({"method":{"name":"elr","lambda":3.0,"beta":0.7},)"
                      R"("optim":{"lr":0.1,"nesterov":true,"milestones":[30,60]},)"
                      R"("data":{"name":"cifar10","noise":{"rate":0.4}},"seed":1,"note":null,"extra":{}})";

// --- schema -----------------------------------------------------------------

TEST(StoreSchema, CreatesAllTablesWithWalForeignKeysAndBusyTimeout) {
  TempDir dir;
  Store store(dir.file("reglab.db"));
  const auto t = tables(store::raw_connection_for_tests(store));
  for (const char* name : {"meta", "sweeps", "runs", "params", "metrics", "summaries", "artifacts", "slurm_jobs",
                           "slurm_tasks", "shard_merges", "metric_directions"}) {
    EXPECT_TRUE(t.count(name)) << "missing table " << name;
  }
  EXPECT_EQ(text(store::raw_connection_for_tests(store), "SELECT value FROM meta WHERE key = 'schema_version'"), std::to_string(kSchemaVersion));
  EXPECT_EQ(text(store::raw_connection_for_tests(store), "PRAGMA journal_mode"), "wal");
  EXPECT_EQ(count(store::raw_connection_for_tests(store), "PRAGMA foreign_keys"), 1);
  EXPECT_EQ(count(store::raw_connection_for_tests(store), "PRAGMA busy_timeout"), 30000);
}

TEST(StoreSchema, ReopenKeepsVersionAndData) {
  TempDir dir;
  const auto path = dir.file("reglab.db");
  std::int64_t sweep_id = 0;
  {
    Store store(path);
    sweep_id = store.upsert_sweep("s1", "first", "[sweep]\nseeds = [1]\n");
  }
  Store again(path);
  EXPECT_EQ(text(store::raw_connection_for_tests(again), "SELECT value FROM meta WHERE key = 'schema_version'"), std::to_string(kSchemaVersion));
  // schema_version, store_id, hash_algorithm; the id survives the reopen.
  EXPECT_EQ(count(store::raw_connection_for_tests(again), "SELECT count(*) FROM meta"), 3);
  const auto s = again.find_sweep("s1");
  ASSERT_TRUE(s.has_value());
  EXPECT_EQ(s->id, sweep_id);
  EXPECT_EQ(s->toml, "[sweep]\nseeds = [1]\n");
}

TEST(StoreSchema, CreatesMissingParentFolders) {
  TempDir dir;
  const auto path = dir.path() / "a" / "b" / "results.db";
  Store store(path);
  EXPECT_TRUE(std::filesystem::exists(path));
  EXPECT_EQ(store.path(), path);
}

TEST(StoreSchema, NotADatabaseNamesThePath) {
  TempDir dir;
  const auto path = dir.file("garbage.db");
  {
    std::ofstream out(path);
    out << "this is certainly not an SQLite file, but it is long enough to have a header..........";
  }
  try {
    Store store(path);
    FAIL() << "expected an error";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find(path.string()), std::string::npos) << e.what();
  }
}

// --- sweeps -----------------------------------------------------------------

TEST(StoreSweeps, UpsertByName) {
  TempDir dir;
  Store store(dir.file("r.db"));
  const auto a = store.upsert_sweep("alpha", "one", "x = 1");
  const auto b = store.upsert_sweep("beta", "", "");
  const auto a2 = store.upsert_sweep("alpha", "two", "x = 2");
  EXPECT_EQ(a, a2);
  EXPECT_NE(a, b);
  const auto s = store.find_sweep("alpha");
  ASSERT_TRUE(s);
  EXPECT_EQ(s->description, "two");
  EXPECT_EQ(s->toml, "x = 2");
  EXPECT_FALSE(s->created_at.empty());
  EXPECT_FALSE(store.find_sweep("gamma"));
  const auto all = store.list_sweeps();
  ASSERT_EQ(all.size(), 2u);
  EXPECT_EQ(all[0].name, "alpha");
  EXPECT_EQ(all[1].name, "beta");
}

// --- runs -------------------------------------------------------------------

TEST(StoreRuns, EnsureRunIsIdempotentAndLeavesACompletedRunAlone) {
  TempDir dir;
  Store store(dir.file("r.db"));
  const auto sweep = store.upsert_sweep("s", "", "");
  const auto id = store.ensure_run(sweep, "abcdef0123456789", "elr seed=1", kConfig, "elr");
  EXPECT_EQ(store.ensure_run(sweep, "abcdef0123456789", "elr seed=1", kConfig, "elr"), id);
  EXPECT_EQ(store.list_runs(sweep).size(), 1u);

  store.mark_running(id, 4242, "hostA", "abc123", "/tmp/log.txt");
  store.mark_finished(id, RunStatus::kCompleted, "");
  const auto before = store.get_run(id);
  ASSERT_TRUE(before);

  EXPECT_EQ(store.ensure_run(sweep, "abcdef0123456789", "another label", R"({"x":1})", "other"), id);
  const auto after = store.get_run(id);
  ASSERT_TRUE(after);
  EXPECT_EQ(after->status, RunStatus::kCompleted);
  EXPECT_EQ(after->label, "elr seed=1");
  EXPECT_EQ(after->config_json, kConfig);
  EXPECT_EQ(after->method_name, "elr");
  EXPECT_EQ(after->attempts, 1);
  EXPECT_EQ(after->finished_at, before->finished_at);
  EXPECT_EQ(count(store::raw_connection_for_tests(store), "SELECT count(*) FROM runs"), 1);
  // The same key in another sweep is another run.
  const auto other = store.upsert_sweep("t", "", "");
  EXPECT_NE(store.ensure_run(other, "abcdef0123456789", "", kConfig, "elr"), id);
}

TEST(StoreRuns, EnsureRunsAddsTheNewOnesInOrderAndKeepsTheExisting) {
  TempDir dir;
  Store store(dir.file("r.db"));
  const auto sweep = store.upsert_sweep("s", "", "");
  const auto old = store.ensure_run(sweep, "k2k2k2k2", "two", kConfig, "elr");
  store.mark_running(old, 1, "h", "r", "");
  store.mark_finished(old, RunStatus::kCompleted, "");
  const auto ids = store.ensure_runs(sweep, {{"k1k1k1k1", "one", kConfig, "elr"},
                                             {"k2k2k2k2", "changed", R"({"x":1})", "other"},
                                             {"k3k3k3k3", "three", kConfig, "ce"}});
  ASSERT_EQ(ids.size(), 3u);
  EXPECT_EQ(ids[1], old);
  EXPECT_EQ(store.get_run(ids[0])->label, "one");
  EXPECT_EQ(store.get_run(ids[2])->method_name, "ce");
  EXPECT_EQ(store.get_run(ids[2])->status, RunStatus::kPending);
  EXPECT_EQ(store.get_run(old)->label, "two");
  EXPECT_EQ(store.get_run(old)->status, RunStatus::kCompleted);
  EXPECT_EQ(store.params(ids[0]).size(), store.params(old).size());
  EXPECT_EQ(count(store::raw_connection_for_tests(store), "SELECT count(*) FROM runs"), 3);
  // Again: nothing new, the same ids.
  EXPECT_EQ(store.ensure_runs(sweep, {{"k3k3k3k3", "", "{}", ""}, {"k1k1k1k1", "", "{}", ""}}),
            (std::vector<std::int64_t>{ids[2], ids[0]}));
  EXPECT_THROW(store.ensure_runs(sweep, {{"k4k4k4k4", "", "[1]", ""}}), std::invalid_argument);
  EXPECT_EQ(count(store::raw_connection_for_tests(store), "SELECT count(*) FROM runs"), 3);
}

TEST(StoreRuns, NewRunIsPendingWithItsFields) {
  TempDir dir;
  Store store(dir.file("r.db"));
  const auto sweep = store.upsert_sweep("s", "", "");
  const auto id = store.ensure_run(sweep, "k1k1k1k1", "lbl", kConfig, "elr");
  const auto r = store.get_run(id);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->sweep_id, sweep);
  EXPECT_EQ(r->sweep_name, "s");
  EXPECT_EQ(r->key, "k1k1k1k1");
  EXPECT_EQ(r->label, "lbl");
  EXPECT_EQ(r->status, RunStatus::kPending);
  EXPECT_EQ(r->attempts, 0);
  EXPECT_FALSE(r->created_at.empty());
  EXPECT_TRUE(r->started_at.empty());
  EXPECT_FALSE(store.get_run(id + 100));
}

TEST(StoreRuns, ParamsAreTheFlattenedConfig) {
  TempDir dir;
  Store store(dir.file("r.db"));
  const auto sweep = store.upsert_sweep("s", "", "");
  const auto id = store.ensure_run(sweep, "key00001", "", kConfig, "elr");
  std::map<std::string, ParamRow> by_key;
  for (auto& p : store.params(id)) by_key[p.key] = p;
  const std::set<std::string> expected_keys = {"method.name", "method.lambda", "method.beta", "optim.lr",
                                               "optim.nesterov", "optim.milestones", "data.name",
                                               "data.noise.rate", "seed", "note", "extra"};
  std::set<std::string> keys;
  for (auto& [k, v] : by_key) keys.insert(k);
  EXPECT_EQ(keys, expected_keys);

  EXPECT_EQ(by_key["method.name"].value, "elr");
  EXPECT_FALSE(by_key["method.name"].numeric);
  EXPECT_EQ(by_key["optim.lr"].value, "0.1");
  ASSERT_TRUE(by_key["optim.lr"].numeric);
  EXPECT_DOUBLE_EQ(*by_key["optim.lr"].numeric, 0.1);
  EXPECT_DOUBLE_EQ(*by_key["data.noise.rate"].numeric, 0.4);
  EXPECT_EQ(by_key["seed"].value, "1");
  EXPECT_DOUBLE_EQ(*by_key["seed"].numeric, 1.0);
  EXPECT_EQ(by_key["optim.nesterov"].value, "true");
  EXPECT_FALSE(by_key["optim.nesterov"].numeric);  // a boolean is not a number
  EXPECT_EQ(by_key["optim.milestones"].value, "[30,60]");
  EXPECT_EQ(by_key["note"].value, "null");
  EXPECT_EQ(by_key["extra"].value, "{}");

  // The same through plain SQL, as results/README.md shows it.
  EXPECT_EQ(text(store::raw_connection_for_tests(store), "SELECT value FROM params WHERE key = 'data.noise.rate'"), "0.4");
  EXPECT_EQ(count(store::raw_connection_for_tests(store), "SELECT count(*) FROM params WHERE value_num IS NOT NULL"), 5);
}

TEST(StoreRuns, BadConfigNamesTheRunKey) {
  TempDir dir;
  Store store(dir.file("r.db"));
  const auto sweep = store.upsert_sweep("s", "", "");
  try {
    store.ensure_run(sweep, "badkey99", "", "{not json", "elr");
    FAIL() << "expected an error";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("badkey99"), std::string::npos) << e.what();
  }
  EXPECT_THROW(store.ensure_run(sweep, "arraykey", "", "[1,2]", "elr"), std::invalid_argument);
  EXPECT_THROW(store.ensure_run(sweep + 7, "nosweep1", "", "{}", "elr"), std::runtime_error);
  EXPECT_EQ(count(store::raw_connection_for_tests(store), "SELECT count(*) FROM runs"), 0);
}

TEST(StoreRuns, FindRunByIdOrKeyPrefix) {
  TempDir dir;
  Store store(dir.file("r.db"));
  const auto sweep = store.upsert_sweep("s", "", "");
  const auto a = store.ensure_run(sweep, "deadbeef0001", "", "{}", "m");
  const auto b = store.ensure_run(sweep, "deadbeef0002", "", "{}", "m");
  const auto c = store.ensure_run(sweep, "cafe00000000", "", "{}", "m");
  ASSERT_TRUE(store.find_run(std::to_string(b)));
  EXPECT_EQ(store.find_run(std::to_string(b))->id, b);
  EXPECT_EQ(store.find_run("cafe")->id, c);
  EXPECT_EQ(store.find_run("deadbeef0001")->id, a);
  EXPECT_FALSE(store.find_run("caf"));  // shorter than 4 characters
  EXPECT_FALSE(store.find_run("ffff"));
  try {
    store.find_run("deadbeef");
    FAIL() << "expected an ambiguity error";
  } catch (const std::runtime_error& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("deadbeef0001"), std::string::npos) << msg;
    EXPECT_NE(msg.find("deadbeef0002"), std::string::npos) << msg;
  }
}

TEST(StoreRuns, StatusTransitions) {
  TempDir dir;
  Store store(dir.file("r.db"));
  const auto sweep = store.upsert_sweep("s", "", "");
  const auto id = store.ensure_run(sweep, "k0000001", "", "{}", "elr");

  store.mark_running(id, 1234, "hostA", "rev1", "/logs/1.log");
  auto r = *store.get_run(id);
  EXPECT_EQ(r.status, RunStatus::kRunning);
  EXPECT_EQ(r.pid, 1234);
  EXPECT_EQ(r.host, "hostA");
  EXPECT_EQ(r.git_rev, "rev1");
  EXPECT_EQ(r.log_path, "/logs/1.log");
  EXPECT_EQ(r.attempts, 1);
  EXPECT_FALSE(r.started_at.empty());
  EXPECT_FALSE(r.heartbeat_at.empty());

  store.set_code_identity(id, "1.2.0", "", "");
  store.heartbeat(id);
  store.mark_finished(id, RunStatus::kFailed, "CUDA out of memory");
  r = *store.get_run(id);
  EXPECT_EQ(r.status, RunStatus::kFailed);
  EXPECT_EQ(r.error, "CUDA out of memory");
  EXPECT_EQ(r.method_version, "1.2.0");
  EXPECT_FALSE(r.finished_at.empty());
  EXPECT_GE(r.duration_s, 0.0);
  EXPECT_LT(r.duration_s, 60.0);

  store.mark_running(id, 5678, "hostB", "rev2", "/logs/2.log");
  r = *store.get_run(id);
  EXPECT_EQ(r.status, RunStatus::kRunning);
  EXPECT_EQ(r.attempts, 2);
  EXPECT_EQ(r.error, "");
  EXPECT_TRUE(r.finished_at.empty());
  EXPECT_EQ(r.pid, 5678);

  store.mark_finished(id, RunStatus::kCompleted, "");
  EXPECT_EQ(store.get_run(id)->status, RunStatus::kCompleted);
  EXPECT_EQ(text(store::raw_connection_for_tests(store), "SELECT status FROM runs"), "completed");

  EXPECT_THROW(store.mark_finished(id, RunStatus::kRunning, ""), std::invalid_argument);
  EXPECT_THROW(store.mark_finished(id, RunStatus::kPending, ""), std::invalid_argument);
  EXPECT_THROW(store.mark_running(id + 50, 1, "h", "r", ""), std::runtime_error);
  EXPECT_THROW(store.mark_finished(id + 50, RunStatus::kFailed, ""), std::runtime_error);
  EXPECT_THROW(store.heartbeat(id + 50), std::runtime_error);
}

TEST(StoreRuns, ClaimTakesOnlyRunsNobodyIsRunning) {
  TempDir dir;
  Store a(dir.file("r.db"));
  Store b(dir.file("r.db"));  // a second coordinator on the same file
  const auto sweep = a.upsert_sweep("s", "", "");
  const auto id = a.ensure_run(sweep, "k0000001", "", "{}", "ce");

  EXPECT_TRUE(a.claim_run(id, 100, "h", "rev", "/l.log"));
  EXPECT_FALSE(b.claim_run(id, 200, "h", "rev", "/l.log"));  // already running
  auto r = *a.get_run(id);
  EXPECT_EQ(r.status, RunStatus::kRunning);
  EXPECT_EQ(r.pid, 100);
  EXPECT_EQ(r.attempts, 1);
  a.set_run_pid(id, 4242);
  EXPECT_EQ(b.get_run(id)->pid, 4242);

  a.mark_finished(id, RunStatus::kInterrupted, "stopped");
  EXPECT_TRUE(b.claim_run(id, 300, "h", "rev", "/l.log"));  // interrupted runs are claimable
  EXPECT_EQ(b.get_run(id)->attempts, 2);
  b.mark_finished(id, RunStatus::kCompleted, "");
  EXPECT_FALSE(a.claim_run(id, 400, "h", "rev", "/l.log"));  // completed runs never are
  EXPECT_EQ(a.get_run(id)->attempts, 2);
  EXPECT_THROW(a.set_run_pid(id + 50, 1), std::runtime_error);
}

TEST(StoreRuns, StatusNamesRoundTrip) {
  for (auto s : {RunStatus::kPending, RunStatus::kRunning, RunStatus::kCompleted, RunStatus::kFailed,
                 RunStatus::kInterrupted}) {
    EXPECT_EQ(run_status_from_string(to_string(s)), s);
  }
  EXPECT_STREQ(to_string(RunStatus::kInterrupted), "interrupted");
  EXPECT_THROW(run_status_from_string("done"), std::invalid_argument);
}

TEST(StoreRuns, MarkInterruptedIfRunningChangesOnlyARunningRun) {
  TempDir dir;
  Store store(dir.file("r.db"));
  const auto sweep = store.upsert_sweep("s", "", "");
  const auto running = store.ensure_run(sweep, "run00001", "", "{}", "m");
  const auto completed = store.ensure_run(sweep, "run00002", "", "{}", "m");
  store.mark_running(running, 1, "h", "", "");
  store.mark_running(completed, 1, "h", "", "");
  store.mark_finished(completed, RunStatus::kCompleted, "");
  EXPECT_TRUE(store.mark_interrupted_if_running(running, "interrupted: its worker is gone"));
  const auto r = *store.get_run(running);
  EXPECT_EQ(r.status, RunStatus::kInterrupted);
  EXPECT_EQ(r.error, "interrupted: its worker is gone");
  EXPECT_FALSE(r.finished_at.empty());
  EXPECT_FALSE(store.mark_interrupted_if_running(running, "again"));
  EXPECT_FALSE(store.mark_interrupted_if_running(completed, "no"));
  EXPECT_EQ(store.get_run(completed)->status, RunStatus::kCompleted);
}

TEST(StoreRuns, SupersedingKeepsTheOldAttemptAndAddsAPendingOne) {
  TempDir dir;
  Store store(dir.file("r.db"));
  const auto sweep = store.upsert_sweep("s", "", "");
  const auto old = store.ensure_run(sweep, "key00001", "lbl", R"({"optim":{"lr":0.1}})", "ce");
  store.mark_running(old, 1, "h", "", "/r/key00001/trial.log");
  store.set_code_identity(old, "1.0", "aaaa", "bbbb");
  store.add_metrics(old, {{"test.acc", 1, 0.5}});
  store.mark_finished(old, RunStatus::kCompleted, "");
  const auto fresh = store.supersede_run(old, "superseded: other code");
  EXPECT_NE(fresh, old);
  const auto o = *store.get_run(old);
  EXPECT_EQ(o.status, RunStatus::kSuperseded);
  EXPECT_EQ(o.superseded_by, fresh);
  EXPECT_EQ(o.method_digest, "aaaa");
  EXPECT_EQ(store.metrics(old).size(), 1u) << "the old attempt stays queryable";
  const auto n = *store.get_run(fresh);
  EXPECT_EQ(n.status, RunStatus::kPending);
  EXPECT_EQ(n.key, "key00001");
  EXPECT_EQ(n.config_json, o.config_json);
  EXPECT_EQ(store.params(fresh).size(), 1u);
  // The key now names the new attempt, for ensure_run and for prefixes.
  EXPECT_EQ(store.ensure_run(sweep, "key00001", "lbl", R"({"optim":{"lr":0.1}})", "ce"), fresh);
  EXPECT_EQ(store.find_run("key0")->id, fresh);
  EXPECT_EQ(store.find_run(std::to_string(old))->id, old);
  EXPECT_THROW(store.supersede_run(old, "twice"), std::runtime_error);
  store.move_run_files(old, "/r/key00001", "/r/key00001.aside-1");
  EXPECT_EQ(store.get_run(old)->log_path, "/r/key00001.aside-1/trial.log");
}

TEST(StoreRuns, EveryStoreHasItsOwnId) {
  TempDir dir;
  std::string a, b;
  {
    Store s(dir.file("a.db"));
    a = s.store_id();
  }
  { b = Store(dir.file("b.db")).store_id(); }
  EXPECT_EQ(a.size(), 32u);
  EXPECT_NE(a, b);
  EXPECT_EQ(Store(dir.file("a.db")).store_id(), a) << "the id is kept by the database";
}

// --- metrics ----------------------------------------------------------------

TEST(StoreMetrics, RepeatedPointReplacesTheOldValue) {
  TempDir dir;
  Store store(dir.file("r.db"));
  const auto sweep = store.upsert_sweep("s", "", "");
  const auto id = store.ensure_run(sweep, "k0000001", "", "{}", "m");
  store.add_metrics(id, {{"test.acc", 1, 0.50}, {"test.acc", 2, 0.60}});
  store.add_metrics(id, {{"test.acc", 1, 0.55}});
  EXPECT_EQ(count(store::raw_connection_for_tests(store), "SELECT count(*) FROM metrics WHERE key = 'test.acc' AND step = 1"), 1);
  const auto pts = store.metrics(id, "test.%");
  ASSERT_EQ(pts.size(), 2u);
  EXPECT_EQ(pts[0].step, 1);
  EXPECT_DOUBLE_EQ(pts[0].value, 0.55);
  EXPECT_EQ(pts[1].step, 2);
  EXPECT_DOUBLE_EQ(pts[1].value, 0.60);
  EXPECT_TRUE(store.metrics(id, "train.%").empty());
}

TEST(StoreMetrics, HundredThousandPointsInOneBatch) {
  TempDir dir;
  Store store(dir.file("r.db"));
  const auto sweep = store.upsert_sweep("s", "", "");
  const auto id = store.ensure_run(sweep, "k0000001", "", "{}", "m");
  std::vector<MetricPoint> pts;
  double expected_sum = 0;
  for (int k = 0; k < 10; ++k) {
    for (int step = 0; step < 10000; ++step) {
      const double v = k + step * 1e-4;
      pts.push_back({"train.m" + std::to_string(k), step, v});
      expected_sum += v;
    }
  }
  store.add_metrics(id, pts);
  EXPECT_EQ(count(store::raw_connection_for_tests(store), "SELECT count(*) FROM metrics"), 100000);
  EXPECT_EQ(count(store::raw_connection_for_tests(store), "SELECT count(DISTINCT key) FROM metrics"), 10);
  SQLite::Statement q(store::raw_connection_for_tests(store), "SELECT sum(value) FROM metrics WHERE run_id = ?");
  q.bind(1, id);
  ASSERT_TRUE(q.executeStep());
  EXPECT_NEAR(q.getColumn(0).getDouble(), expected_sum, 1e-6);
  const auto m7 = store.metrics(id, "train.m7");
  ASSERT_EQ(m7.size(), 10000u);
  EXPECT_EQ(m7[1234].step, 1234);
  EXPECT_DOUBLE_EQ(m7[1234].value, 7 + 1234 * 1e-4);
}

TEST(StoreMetrics, NaNIsStoredAsNullAndReadBackAsNaN) {
  TempDir dir;
  Store store(dir.file("r.db"));
  const auto sweep = store.upsert_sweep("s", "", "");
  const auto id = store.ensure_run(sweep, "k0000001", "", "{}", "m");
  store.add_metrics(id, {{"train.loss", 1, std::numeric_limits<double>::quiet_NaN()}});
  EXPECT_EQ(count(store::raw_connection_for_tests(store), "SELECT count(*) FROM metrics WHERE value IS NULL"), 1);
  const auto pts = store.metrics(id);
  ASSERT_EQ(pts.size(), 1u);
  EXPECT_TRUE(std::isnan(pts[0].value));
}

TEST(StoreMetrics, UnknownRunIsRejected) {
  TempDir dir;
  Store store(dir.file("r.db"));
  try {
    store.add_metrics(99, {{"test.acc", 1, 0.5}});
    FAIL() << "expected an error";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("no run with id 99"), std::string::npos) << e.what();
  }
  EXPECT_EQ(count(store::raw_connection_for_tests(store), "SELECT count(*) FROM metrics"), 0);
  // The connection stays usable after the failed batch.
  const auto sweep = store.upsert_sweep("s", "", "");
  const auto id = store.ensure_run(sweep, "k0000001", "", "{}", "m");
  store.add_metrics(id, {{"test.acc", 1, 0.5}});
  EXPECT_EQ(count(store::raw_connection_for_tests(store), "SELECT count(*) FROM metrics"), 1);
}

// --- summaries ----------------------------------------------------------------

TEST(StoreSummaries, FinalIsLastStepBestIsMaxOrMinByDeclaredDirection) {
  TempDir dir;
  Store store(dir.file("r.db"));
  const auto sweep = store.upsert_sweep("s", "", "");
  const auto id = store.ensure_run(sweep, "k0000001", "", "{}", "m");
  store.declare_metrics(id, {{"test.acc", MetricDirection::kHigher},
                             {"val.loss", MetricDirection::kLower},
                             {"test.ece", MetricDirection::kLower},
                             {"train.loss", MetricDirection::kLower},
                             {"tta.used_frac", MetricDirection::kNone}});
  store.add_metrics(id, {{"tta.used_frac", 1, 0.5}});  // declared none: no best
  store.add_metrics(id, {{"method.gap", 1, 0.5}});     // undeclared: no best
  // Out of step order on purpose: "final" is about the step, not the insert.
  store.add_metrics(id, {{"test.acc", 4, 0.80}, {"test.acc", 1, 0.50}, {"test.acc", 2, 0.90},
                         {"test.acc", 3, 0.70}});
  store.add_metrics(id, {{"val.loss", 0, 2.0}, {"val.loss", 1, 1.0}, {"val.loss", 2, 1.5}});
  store.add_metrics(id, {{"test.ece", 1, 0.10}, {"test.ece", 2, 0.05}, {"test.ece", 3, 0.07}});
  store.add_metrics(id, {{"train.loss", 1, 3.0}, {"train.loss", 2, 2.0},
                         {"train.loss", 3, std::numeric_limits<double>::quiet_NaN()}});
  store.write_summaries(id);

  EXPECT_DOUBLE_EQ(*store.summary(id, "test.acc", "final"), 0.80);
  EXPECT_DOUBLE_EQ(*store.summary(id, "test.acc", "best"), 0.90);
  EXPECT_DOUBLE_EQ(*store.summary(id, "val.loss", "final"), 1.5);
  EXPECT_DOUBLE_EQ(*store.summary(id, "val.loss", "best"), 1.0);
  EXPECT_DOUBLE_EQ(*store.summary(id, "test.ece", "final"), 0.07);
  EXPECT_DOUBLE_EQ(*store.summary(id, "test.ece", "best"), 0.05);
  EXPECT_TRUE(std::isnan(*store.summary(id, "train.loss", "final")));  // diverged at the end
  EXPECT_DOUBLE_EQ(*store.summary(id, "train.loss", "best"), 2.0);
  EXPECT_FALSE(store.summary(id, "test.auc", "final"));
  EXPECT_DOUBLE_EQ(*store.summary(id, "tta.used_frac", "final"), 0.5);
  EXPECT_FALSE(store.summary(id, "tta.used_frac", "best"));
  EXPECT_DOUBLE_EQ(*store.summary(id, "method.gap", "final"), 0.5);
  EXPECT_FALSE(store.summary(id, "method.gap", "best"));
  EXPECT_THROW(store.summary(id, "test.acc", "last"), std::invalid_argument);

  // The step of each summary, through SQL.
  EXPECT_EQ(count(store::raw_connection_for_tests(store), "SELECT step FROM summaries WHERE key = 'test.acc' AND kind = 'best'"), 2);
  EXPECT_EQ(count(store::raw_connection_for_tests(store), "SELECT step FROM summaries WHERE key = 'test.acc' AND kind = 'final'"), 4);
  EXPECT_EQ(count(store::raw_connection_for_tests(store), "SELECT step FROM summaries WHERE key = 'val.loss' AND kind = 'best'"), 1);

  // Rewriting replaces rather than duplicates.
  store.add_metrics(id, {{"test.acc", 5, 0.95}});
  store.write_summaries(id);
  EXPECT_EQ(count(store::raw_connection_for_tests(store), "SELECT count(*) FROM summaries WHERE key = 'test.acc'"), 2);
  EXPECT_DOUBLE_EQ(*store.summary(id, "test.acc", "final"), 0.95);
  EXPECT_DOUBLE_EQ(*store.summary(id, "test.acc", "best"), 0.95);
}

TEST(StoreSummaries, MarkFinishedWritesThem) {
  TempDir dir;
  Store store(dir.file("r.db"));
  const auto sweep = store.upsert_sweep("s", "", "");
  const auto id = store.ensure_run(sweep, "k0000001", "", "{}", "m");
  store.mark_running(id, ::getpid(), "h", "", "");
  store.declare_metrics(id, {{"test.acc", MetricDirection::kHigher}});
  store.add_metrics(id, {{"test.acc", 1, 0.6}, {"test.acc", 2, 0.4}});
  EXPECT_FALSE(store.summary(id, "test.acc", "final"));
  store.mark_finished(id, RunStatus::kCompleted, "");
  EXPECT_DOUBLE_EQ(*store.summary(id, "test.acc", "final"), 0.4);
  EXPECT_DOUBLE_EQ(*store.summary(id, "test.acc", "best"), 0.6);
}

// --- artifacts ----------------------------------------------------------------

TEST(StoreArtifacts, AddAndList) {
  TempDir dir;
  Store store(dir.file("r.db"));
  const auto sweep = store.upsert_sweep("s", "", "");
  const auto id = store.ensure_run(sweep, "k0000001", "", "{}", "m");
  store.add_artifact({id, "checkpoint", "results/runs/k/ckpt.pt", "fnv:0123", ""});
  store.add_artifact({id, "log", "results/runs/k/log.txt", "", ""});
  const auto a = store.artifacts(id);
  ASSERT_EQ(a.size(), 2u);
  EXPECT_EQ(a[0].kind, "checkpoint");
  EXPECT_EQ(a[0].path, "results/runs/k/ckpt.pt");
  EXPECT_EQ(a[0].checksum, "fnv:0123");
  EXPECT_FALSE(a[0].created_at.empty());
  EXPECT_EQ(a[1].kind, "log");
  try {
    store.add_artifact({id + 9, "log", "x", "", ""});
    FAIL() << "expected an error";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("no run with id " + std::to_string(id + 9)), std::string::npos)
        << e.what();
  }
}

}  // namespace
}  // namespace reglab::store
