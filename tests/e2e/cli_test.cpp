// End-to-end tests of the `reglab` command line on tiny synthetic sweeps:
// real child processes, real plugins from disk, a real SQLite file.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <set>

#include "e2e/cli_harness.h"
#include "reglab/version.h"
#include "store/store.h"

using reglab::testing::CliSandbox;
using reglab::testing::tiny_sweep;
using reglab::testing::wait_until;
namespace fs = std::filesystem;

namespace {

const char* kTwoMethods =
    "[[sweep.variants]]\nmethod = { name = \"ce\" }\n"
    "[[sweep.variants]]\nmethod = { name = \"label_smoothing\", epsilon = 0.1 }\n";

std::vector<reglab::store::RunRow> runs_of(const fs::path& db, const std::string& sweep) {
  reglab::store::Store s(db);
  auto sw = s.find_sweep(sweep);
  if (!sw) return {};
  return s.list_runs(sw->id);
}

int count_status(const std::vector<reglab::store::RunRow>& runs, reglab::store::RunStatus st) {
  int n = 0;
  for (const auto& r : runs) n += r.status == st ? 1 : 0;
  return n;
}

}  // namespace

TEST(Cli, RunsASweepThenSkipsItOnRerun) {
  CliSandbox box;
  auto file = box.write("two.toml", tiny_sweep("two", kTwoMethods));
  auto r = box.run({"run", file.string(), "-j", "2"});
  ASSERT_EQ(r.code, 0) << r.err;
  // The closing comparison table names both groups and the metric.
  EXPECT_NE(r.out.find("test.acc"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("label_smoothing"), std::string::npos) << r.out;
  auto runs = runs_of(box.db(), "two");
  ASSERT_EQ(runs.size(), 4u);
  EXPECT_EQ(count_status(runs, reglab::store::RunStatus::kCompleted), 4);
  reglab::store::Store s(box.db());
  for (const auto& run : runs) {
    EXPECT_EQ(run.attempts, 1);
    EXPECT_FALSE(run.method_version.empty());
    EXPECT_TRUE(fs::exists(run.log_path)) << run.log_path;
    // Two epochs → exactly two points per metric.
    EXPECT_EQ(s.metrics(run.id, "test.acc").size(), 2u);
    ASSERT_TRUE(s.summary(run.id, "test.acc", "final").has_value());
  }

  auto again = box.run({"run", file.string()});
  ASSERT_EQ(again.code, 0) << again.err;
  EXPECT_NE(again.err.find("skipping 4 completed"), std::string::npos) << again.err;
  for (const auto& run : runs_of(box.db(), "two")) EXPECT_EQ(run.attempts, 1);
}

TEST(Cli, CrashingPluginFailsOnlyItsTrial) {
  CliSandbox box;
  auto file = box.write("crash.toml", tiny_sweep("crash",
                                                 "[[sweep.variants]]\nmethod = { name = \"ce\" }\n"
                                                 "[[sweep.variants]]\nmethod = { name = \"faulty\", mode = \"segv\", at_epoch = 1 }\n"
                                                 "[[sweep.variants]]\nmethod = { name = \"faulty\", mode = \"nan\" }\n",
                                                 "", "[0]"));
  auto r = box.run({"run", file.string(), "-j", "2"});
  EXPECT_EQ(r.code, 2) << r.err;  // the exit code is the number of failed trials
  auto runs = runs_of(box.db(), "crash");
  ASSERT_EQ(runs.size(), 3u);
  for (const auto& run : runs) {
    if (run.method_name == "ce") {
      EXPECT_EQ(run.status, reglab::store::RunStatus::kCompleted);
    } else {
      EXPECT_EQ(run.status, reglab::store::RunStatus::kFailed);
      EXPECT_NE(run.error.find("log tail:"), std::string::npos) << run.error;
      if (run.label.find("segv") != std::string::npos)
        EXPECT_NE(run.error.find("signal 11"), std::string::npos) << run.error;
      else
        EXPECT_NE(run.error.find("loss is nan"), std::string::npos) << run.error;
    }
  }
  // A second run does not retry failures unless asked.
  auto again = box.run({"run", file.string()});
  EXPECT_NE(again.err.find("use --retry-failed"), std::string::npos) << again.err;
  auto retry = box.run({"run", file.string(), "--retry-failed", "--no-compare"});
  EXPECT_EQ(retry.code, 2);
  for (const auto& run : runs_of(box.db(), "crash"))
    if (run.method_name == "faulty") {
      EXPECT_EQ(run.attempts, 2);
    }
}

TEST(Cli, TrialTimeoutIsRecordedAsFailure) {
  CliSandbox box;
  auto file = box.write("hang.toml", tiny_sweep("hang", "[[sweep.variants]]\nmethod = { name = \"faulty\", mode = \"hang\" }\n",
                                                "", "[0]"));
  auto r = box.run({"run", file.string(), "--trial-timeout", "3"});
  EXPECT_EQ(r.code, 1) << r.err;
  auto runs = runs_of(box.db(), "hang");
  ASSERT_EQ(runs.size(), 1u);
  EXPECT_EQ(runs[0].status, reglab::store::RunStatus::kFailed);
  EXPECT_NE(runs[0].error.find("timed out after 3 s"), std::string::npos) << runs[0].error;
}

// Ctrl-C stops dispatch, running trials record an interrupt, a re-run resumes
// from their checkpoints and every epoch is stored exactly once.
TEST(Cli, SigintThenResume) {
  CliSandbox box;
  auto file = box.write("slow.toml", tiny_sweep("slow", "[[sweep.variants]]\nmethod = { name = \"faulty\", sleep_ms = 40 }\n",
                                           "", "[0, 1, 2]"));
  pid_t pid = box.start({"run", file.string(), "--set", "task.epochs=4", "-j", "1"}, "first");
  ASSERT_GT(pid, 0);
  // Wait for the first trial to finish an epoch (its checkpoint exists).
  ASSERT_TRUE(wait_until([&] {
    if (!fs::exists(box.db())) return false;
    for (const auto& r : runs_of(box.db(), "slow"))
      if (r.status == reglab::store::RunStatus::kRunning &&
          fs::exists(fs::path(r.log_path).parent_path() / "checkpoint.pt"))
        return true;
    return false;
  }, 60));
  kill(pid, SIGINT);
  auto first = box.wait(pid, "first");
  EXPECT_EQ(first.code, 130) << first.err;
  auto runs = runs_of(box.db(), "slow");
  EXPECT_EQ(count_status(runs, reglab::store::RunStatus::kInterrupted), 1);
  EXPECT_EQ(count_status(runs, reglab::store::RunStatus::kRunning), 0);

  auto second = box.run({"run", file.string(), "--set", "task.epochs=4", "-j", "2"});
  ASSERT_EQ(second.code, 0) << second.err;
  reglab::store::Store s(box.db());
  for (const auto& r : runs_of(box.db(), "slow")) {
    EXPECT_EQ(r.status, reglab::store::RunStatus::kCompleted);
    auto pts = s.metrics(r.id, "test.acc");
    std::set<std::int64_t> steps;
    for (const auto& p : pts) steps.insert(p.step);
    EXPECT_EQ(pts.size(), 4u);
    EXPECT_EQ(steps, (std::set<std::int64_t>{1, 2, 3, 4}));
  }
  // The interrupted trial resumed from its checkpoint: its log says so.
  bool resumed = false;
  for (const auto& r : runs_of(box.db(), "slow"))
    resumed |= CliSandbox::slurp(r.log_path).find("resumed from") != std::string::npos;
  EXPECT_TRUE(resumed);
}

// kill -9 of the coordinator: its workers die with it, the next run detects
// the stale runs, re-runs them, and never duplicates a completed run.
TEST(Cli, Kill9OfCoordinatorThenResume) {
  CliSandbox box;
  auto file = box.write("k9.toml", tiny_sweep("k9", "[[sweep.variants]]\nmethod = { name = \"faulty\", sleep_ms = 30 }\n",
                                              "", "[0, 1, 2]"));
  pid_t pid = box.start({"run", file.string(), "--set", "task.epochs=3", "-j", "1"}, "first");
  ASSERT_TRUE(wait_until([&] {
    if (!fs::exists(box.db())) return false;
    auto runs = runs_of(box.db(), "k9");
    return count_status(runs, reglab::store::RunStatus::kCompleted) >= 1 &&
           count_status(runs, reglab::store::RunStatus::kRunning) == 1;
  }, 90));
  kill(pid, SIGKILL);
  box.wait(pid, "first");
  auto before = runs_of(box.db(), "k9");
  std::map<std::int64_t, int> completed_attempts;
  for (const auto& r : before)
    if (r.status == reglab::store::RunStatus::kCompleted) completed_attempts[r.id] = r.attempts;
  // The orphaned worker dies with its coordinator.
  for (const auto& r : before)
    if (r.status == reglab::store::RunStatus::kRunning) {
      EXPECT_TRUE(wait_until([&] { return kill(static_cast<pid_t>(r.pid), 0) != 0; }, 10));
    }

  auto second = box.run({"run", file.string(), "--set", "task.epochs=3"});
  ASSERT_EQ(second.code, 0) << second.err;
  EXPECT_NE(second.err.find("marked interrupted"), std::string::npos) << second.err;
  reglab::store::Store s(box.db());
  for (const auto& r : runs_of(box.db(), "k9")) {
    EXPECT_EQ(r.status, reglab::store::RunStatus::kCompleted);
    if (completed_attempts.count(r.id)) {
      EXPECT_EQ(r.attempts, completed_attempts[r.id]) << "completed run re-ran";
    }
    EXPECT_EQ(s.metrics(r.id, "test.acc").size(), 3u);
  }
}

TEST(Cli, InvalidTomlGivesFileLineColumnAndWritesNothing) {
  CliSandbox box;
  auto bad = box.write("bad.toml", "[sweep]\nseeds = [0]\n[optim]\nlr = = 0.1\n");
  auto r = box.run({"run", bad.string()});
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("bad.toml:4:"), std::string::npos) << r.err;
  EXPECT_FALSE(fs::exists(box.db()));

  auto typo = box.write("typo.toml", tiny_sweep("typo", "[[sweep.variants]]\nmethod = { name = \"ce\" }\n",
                                                "lrr = 0.5\n", "[0]"));
  auto t = box.run({"run", typo.string()});
  EXPECT_EQ(t.code, 2);
  EXPECT_NE(t.err.find("typo.toml:"), std::string::npos) << t.err;
  EXPECT_NE(t.err.find("optim.lrr"), std::string::npos) << t.err;
  EXPECT_NE(t.err.find("did you mean 'optim.lr'"), std::string::npos) << t.err;
  EXPECT_FALSE(fs::exists(box.db()));

  auto paradigm = box.write("para.toml", tiny_sweep("para", "[[sweep.variants]]\nmethod = { name = \"tta_only\" }\n", "", "[0]"));
  auto p = box.run({"run", paradigm.string()});
  EXPECT_EQ(p.code, 2);
  EXPECT_NE(p.err.find("tta_only"), std::string::npos) << p.err;
  EXPECT_NE(p.err.find("classify"), std::string::npos) << p.err;
  EXPECT_FALSE(fs::exists(box.db()));
}

TEST(Cli, DryRunListsTrialsWithoutRunning) {
  CliSandbox box;
  auto file = box.write("dry.toml", tiny_sweep("dry", kTwoMethods));
  auto r = box.run({"run", file.string(), "--dry-run", "--set", "optim.lr=0.05"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("4 trial(s)"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("method.name=label_smoothing"), std::string::npos) << r.out;
  EXPECT_FALSE(fs::exists(box.db()));
}

TEST(Cli, QueriesAfterARun) {
  CliSandbox box;
  auto file = box.write("q.toml", tiny_sweep("q", kTwoMethods));
  ASSERT_EQ(box.run({"run", file.string(), "-j", "2", "--no-compare"}).code, 0);
  auto ls = box.run({"ls"});
  EXPECT_NE(ls.out.find("q "), std::string::npos) << ls.out;
  auto csv = box.run({"compare", "q", "--metric", "test.nll", "--by", "method.name", "--format", "csv"});
  ASSERT_EQ(csv.code, 0) << csv.err;
  EXPECT_NE(csv.out.find("method.name"), std::string::npos) << csv.out;
  EXPECT_NE(csv.out.find("label_smoothing"), std::string::npos) << csv.out;
  // The classify paradigm declared test.nll lower is better where it
  // recorded it; the flags override that declaration, one at a time.
  auto json = box.run({"compare", "q", "--metric", "test.nll", "--format", "json"});
  ASSERT_EQ(json.code, 0) << json.err;
  EXPECT_NE(json.out.find("\"direction\": \"lower\""), std::string::npos) << json.out;
  EXPECT_NE(json.out.find("\"direction_source\": \"declared\""), std::string::npos) << json.out;
  auto higher = box.run({"compare", "q", "--metric", "test.nll", "--higher-is-better"});
  ASSERT_EQ(higher.code, 0) << higher.err;
  EXPECT_NE(higher.out.find("higher is better (as asked)"), std::string::npos) << higher.out;
  auto timing = box.run({"compare", "q", "--metric", "time.epoch_s"});
  ASSERT_EQ(timing.code, 0) << timing.err;
  EXPECT_NE(timing.out.find("no declared direction"), std::string::npos) << timing.out;
  EXPECT_EQ(timing.out.find("best"), std::string::npos) << timing.out;
  auto both = box.run({"compare", "q", "--metric", "test.nll", "--higher-is-better", "--lower-is-better"});
  EXPECT_NE(both.code, 0) << both.out;
  auto runs = runs_of(box.db(), "q");
  auto log = box.run({"show", std::to_string(runs[0].id), "--log"});
  EXPECT_NE(log.out.find("completed"), std::string::npos) << log.out;
  auto show = box.run({"show", runs[0].key.substr(0, 8)});
  EXPECT_NE(show.out.find(runs[0].key), std::string::npos) << show.out;
  auto missing = box.run({"compare", "nope"});
  EXPECT_NE(missing.code, 0);
  EXPECT_NE(missing.err.find("nope"), std::string::npos) << missing.err;
}

TEST(Cli, MethodsListsPluginsAndFailures) {
  CliSandbox box;
  auto r = box.run({"methods"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("label_smoothing"), std::string::npos);
  EXPECT_NE(r.out.find("confidence_penalty"), std::string::npos);
  EXPECT_NE(r.out.find("failed to load"), std::string::npos);
  EXPECT_NE(r.out.find("api_version: plugin " + std::to_string(reglab::kApiVersion + 41) + ", reglab " +
                      std::to_string(reglab::kApiVersion)),
            std::string::npos)
      << r.out;
  auto one = box.run({"methods", "label_smoothing"});
  EXPECT_NE(one.out.find("epsilon"), std::string::npos) << one.out;
  auto unknown = box.run({"methods", "label_smothing"});
  EXPECT_NE(unknown.code, 0);
  EXPECT_NE(unknown.err.find("did you mean 'label_smoothing'"), std::string::npos) << unknown.err;
}

TEST(Cli, ProbeEvaluatesAMethodFromJson) {
  CliSandbox box;
  // z = (0, ln 3): p = (1/4, 3/4); CE for y = 1 is −ln(3/4) = 0.2876820724517809,
  // gradient p − onehot = (0.25, −0.25).
  auto req = box.write("req.json", R"({"method": "ce", "logits": [[0.0, 1.0986122886681098]], "labels": [1]})");
  auto r = box.run({"probe", req.string()});
  ASSERT_EQ(r.code, 0) << r.err;
  auto j = nlohmann::json::parse(r.out);
  EXPECT_NEAR(j["steps"][0]["loss"].get<double>(), 0.2876820724517809, 1e-12);
  EXPECT_NEAR(j["steps"][0]["grad_logits"][0][0].get<double>(), 0.25, 1e-12);
  EXPECT_NEAR(j["steps"][0]["grad_logits"][0][1].get<double>(), -0.25, 1e-12);
}

// A tta method on a model given as layers: `source` returns the model's
// logits, W x + b = (1 + 2 + 0.5, 3 + 4 − 0.5) for x = (1, 1).
TEST(Cli, ProbeRunsATtaMethodOnAGivenModel) {
  CliSandbox box;
  auto req = box.write("tta.json", R"({"model": [{"linear": {"weight": [[1, 2], [3, 4]], "bias": [0.5, -0.5]}}],
                                       "steps": [{"inputs": [[1, 1]]}]})");
  auto r = box.run({"probe", req.string(), "--method", "source"});
  ASSERT_EQ(r.code, 0) << r.err;
  auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["paradigm"], "tta");
  EXPECT_NEAR(j["steps"][0]["logits"][0][0].get<double>(), 3.5, 1e-6);
  EXPECT_NEAR(j["steps"][0]["logits"][0][1].get<double>(), 6.5, 1e-6);
  EXPECT_EQ(j["steps"][0]["num_used"], 0);
  auto bad = box.write("bad.json", R"({"model": [{"linear": {"weight": [[1, 2, 3]]}}], "steps": [{"inputs": [[1, 1]]}]})");
  auto e = box.run({"probe", bad.string(), "--method", "source"});
  EXPECT_NE(e.code, 0);
  EXPECT_NE(e.err.find("model does not fit steps[0].inputs of shape [1, 2]"), std::string::npos) << e.err;
}

// Two coordinators on one sweep share the work: no trial runs twice.
TEST(Cli, TwoCoordinatorsNeverRunATrialTwice) {
  CliSandbox box;
  auto file = box.write("pair.toml", tiny_sweep("pair", "[[sweep.variants]]\nmethod = { name = \"faulty\", sleep_ms = 20 }\n",
                                                "", "[0, 1, 2, 3]"));
  pid_t a = box.start({"run", file.string(), "-j", "1", "--no-compare"}, "a");
  pid_t b = box.start({"run", file.string(), "-j", "1", "--no-compare"}, "b");
  auto ra = box.wait(a, "a");
  auto rb = box.wait(b, "b");
  // Each exit code counts the trials that command did not finish: those the
  // other one held the lease of when it got to them, and it says so.
  for (const auto* r : {&ra, &rb}) {
    EXPECT_LE(r->code, 4) << r->err;
    EXPECT_EQ(r->code > 0, r->err.find("running in another reglab process") != std::string::npos) << r->err;
  }
  auto runs = runs_of(box.db(), "pair");
  ASSERT_EQ(runs.size(), 4u);
  for (const auto& r : runs) {
    EXPECT_EQ(r.status, reglab::store::RunStatus::kCompleted);
    EXPECT_EQ(r.attempts, 1) << "run " << r.id << " ran more than once";
  }
}
