// Several writers on one database file: connections in one process, and
// forked processes writing at the same time. None may see "database is
// locked" (WAL + busy timeout + IMMEDIATE transactions).
#include <SQLiteCpp/SQLiteCpp.h>
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <functional>
#include <string>
#include <vector>

#include "store/store.h"
#include "store/testing.h"
#include "store/temp_db.h"

namespace reglab::store {
namespace {

using testing_support::TempDir;

std::int64_t count(SQLite::Database& db, const std::string& sql) {
  SQLite::Statement q(db, sql);
  q.executeStep();
  return q.getColumn(0).getInt64();
}

// Runs `body` in a child process; returns its pid. The child exits 0 on
// success and 1 (after printing the error) on any exception. No gtest
// assertion runs in the child.
pid_t spawn(const std::function<void()>& body) {
  std::fflush(nullptr);
  const pid_t pid = ::fork();
  if (pid == 0) {
    int code = 0;
    try {
      body();
    } catch (const std::exception& e) {
      std::fprintf(stderr, "child %d: %s\n", static_cast<int>(::getpid()), e.what());
      code = 1;
    }
    ::_exit(code);
  }
  return pid;
}

int wait_exit_code(pid_t pid) {
  int status = 0;
  if (::waitpid(pid, &status, 0) != pid) return -1;
  return WIFEXITED(status) ? WEXITSTATUS(status) : -2;
}

TEST(StoreConcurrency, TwoConnectionsInOneProcessWriteAlternately) {
  TempDir dir;
  const auto path = dir.file("r.db");
  Store a(path);
  Store b(path);
  const auto sweep = a.upsert_sweep("s", "", "");
  EXPECT_EQ(b.upsert_sweep("s", "changed", ""), sweep);
  const auto ra = a.ensure_run(sweep, "runa0000", "", "{}", "m");
  const auto rb = b.ensure_run(sweep, "runb0000", "", "{}", "m");
  EXPECT_EQ(a.ensure_run(sweep, "runb0000", "", "{}", "m"), rb);  // sees the other's insert
  for (int step = 0; step < 50; ++step) {
    a.add_metrics(ra, {{"train.loss", step, 1.0 / (step + 1)}});
    b.add_metrics(rb, {{"train.loss", step, 2.0 / (step + 1)}});
    a.heartbeat(rb);
    b.heartbeat(ra);
  }
  // A reader holding an open statement does not block the writer (WAL).
  SQLite::Statement reading(store::raw_connection_for_tests(a), "SELECT step FROM metrics WHERE run_id = " + std::to_string(ra));
  ASSERT_TRUE(reading.executeStep());
  b.add_metrics(rb, {{"train.loss", 50, 0.0}});
  reading.reset();
  EXPECT_EQ(a.metrics(rb).size(), 51u);
  EXPECT_EQ(b.metrics(ra).size(), 50u);
  EXPECT_EQ(a.find_sweep("s")->description, "changed");
}

TEST(StoreConcurrency, ForkedProcessesWriteAtTheSameTime) {
  TempDir dir;
  const auto path = dir.file("r.db");
  std::int64_t sweep = 0;
  {
    Store setup(path);
    sweep = setup.upsert_sweep("s", "", "");
  }  // closed before forking: an SQLite connection must not cross fork()
  constexpr int kWriters = 3;
  constexpr int kBatches = 60;
  constexpr int kPerBatch = 50;
  std::vector<pid_t> children;
  for (int w = 0; w < kWriters; ++w) {
    children.push_back(spawn([&, w] {
      Store s(path);
      // Every writer also races on one shared key: exactly one row may result.
      s.ensure_run(sweep, "shared00", "", R"({"x":1})", "m");
      const auto id = s.ensure_run(sweep, "writer" + std::to_string(w), "", R"({"w":)" + std::to_string(w) + "}", "m");
      s.mark_running(id, ::getpid(), "h", "", "");
      for (int b = 0; b < kBatches; ++b) {
        std::vector<MetricPoint> pts;
        for (int i = 0; i < kPerBatch; ++i) pts.push_back({"train.x", b * kPerBatch + i, w + 0.5});
        s.add_metrics(id, pts);
        s.heartbeat(id);
      }
      s.mark_finished(id, RunStatus::kCompleted, "");
    }));
  }
  for (pid_t pid : children) EXPECT_EQ(wait_exit_code(pid), 0) << "writer " << pid << " failed (see stderr)";

  Store check(path);
  EXPECT_EQ(count(store::raw_connection_for_tests(check), "SELECT count(*) FROM runs WHERE key = 'shared00'"), 1);
  EXPECT_EQ(count(store::raw_connection_for_tests(check), "SELECT count(*) FROM runs WHERE status = 'completed'"), kWriters);
  EXPECT_EQ(count(store::raw_connection_for_tests(check), "SELECT count(*) FROM metrics"), kWriters * kBatches * kPerBatch);
  for (int w = 0; w < kWriters; ++w) {
    const auto r = check.find_run("writer" + std::to_string(w));
    ASSERT_TRUE(r);
    EXPECT_EQ(check.metrics(r->id).size(), static_cast<std::size_t>(kBatches * kPerBatch));
    EXPECT_DOUBLE_EQ(*check.summary(r->id, "train.x", "final"), w + 0.5);
  }
}

TEST(StoreConcurrency, ForkedProcessesOpenAFreshFileTogether) {
  // The first open creates the schema; racing openers must neither fail nor
  // apply version 1 twice.
  TempDir dir;
  const auto path = dir.file("fresh.db");
  std::vector<pid_t> children;
  for (int w = 0; w < 4; ++w) {
    children.push_back(spawn([&, w] {
      Store s(path);
      s.upsert_sweep("sweep" + std::to_string(w), "", "");
    }));
  }
  for (pid_t pid : children) EXPECT_EQ(wait_exit_code(pid), 0);
  Store check(path);
  EXPECT_EQ(check.list_sweeps().size(), 4u);
  // One schema_version, one store_id, one hash_algorithm: the migration ran once.
  EXPECT_EQ(count(store::raw_connection_for_tests(check), "SELECT count(*) FROM meta"), 3);
}

}  // namespace
}  // namespace reglab::store
