// `reglab run --executor slurm`, `collect`, `status` and `cancel` against a
// real single-node Slurm cluster (Debian's slurmctld, slurmd and munge),
// started for this test process by tests/slurm/slurm-cluster and stopped at
// the end. Needs root and the packages tools/setup installs; CI has both.
#include <gtest/gtest.h>

#include <SQLiteCpp/SQLiteCpp.h>

#include <cstdlib>
#include <fstream>
#include <regex>

#include "cluster/shards.h"
#include "e2e/cli_harness.h"
#include "store/store.h"
#include "util/process.h"
#include "util/util.h"

namespace reglab::testing {
namespace {

const std::string kClusterScript = std::string(REGLAB_TEST_SOURCE_DIR) + "/slurm/slurm-cluster";

class SlurmCluster : public ::testing::Environment {
 public:
  void SetUp() override {
    char tmpl[] = "/tmp/reglab-slurm-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    state_ = tmpl;
    const auto available = util::run_process({kClusterScript, "available"});
    ASSERT_EQ(available.exit_code, 0) << "a local Slurm cluster cannot run here: " << available.out << available.err
                                      << "(run tools/setup as root)";
    const auto started = util::run_process({kClusterScript, "start", state_});
    ASSERT_EQ(started.exit_code, 0) << started.err;
    // The script prints `export SLURM_CONF=...`; the Slurm commands reglab
    // runs (and the elements they start) find the cluster through it.
    std::smatch m;
    ASSERT_TRUE(std::regex_search(started.out, m, std::regex("export SLURM_CONF=(\\S+)"))) << started.out;
    setenv("SLURM_CONF", m[1].str().c_str(), 1);
    running_ = true;
  }
  void TearDown() override {
    if (running_) {
      const auto stopped = util::run_process({kClusterScript, "stop", state_});
      EXPECT_EQ(stopped.exit_code, 0) << stopped.err;
    }
    fs::remove_all(state_);
  }

 private:
  std::string state_;
  bool running_ = false;
};

const auto* const kCluster = ::testing::AddGlobalTestEnvironment(new SlurmCluster);

std::string slurm_state(std::int64_t job) {
  const auto r = util::run_process({"squeue", "-h", "--states=all", "-j", std::to_string(job), "-o", "%T"});
  return util::trim(r.out);
}

// Waits until Slurm reports the (non-array) job finished; returns its state.
std::string wait_for_job(std::int64_t job, double seconds) {
  std::string state;
  wait_until(
      [&] {
        state = slurm_state(job);
        return state == "COMPLETED" || state == "FAILED" || state == "CANCELLED" || state == "TIMEOUT";
      },
      seconds);
  return state;
}

struct Submission {
  std::int64_t array = 0, collect = 0;
  int submitted = 0;
};

Submission parse_submission(const std::string& out) {
  Submission s;
  std::smatch m;
  if (std::regex_search(out, m, std::regex("submitted (\\d+) trial\\(s\\) as job array (\\d+)"))) {
    s.submitted = std::stoi(m[1]);
    s.array = std::stoll(m[2]);
  }
  if (std::regex_search(out, m, std::regex("collect job (\\d+)"))) s.collect = std::stoll(m[1]);
  return s;
}

long long count(const fs::path& db, const std::string& sql) {
  SQLite::Database d(db, SQLite::OPEN_READONLY);
  SQLite::Statement q(d, sql);
  q.executeStep();
  return q.getColumn(0).getInt64();
}

std::map<std::string, store::RunRow> runs_by_label(const fs::path& db) {
  store::Store s(db);
  std::map<std::string, store::RunRow> out;
  for (auto& r : s.list_runs()) out[r.label] = r;
  return out;
}

TEST(SlurmExecutor, SubmitsOneArrayCollectsEveryTrialOnceAndCollectingAgainAddsNothing) {
  CliSandbox box;
  const auto sweep = box.write("s.toml", tiny_sweep("slurm_all", "[method]\nname = \"ce\"\n"
                                                                 "[[sweep.variants]]\nmethod = { name = \"ce\" }\n"
                                                                 "[[sweep.variants]]\nmethod = { name = \"label_smoothing\" }\n"));
  const auto r = box.run({"run", sweep.string(), "--executor", "slurm", "--max-parallel", "2"});
  ASSERT_EQ(r.code, 0) << r.out << r.err;
  const Submission sub = parse_submission(r.out);
  ASSERT_EQ(sub.submitted, 4) << r.out;
  ASSERT_GT(sub.collect, 0) << r.out;
  EXPECT_EQ(wait_for_job(sub.collect, 150), "COMPLETED") << box.run({"status", "slurm_all", "--all"}).out;

  // The script people can read and resubmit, with the throttle.
  const fs::path folder = box.dir() / "results" / "slurm" / "slurm_all";
  ASSERT_TRUE(fs::is_directory(folder));
  const fs::path submission = fs::directory_iterator(folder)->path();
  const std::string script = CliSandbox::slurp(submission / "job.sbatch");
  EXPECT_NE(script.find("#SBATCH --array=0-3%2"), std::string::npos) << script;

  const auto runs = runs_by_label(box.db());
  ASSERT_EQ(runs.size(), 4u);
  for (const auto& [label, run] : runs) {
    EXPECT_EQ(run.status, store::RunStatus::kCompleted) << label << ": " << run.error;
    EXPECT_EQ(run.attempts, 1) << label;
    EXPECT_TRUE(fs::exists(cluster::shard_path(box.dir() / "results", "slurm_all", run.key))) << label;
  }
  EXPECT_EQ(count(box.db(), "SELECT count(*) FROM slurm_jobs"), 2);
  EXPECT_EQ(count(box.db(), "SELECT count(*) FROM slurm_tasks"), 4);
  // Two epochs of test.acc per run, merged once.
  EXPECT_EQ(count(box.db(), "SELECT count(*) FROM metrics WHERE key = 'test.acc'"), 8);

  const auto rows = [&] {
    return std::vector<long long>{count(box.db(), "SELECT count(*) FROM metrics"),
                                  count(box.db(), "SELECT count(*) FROM summaries"),
                                  count(box.db(), "SELECT count(*) FROM artifacts"),
                                  count(box.db(), "SELECT count(*) FROM shard_merges")};
  };
  const auto before = rows();
  for (int i = 0; i < 2; ++i) {
    const auto c = box.run({"collect", "slurm_all"});
    EXPECT_EQ(c.code, 0) << c.err;
    EXPECT_NE(c.out.find("0 shard(s) merged"), std::string::npos) << c.out;
  }
  EXPECT_EQ(rows(), before);

  // An element run again (a requeue after it finished) finds its trial
  // complete in the shard and exits at once without a second attempt.
  const auto first = runs.begin()->second;
  std::smatch m;
  ASSERT_TRUE(std::regex_search(script, m, std::regex("exec '([^']+)' _slurm-element")));
  const auto element = util::run_process({m[1].str(), "_slurm-element", "--manifest", (submission / "manifest.jsonl").string(),
                                          "--index", "0", "--shards", (box.dir() / "results" / "shards" / "slurm_all").string(),
                                          "--results", (box.dir() / "results").string()});
  EXPECT_EQ(element.exit_code, 0) << element.err;
  EXPECT_NE(element.out.find("already complete"), std::string::npos) << element.out;
  EXPECT_EQ(count(box.db(), "SELECT max(attempts) FROM runs"), 1);

  // Nothing left to do: a re-run submits nothing.
  const auto again = box.run({"run", sweep.string(), "--executor", "slurm"});
  EXPECT_EQ(again.code, 0) << again.err;
  EXPECT_NE(again.out.find("nothing to submit"), std::string::npos) << again.out;
  const auto status = box.run({"status", "slurm_all"});
  EXPECT_NE(status.out.find("4 trial(s), 4 completed"), std::string::npos) << status.out;
}

TEST(SlurmExecutor, ACancelledElementIsRecordedFailedWithTheReasonAndOnlyItIsResubmitted) {
  CliSandbox box;
  // Element 0 trains long enough to be cancelled mid-run; the others are quick.
  const auto sweep = box.write("s.toml", tiny_sweep("slurm_cancel", "[method]\nname = \"ce\"\n"
                                                                    "[[sweep.variants]]\ntask = { epochs = 150 }\n"
                                                                    "[[sweep.variants]]\ntask = { epochs = 2 }\n"
                                                                    "[[sweep.variants]]\ntask = { epochs = 3 }\n",
                                                    "", "[0]"));
  const auto r = box.run({"run", sweep.string(), "--executor", "slurm"});
  ASSERT_EQ(r.code, 0) << r.out << r.err;
  const Submission sub = parse_submission(r.out);
  ASSERT_EQ(sub.submitted, 3) << r.out;

  const auto before_cancel = runs_by_label(box.db());
  std::string long_key;
  for (const auto& [label, run] : before_cancel)
    if (label.find("150") != std::string::npos) long_key = run.key;
  ASSERT_FALSE(long_key.empty());
  const fs::path long_shard = cluster::shard_path(box.dir() / "results", "slurm_cancel", long_key);
  // Cancel once the trial has logged an epoch: it is truly mid-run.
  ASSERT_TRUE(wait_until(
      [&] {
        if (!fs::exists(long_shard)) return false;
        try {
          return count(long_shard, "SELECT count(*) FROM metrics WHERE key = 'test.acc'") > 0;
        } catch (const std::exception&) {
          return false;
        }
      },
      90))
      << box.run({"status", "slurm_cancel", "--all"}).out;
  const auto c = util::run_process({"scancel", std::to_string(sub.array) + "_0"});
  ASSERT_EQ(c.exit_code, 0) << c.err;
  EXPECT_EQ(wait_for_job(sub.collect, 120), "COMPLETED") << box.run({"status", "slurm_cancel", "--all"}).out;

  auto runs = runs_by_label(box.db());
  for (const auto& [label, run] : runs) {
    if (run.key == long_key) {
      EXPECT_EQ(run.status, store::RunStatus::kFailed) << label;
      EXPECT_EQ(run.error.rfind("Slurm: CANCELLED", 0), 0u) << run.error;
    } else {
      EXPECT_EQ(run.status, store::RunStatus::kCompleted) << label << ": " << run.error;
    }
  }
  const auto status = box.run({"status", "slurm_cancel"});
  EXPECT_NE(status.out.find("1 failed"), std::string::npos) << status.out;
  EXPECT_NE(status.out.find("CANCELLED"), std::string::npos) << status.out;

  // The re-run submits the cancelled trial alone, which then completes.
  const auto again = box.run({"run", sweep.string(), "--executor", "slurm"});
  ASSERT_EQ(again.code, 0) << again.out << again.err;
  const Submission resub = parse_submission(again.out);
  ASSERT_EQ(resub.submitted, 1) << again.out;
  EXPECT_NE(again.out.find("2 completed"), std::string::npos) << again.out;
  EXPECT_EQ(wait_for_job(resub.collect, 150), "COMPLETED") << box.run({"status", "slurm_cancel", "--all"}).out;
  runs = runs_by_label(box.db());
  for (const auto& [label, run] : runs) {
    EXPECT_EQ(run.status, store::RunStatus::kCompleted) << label << ": " << run.error;
    // The quick trials ran once; the cancelled one twice (it resumed).
    EXPECT_EQ(run.attempts, run.key == long_key ? 2 : 1) << label;
  }
  EXPECT_EQ(count(box.db(), "SELECT count(*) FROM slurm_tasks"), 4);
}

TEST(SlurmExecutor, CancelStopsTheWholeArrayAndCollectRecordsEveryTrialAsCancelled) {
  CliSandbox box;
  // Two long trials, one at a time: one is running, the other pending, when
  // the sweep is cancelled.
  const auto sweep = box.write("s.toml", tiny_sweep("slurm_stop", "[method]\nname = \"ce\"\n", "", "[0, 1]"));
  const auto r = box.run({"run", sweep.string(), "--executor", "slurm", "--max-parallel", "1", "--set", "task.epochs=150"});
  ASSERT_EQ(r.code, 0) << r.out << r.err;
  const Submission sub = parse_submission(r.out);
  ASSERT_EQ(sub.submitted, 2) << r.out;
  const fs::path shards = box.dir() / "results" / "shards" / "slurm_stop";
  ASSERT_TRUE(wait_until(
      [&] {
        if (!fs::is_directory(shards)) return false;
        for (const auto& e : fs::directory_iterator(shards)) {
          try {
            if (count(e.path(), "SELECT count(*) FROM metrics WHERE key = 'test.acc'") > 0) return true;
          } catch (const std::exception&) {
          }
        }
        return false;
      },
      90))
      << box.run({"status", "slurm_stop", "--all"}).out;
  const auto c = box.run({"cancel", "slurm_stop"});
  ASSERT_EQ(c.code, 0) << c.err;
  EXPECT_NE(c.out.find("cancelled job(s) " + std::to_string(sub.array)), std::string::npos) << c.out;
  EXPECT_EQ(wait_for_job(sub.collect, 120), "COMPLETED") << box.run({"status", "slurm_stop", "--all"}).out;
  const auto runs = runs_by_label(box.db());
  ASSERT_EQ(runs.size(), 2u);
  int never_started = 0;
  for (const auto& [label, run] : runs) {
    EXPECT_EQ(run.status, store::RunStatus::kFailed) << label;
    EXPECT_EQ(run.error.rfind("Slurm: CANCELLED", 0), 0u) << label << ": " << run.error;
    if (run.error.find("never started") != std::string::npos) ++never_started;
  }
  EXPECT_EQ(never_started, 1) << "the pending element never ran";
  const auto again = box.run({"cancel", "slurm_stop"});
  EXPECT_NE(again.out.find("nothing queued or running"), std::string::npos) << again.out;
}

TEST(SlurmExecutor, StagesRunAsTheirOwnArrayFirstAndTrialsStartFromThem) {
  CliSandbox box;
  box.write("source.toml",
            "seed = 0\n[method]\nname = \"ce\"\n[task]\nepochs = 3\nbatch_size = 64\n[optim]\nname = \"sgd\"\nlr = 0.1\n"
            "[data]\ndataset = \"synthetic\"\nval_fraction = 0.2\n"
            "[data.synthetic]\nsamples = 600\ntest_samples = 200\nfeatures = 10\nclasses = 3\n"
            "[model]\narch = \"mlp\"\nhidden = [16]\n");
  const auto sweep = box.write("s.toml", tiny_sweep("slurm_stage", "[method]\nname = \"ce\"\n[init]\nfrom = \"source.toml\"\n"));
  const auto r = box.run({"run", sweep.string(), "--executor", "slurm"});
  ASSERT_EQ(r.code, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("submitted 1 stage(s)"), std::string::npos) << r.out;
  const Submission sub = parse_submission(r.out);
  ASSERT_EQ(sub.submitted, 2) << r.out;
  EXPECT_EQ(wait_for_job(sub.collect, 150), "COMPLETED") << box.run({"status", "slurm_stage", "--all"}).out;

  store::Store s(box.db());
  const auto stages = s.list_runs(s.find_sweep("_stages")->id);
  ASSERT_EQ(stages.size(), 1u);
  EXPECT_EQ(stages[0].status, store::RunStatus::kCompleted) << stages[0].error;
  for (const auto& run : s.list_runs(s.find_sweep("slurm_stage")->id)) {
    EXPECT_EQ(run.status, store::RunStatus::kCompleted) << run.label << ": " << run.error;
    // afterok: no trial started before its stage had finished.
    EXPECT_GE(run.started_at, stages[0].finished_at) << run.label;
  }
  // Submitting again finds the stage usable and submits nothing.
  const auto again = box.run({"run", sweep.string(), "--executor", "slurm"});
  EXPECT_NE(again.out.find("nothing to submit"), std::string::npos) << again.out;
}

TEST(SlurmExecutor, SlurmOptionsWithoutTheSlurmExecutorAndUnknownSweepsAreRefused) {
  CliSandbox box;
  const auto sweep = box.write("s.toml", tiny_sweep("plain", "[method]\nname = \"ce\"\n"));
  const auto r = box.run({"run", sweep.string(), "--partition", "gpu"});
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("apply only with --executor slurm"), std::string::npos) << r.err;
  EXPECT_FALSE(fs::exists(box.db())) << "nothing may run or be stored";
  { store::Store created(box.db()); }  // a store without that sweep (status reads it read-only)
  for (const char* cmd : {"status", "collect", "cancel"}) {
    const auto q = box.run({cmd, "nosuchsweep"});
    EXPECT_NE(q.code, 0) << cmd;
    EXPECT_NE(q.err.find("no sweep named 'nosuchsweep'"), std::string::npos) << cmd << ": " << q.err;
  }
}

}  // namespace
}  // namespace reglab::testing
