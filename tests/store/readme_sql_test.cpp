// The SQL examples of results/README.md run as written: every ```sql block
// (and the query of each `sqlite3 ... "SQL"` line of a ```sh block) runs
// against a store filled through the Store API the way a sweep fills it, and
// each statement returns rows with no column that is NULL in every row (a
// misspelt JSON path or key yields NULLs, not an error).
#include <SQLiteCpp/SQLiteCpp.h>
#include <gtest/gtest.h>
#include <sqlite3.h>

#include <fstream>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

#include "store/store.h"
#include "store/testing.h"
#include "temp_db.h"

namespace reglab::store {
namespace {

struct Example {
  int line;  // of the README, where the block starts
  std::string sql;
};

std::vector<Example> readme_examples() {
  std::ifstream in(std::string(REGLAB_PROJECT_SOURCE_DIR) + "/results/README.md");
  std::vector<Example> out;
  std::string line, fence;
  Example current{0, ""};
  static const std::regex sqlite3_line(R"re(sqlite3 [^"]*"([^"]+)")re");
  for (int n = 1; std::getline(in, line); ++n) {
    if (fence.empty()) {
      if (line.rfind("```", 0) == 0) {
        fence = line.substr(3);
        current = {n, ""};
      }
      continue;
    }
    if (line.rfind("```", 0) == 0) {
      if (fence == "sql") out.push_back(current);
      fence.clear();
      continue;
    }
    std::smatch m;
    if (fence == "sql") current.sql += line + "\n";
    else if (fence == "sh" && std::regex_search(line, m, sqlite3_line)) out.push_back({n, m[1].str()});
  }
  return out;
}

// One sweep as the examples name it: ce and elr over two seeds, completed
// with test.acc curves, one failed run, one still running, one Slurm element.
void fill(Store& s) {
  const std::int64_t sweep = s.upsert_sweep("noisy_labels", "README examples", "");
  auto add = [&](const std::string& method, double lr, int seed) {
    const std::string config = R"({"data":{"noise":{"kind":"symmetric","rate":0.4}},"method":{"name":")" + method +
                               R"("},"optim":{"lr":)" + std::to_string(lr) + R"(},"seed":)" + std::to_string(seed) + "}";
    return s.ensure_run(sweep, method + "-" + std::to_string(seed) + "-" + std::to_string(lr), method, config, method);
  };
  int seed = 0;
  for (const char* method : {"ce", "elr", "elr", "ce"}) {
    const std::int64_t id = add(method, std::string(method) == "ce" ? 0.1 : 0.05, ++seed);
    s.mark_running(id, 1, "host", "rev", "");
    // As the worker declares the core's keys (metrics/directions.h).
    s.declare_metrics(id, {{"test.acc", MetricDirection::kHigher}, {"test.nll", MetricDirection::kLower}});
    s.add_metrics(id, {{"test.acc", 0, 0.5 + 0.01 * seed}, {"test.acc", 1, 0.6 + 0.01 * seed},
                       {"test.nll", 1, 1.0 - 0.01 * seed}});
    s.mark_finished(id, RunStatus::kCompleted, "");
  }
  const std::int64_t failed = add("elr", 0.01, 9);
  s.mark_running(failed, 1, "host", "rev", "");
  s.mark_finished(failed, RunStatus::kFailed, "loss is NaN at epoch 2");
  const std::int64_t running = add("ce", 0.01, 10);
  s.mark_running(running, 4242, "host", "rev", "");
  s.heartbeat(running);
  // The Slurm executor's records of the first run (cluster/ writes these).
  store::raw_connection_for_tests(s).exec("INSERT INTO slurm_jobs (job_id, sweep_id, kind, array_size, submitted_at) VALUES (100, " +
              std::to_string(sweep) + ", 'trials', 4, '2026-12-01T00:00:00Z')");
  store::raw_connection_for_tests(s).exec("INSERT INTO slurm_tasks (job_id, array_index, run_id) VALUES (100, 0, 1)");
}

TEST(ResultsReadme, EverySqlExampleRunsAndReturnsRows) {
  const std::vector<Example> examples = readme_examples();
  ASSERT_GE(examples.size(), 8u) << "results/README.md lost its examples?";
  testing_support::TempDir tmp;
  Store store(tmp.file("reglab.db"));
  fill(store);
  sqlite3* db = store::raw_connection_for_tests(store).getHandle();
  for (const Example& ex : examples) {
    SCOPED_TRACE("results/README.md:" + std::to_string(ex.line) + "\n" + ex.sql);
    const char* tail = ex.sql.c_str();
    int statements = 0;
    while (tail != nullptr && *tail != '\0') {
      sqlite3_stmt* stmt = nullptr;
      const char* next = nullptr;
      ASSERT_EQ(sqlite3_prepare_v2(db, tail, -1, &stmt, &next), SQLITE_OK) << sqlite3_errmsg(db);
      tail = next;
      if (stmt == nullptr) continue;  // only whitespace or a comment was left
      ++statements;
      const int columns = sqlite3_column_count(stmt);
      std::vector<bool> seen_value(static_cast<std::size_t>(columns), false);
      int rows = 0, rc = 0;
      while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
        ++rows;
        for (int c = 0; c < columns; ++c)
          if (sqlite3_column_type(stmt, c) != SQLITE_NULL) seen_value[static_cast<std::size_t>(c)] = true;
      }
      EXPECT_EQ(rc, SQLITE_DONE) << sqlite3_errmsg(db);
      EXPECT_GT(rows, 0) << "statement " << statements << " returned no rows";
      for (int c = 0; rows > 0 && c < columns; ++c)
        EXPECT_TRUE(seen_value[static_cast<std::size_t>(c)])
            << "statement " << statements << ": column '" << sqlite3_column_name(stmt, c) << "' is NULL in every row";
      sqlite3_finalize(stmt);
    }
    EXPECT_GT(statements, 0);
  }
}

}  // namespace
}  // namespace reglab::store
