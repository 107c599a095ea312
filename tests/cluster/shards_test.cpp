// Merging per-trial shards into the main store: what lands, and that doing
// it again adds nothing. Real SQLite files in a temporary folder.
#include <gtest/gtest.h>

#include <SQLiteCpp/SQLiteCpp.h>

#include <cmath>

#include "cluster/manifest.h"
#include "cluster/records.h"
#include "cluster/shards.h"
#include "store/temp_db.h"
#include "store/testing.h"

namespace reglab::cluster {
namespace {

using store::RunStatus;
using testing_support::TempDir;

long long count(store::Store& s, const std::string& sql) {
  SQLite::Statement q(store::raw_connection_for_tests(s), sql);
  q.executeStep();
  return q.getColumn(0).getInt64();
}

// A main store with sweep "demo" and runs k0..k{n-1}, as a submission leaves it.
struct Fixture {
  TempDir dir;
  std::filesystem::path results = dir.path();
  store::Store main{dir.file("reglab.db")};
  std::int64_t sweep_id = main.upsert_sweep("demo", "", "");
  std::vector<std::int64_t> runs;

  explicit Fixture(int n) {
    // Built by appending: GCC 12 warns falsely (-Wrestrict) on "literal" + std::string.
    for (int i = 0; i < n; ++i) {
      const std::string s = std::to_string(i);
      runs.push_back(main.ensure_run(sweep_id, std::string("k").append(s), std::string("seed=").append(s),
                                     std::string(R"({"seed":)").append(s).append("}"), "ce"));
    }
  }

  // Writes the shard of run k<i> as an element would: `epochs` test.acc
  // points 0.5, 0.6, ..., a checkpoint artifact, then `status`.
  std::filesystem::path write_shard(int i, RunStatus status, int epochs = 3) {
    const auto path = shard_path(results, "demo", "k" + std::to_string(i));
    store::Store shard(path, store::Journal::kRollback);
    const auto sw = shard.upsert_sweep("demo", "", "");
    const auto id = shard.ensure_run(sw, "k" + std::to_string(i), "", R"({"seed":)" + std::to_string(i) + "}", "ce");
    shard.mark_running(id, 4242, "node7", "abc123", "/r/runs/demo/k/trial.log");
    shard.declare_metrics(id, {{"test.acc", MetricDirection::kHigher}});  // as the worker's record_core does
    std::vector<store::MetricPoint> points;
    for (int e = 0; e < epochs; ++e) points.push_back({"test.acc", e, 0.5 + 0.1 * e});
    shard.add_metrics(id, points);
    shard.add_artifact({id, "checkpoint", "/r/runs/demo/k/last.pt", "00ff"});
    if (status != RunStatus::kRunning) shard.mark_finished(id, status, status == RunStatus::kCompleted ? "" : "interrupted by the user");
    return path;
  }
};

TEST(ShardMerge, CompletedShardBringsStatusMetricsSummariesAndArtifacts) {
  Fixture f(2);
  const auto shard = f.write_shard(0, RunStatus::kCompleted);
  const MergeOutcome o = merge_shard(f.main, shard);
  EXPECT_EQ(o.result, MergeResult::kMerged);
  EXPECT_EQ(o.run_id, f.runs[0]);
  const auto run = f.main.get_run(f.runs[0]);
  EXPECT_EQ(run->status, RunStatus::kCompleted);
  EXPECT_EQ(run->host, "node7");
  EXPECT_EQ(run->attempts, 1);
  EXPECT_EQ(run->pid, 0);
  const auto points = f.main.metrics(f.runs[0], "test.acc");
  ASSERT_EQ(points.size(), 3u);
  EXPECT_DOUBLE_EQ(points[2].value, 0.7);
  EXPECT_NEAR(*f.main.summary(f.runs[0], "test.acc", "final"), 0.7, 1e-12);
  EXPECT_NEAR(*f.main.summary(f.runs[0], "test.acc", "best"), 0.7, 1e-12);
  ASSERT_EQ(f.main.artifacts(f.runs[0]).size(), 1u);
  EXPECT_EQ(f.main.artifacts(f.runs[0])[0].checksum, "00ff");
  // The other run is untouched.
  EXPECT_EQ(f.main.get_run(f.runs[1])->status, RunStatus::kPending);
}

TEST(ShardMerge, MergingTwiceAddsNothing) {
  Fixture f(1);
  const auto shard = f.write_shard(0, RunStatus::kInterrupted);
  EXPECT_EQ(merge_shard(f.main, shard).result, MergeResult::kMerged);
  const auto rows = [&] {
    return std::vector<long long>{count(f.main, "SELECT count(*) FROM metrics"),
                                  count(f.main, "SELECT count(*) FROM artifacts"),
                                  count(f.main, "SELECT count(*) FROM summaries"),
                                  count(f.main, "SELECT count(*) FROM shard_merges")};
  };
  const auto before = rows();
  EXPECT_EQ(before, (std::vector<long long>{3, 1, 2, 1}));
  EXPECT_EQ(merge_shard(f.main, shard).result, MergeResult::kAlreadyMerged);
  EXPECT_EQ(rows(), before);
  EXPECT_EQ(f.main.get_run(f.runs[0])->status, RunStatus::kInterrupted);
}

TEST(ShardMerge, ARunAlreadyCompleteIsNeverOverwritten) {
  Fixture f(1);
  f.main.mark_running(f.runs[0], 1, "here", "r", "");
  f.main.add_metrics(f.runs[0], {{"test.acc", 0, 0.9}});
  f.main.mark_finished(f.runs[0], RunStatus::kCompleted, "");
  const auto shard = f.write_shard(0, RunStatus::kCompleted);
  EXPECT_EQ(merge_shard(f.main, shard).result, MergeResult::kRunCompleted);
  EXPECT_EQ(f.main.metrics(f.runs[0]).size(), 1u);
  EXPECT_EQ(f.main.get_run(f.runs[0])->host, "here");
  EXPECT_EQ(count(f.main, "SELECT count(*) FROM shard_merges"), 0);
}

TEST(ShardMerge, ARunningShardIsLeftForLater) {
  Fixture f(1);
  const auto shard = f.write_shard(0, RunStatus::kRunning);
  const auto o = merge_shard(f.main, shard);
  EXPECT_EQ(o.result, MergeResult::kInProgress);
  EXPECT_EQ(o.shard_status, RunStatus::kRunning);
  EXPECT_EQ(f.main.get_run(f.runs[0])->status, RunStatus::kPending);
  EXPECT_TRUE(f.main.metrics(f.runs[0]).empty());
}

TEST(ShardMerge, ShardsOfUnknownSweepsOrRunsAreRefusedByName) {
  Fixture f(1);
  TempDir other;
  const auto path = other.file("stray.db");
  {
    store::Store s(path, store::Journal::kRollback);
    const auto sw = s.upsert_sweep("elsewhere", "", "");
    const auto id = s.ensure_run(sw, "k0", "", "{}", "ce");
    s.mark_finished(id, RunStatus::kCompleted, "");
  }
  try {
    merge_shard(f.main, path);
    FAIL() << "expected an error";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find(path.string()), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("elsewhere"), std::string::npos) << e.what();
  }
  EXPECT_THROW(merge_shard(f.main, other.file("missing.db")), std::runtime_error);
}

TEST(ShardMerge, ShardsKeepTheRollbackJournal) {
  Fixture f(1);
  const auto shard = f.write_shard(0, RunStatus::kCompleted);
  SQLite::Database db(shard, SQLite::OPEN_READONLY);
  SQLite::Statement q(db, "PRAGMA journal_mode");
  ASSERT_TRUE(q.executeStep());
  EXPECT_EQ(q.getColumn(0).getString(), "delete");
}

TEST(Collect, SlurmEndedElementsBecomeFailedWithTheReasonOnce) {
  Fixture f(4);
  record_array(f.main, f.sweep_id, {900, "trials", 4, "/r/job.sbatch", ""}, f.runs);
  f.write_shard(0, RunStatus::kCompleted);
  f.write_shard(1, RunStatus::kInterrupted);  // scancel: SIGTERM, the trial saved and stopped
  f.write_shard(2, RunStatus::kRunning);      // killed hard: the shard never heard of it
  // Element 3 never started (cancelled while pending): no shard.
  const SlurmView view = {{{900, 0}, {"COMPLETED", "None", "0:0"}},
                          {{900, 1}, {"CANCELLED", "None", "0:15"}},
                          {{900, 2}, {"OUT_OF_MEMORY", "None", "0:125"}},
                          {{900, 3}, {"CANCELLED", "None", "0:0"}}};
  const CollectResult r = collect_sweep(f.main, "demo", f.results, view);
  EXPECT_EQ(r.merged, 2);  // the completed and the interrupted shard
  EXPECT_EQ(r.in_progress, 1);
  EXPECT_EQ(r.failed_by_slurm, 3);
  EXPECT_TRUE(r.problems.empty());
  EXPECT_EQ(f.main.get_run(f.runs[0])->status, RunStatus::kCompleted);
  for (int i : {1, 2, 3}) EXPECT_EQ(f.main.get_run(f.runs[i])->status, RunStatus::kFailed) << i;
  const std::string e1 = f.main.get_run(f.runs[1])->error, e2 = f.main.get_run(f.runs[2])->error,
                    e3 = f.main.get_run(f.runs[3])->error;
  EXPECT_EQ(e1.rfind("Slurm: CANCELLED", 0), 0u) << e1;
  EXPECT_NE(e1.find("interrupted by the user"), std::string::npos) << e1;
  EXPECT_EQ(e2.rfind("Slurm: OUT_OF_MEMORY", 0), 0u) << e2;
  EXPECT_NE(e3.find("never started"), std::string::npos) << e3;

  const auto metrics_before = count(f.main, "SELECT count(*) FROM metrics");
  const CollectResult again = collect_sweep(f.main, "demo", f.results, view);
  EXPECT_EQ(again.merged, 0);
  EXPECT_EQ(again.failed_by_slurm, 0);
  EXPECT_EQ(again.already_merged, 1);  // the interrupted shard; the completed run is complete
  EXPECT_EQ(again.run_completed, 1);
  EXPECT_EQ(count(f.main, "SELECT count(*) FROM metrics"), metrics_before);
}

TEST(Collect, ElementsStillQueuedOrRunningAreLeftAlone) {
  Fixture f(2);
  record_array(f.main, f.sweep_id, {901, "trials", 2, "", ""}, f.runs);
  f.write_shard(0, RunStatus::kRunning);
  const SlurmView view = {{{901, 0}, {"RUNNING", "None", ""}}, {{901, 1}, {"PENDING", "JobArrayTaskLimit", ""}}};
  const CollectResult r = collect_sweep(f.main, "demo", f.results, view);
  EXPECT_EQ(r.failed_by_slurm, 0);
  EXPECT_EQ(r.in_progress, 1);
  for (auto id : f.runs) EXPECT_EQ(f.main.get_run(id)->status, RunStatus::kPending);
}

TEST(Collect, ResubmissionPutsFailedRunsBackToPendingAndFollowsTheNewestElement) {
  Fixture f(1);
  record_array(f.main, f.sweep_id, {902, "trials", 1, "", ""}, f.runs);
  collect_sweep(f.main, "demo", f.results, {{{902, 0}, {"NODE_FAIL", "None", ""}}});
  ASSERT_EQ(f.main.get_run(f.runs[0])->status, RunStatus::kFailed);
  record_array(f.main, f.sweep_id, {910, "trials", 1, "", ""}, f.runs);
  EXPECT_EQ(f.main.get_run(f.runs[0])->status, RunStatus::kPending);
  EXPECT_EQ(current_elements(f.main, f.sweep_id).at(f.runs[0]), (ElementId{910, 0}));
}

TEST(Manifest, RoundTripAndErrorsNameFileAndElement) {
  TempDir dir;
  const auto path = dir.file("m/manifest.jsonl");
  write_manifest(path, {{"demo", "d", "k0", "seed=0", "ce", config::Json{{"seed", 0}}},
                        {"demo", "d", "k1", "seed=1", "elr", config::Json{{"seed", 1}, {"method", {{"name", "elr"}}}}}});
  const auto e = read_manifest_entry(path, 1);
  EXPECT_EQ(e.key, "k1");
  EXPECT_EQ(e.method, "elr");
  EXPECT_EQ(e.config["method"]["name"], "elr");
  try {
    read_manifest_entry(path, 2);
    FAIL();
  } catch (const std::runtime_error& ex) {
    EXPECT_NE(std::string(ex.what()).find(path.string()), std::string::npos);
    EXPECT_NE(std::string(ex.what()).find("no element 2"), std::string::npos) << ex.what();
  }
  EXPECT_THROW(read_manifest_entry(dir.file("none.jsonl"), 0), std::runtime_error);
}

}  // namespace
}  // namespace reglab::cluster
