// The mil paradigm end to end on synthetic bags: what it records, that it
// learns, that a resumed trial continues exactly, and several bags per step.
#include <gtest/gtest.h>

#include <fstream>

#include <stdlib.h>

#include <filesystem>
#include <functional>
#include <set>
#include <map>
#include <string>
#include <vector>

#include "config/config.h"
#include "paradigms/mil.h"
#include "reglab/method.h"
#include "runner/trial_env.h"
#include "store/store.h"
#include "store/temp_db.h"

namespace reglab::testing {
namespace {

namespace fs = std::filesystem;
using config::Json;

class Lines final : public Logger {
 public:
  void log(LogLevel, std::string_view m) override { lines.push_back(std::string(m)); }
  std::vector<std::string> lines;
};

using testing_support::TempDir;

// Four well-separated classes of 8-d vectors (means 5 apart); a bag is positive when it holds
// a class-3 instance.
Json trial(const std::string& method, std::int64_t epochs, std::int64_t bags_per_step = 1) {
  return Json{{"seed", 4},
              {"task",
               {{"paradigm", "mil"}, {"epochs", epochs}, {"bags_per_step", bags_per_step}, {"checkpoint_every", 1},
                {"schedule_per_step", true}}},
              {"data",
               {{"dataset", "synthetic"},
                {"val_fraction", 0.0},
                {"synthetic", {{"samples", 400}, {"test_samples", 200}, {"features", 8}, {"classes", 4}, {"separation", 5.0}}},
                {"bags", {{"targets", {3}}, {"size_mean", 6.0}, {"size_std", 2.0}, {"train", 200}, {"test", 100}}}}},
              {"model", {{"arch", "mlp"}, {"hidden", {16}}, {"mil", {{"attention", "gated"}, {"heads", 2}}}}},
              {"optim", {{"name", "adamw"}, {"lr", 1e-2}, {"weight_decay", 1e-5}, {"schedule", "cosine"}}},
              {"method", {{"name", method}, {"lambda", 0.1}}}};
}

void run(const Json& cfg, store::Store& db, std::int64_t run_id, const fs::path& dir, const std::function<bool()>& stop,
         Lines& log) {
  runner::MetricRecorder recorder(&db, run_id);
  runner::TrialEnv env{cfg,
                       log,
                       recorder,
                       dir,
                       stop,
                       [](const Json&) {},
                       [] {},
                       [](const std::string&, const std::string&) {},
                       [](const std::string&, const fs::path&) {}};
  paradigms::run_mil(env);
}

double at(store::Store& db, std::int64_t run, const std::string& key, std::int64_t step) {
  for (const auto& p : db.metrics(run, key))
    if (p.step == step) return p.value;
  throw std::out_of_range("no " + key + " at step " + std::to_string(step));
}

TEST(MilParadigm, RecordsEveryMetricEachEpochAndLearns) {
  TempDir dir;
  store::Store db(dir.path() / "r.db");
  const std::int64_t sweep = db.upsert_sweep("mil", "", "");
  const std::int64_t run_id = db.ensure_run(sweep, "a", "", trial("aem", 3).dump(), "aem");
  Lines log;
  run(trial("aem", 3), db, run_id, dir.path(), [] { return false; }, log);
  for (const std::string key : {"train.loss", "train.acc", "test.acc", "test.nll", "test.auc",
                                "test.attention_entropy", "test.attention_max", "test.instance_auc", "lr",
                                "time.train_s", "time.epoch_s"})
    EXPECT_EQ(db.metrics(run_id, key).size(), 3u) << key;
  // Each key was declared where it was recorded (metrics/directions.h).
  std::map<std::string, MetricDirection> directions;
  for (const auto& d : db.metric_directions(run_id)) directions[d.key] = d.direction;
  EXPECT_EQ(directions.at("test.auc"), MetricDirection::kHigher);
  EXPECT_EQ(directions.at("test.nll"), MetricDirection::kLower);
  EXPECT_EQ(directions.at("test.attention_entropy"), MetricDirection::kNone);
  EXPECT_EQ(directions.at("time.epoch_s"), MetricDirection::kNone);
  // Separable classes: the bags are told apart and the attention finds the
  // class-3 instances.
  EXPECT_GT(at(db, run_id, "test.auc", 3), 0.9);
  EXPECT_GT(at(db, run_id, "test.instance_auc", 3), 0.8);
  // Entropy of bags of ~6 instances lies in [0, ln 16]; the largest weight in (0, 1].
  EXPECT_GT(at(db, run_id, "test.attention_entropy", 3), 0.0);
  EXPECT_LT(at(db, run_id, "test.attention_entropy", 3), 2.8);
  EXPECT_GT(at(db, run_id, "test.attention_max", 3), 0.0);
  EXPECT_LE(at(db, run_id, "test.attention_max", 3), 1.0);
  // The rate at each epoch's first step: cosine over 3 epochs from 1e-2.
  EXPECT_DOUBLE_EQ(at(db, run_id, "lr", 1), 1e-2);
  EXPECT_NEAR(at(db, run_id, "lr", 2), 1e-2 * 0.75, 1e-15);
  EXPECT_NEAR(at(db, run_id, "lr", 3), 1e-2 * 0.25, 1e-15);
  bool described = false;
  for (const std::string& line : log.lines) described |= line.rfind("bags: 200 train (", 0) == 0;
  EXPECT_TRUE(described);
}

// Interrupted after its first checkpoint and run again, a trial ends exactly
// as the same trial run straight through.
TEST(MilParadigm, ResumesFromItsCheckpointExactly) {
  TempDir dir;
  store::Store db(dir.path() / "r.db");
  const std::int64_t sweep = db.upsert_sweep("mil", "", "");
  const Json cfg = trial("aem", 2);
  const std::int64_t straight = db.ensure_run(sweep, "straight", "", cfg.dump(), "aem");
  const std::int64_t resumed = db.ensure_run(sweep, "resumed", "", cfg.dump(), "aem");
  const fs::path a = dir.path() / "a", b = dir.path() / "b";
  fs::create_directories(a);
  fs::create_directories(b);
  Lines log_a, log_b1, log_b2;
  run(cfg, db, straight, a, [] { return false; }, log_a);
  EXPECT_THROW(run(cfg, db, resumed, b, [&] { return fs::exists(b / "checkpoint.pt"); }, log_b1), runner::Interrupted);
  run(cfg, db, resumed, b, [] { return false; }, log_b2);
  bool said = false;
  for (const std::string& line : log_b2.lines) said |= line.find("resumed from") != std::string::npos;
  EXPECT_TRUE(said);
  for (const std::string key : {"train.loss", "train.acc", "test.nll", "test.auc", "test.attention_entropy",
                                "test.instance_auc"})
    EXPECT_EQ(at(db, resumed, key, 2), at(db, straight, key, 2)) << key;
}

// An unreadable checkpoint is never used: the trial says so and starts over
// from a fresh model, ending exactly as a trial that never had one.
TEST(MilParadigm, AnUnreadableCheckpointIsIgnoredAndTheTrialStartsOver) {
  TempDir dir;
  store::Store db(dir.path() / "r.db");
  const std::int64_t sweep = db.upsert_sweep("mil", "", "");
  const Json cfg = trial("aem", 2);
  const std::int64_t clean = db.ensure_run(sweep, "clean", "", cfg.dump(), "aem");
  const std::int64_t damaged = db.ensure_run(sweep, "damaged", "", cfg.dump(), "aem");
  const fs::path a = dir.path() / "a", b = dir.path() / "b";
  fs::create_directories(a);
  fs::create_directories(b);
  std::ofstream(b / "checkpoint.pt") << "not a LibTorch archive";
  Lines log_a, log_b;
  run(cfg, db, clean, a, [] { return false; }, log_a);
  run(cfg, db, damaged, b, [] { return false; }, log_b);
  bool warned = false;
  for (const std::string& line : log_b.lines) warned |= line.find("ignoring unreadable checkpoint") != std::string::npos;
  EXPECT_TRUE(warned);
  for (const std::string key : {"train.loss", "test.nll", "test.auc"}) {
    EXPECT_EQ(db.metrics(damaged, key).size(), 2u) << key;
    EXPECT_EQ(at(db, damaged, key, 2), at(db, clean, key, 2)) << key;
  }
}

// Several bags per step (padded) train the same model family and record the
// same metrics; abmil and aem both run.
TEST(MilParadigm, SeveralBagsPerStep) {
  TempDir dir;
  store::Store db(dir.path() / "r.db");
  const std::int64_t sweep = db.upsert_sweep("mil", "", "");
  for (const std::string method : {"abmil", "aem"}) {
    Json cfg = trial(method, 3, 4);
    if (method == "abmil") cfg["method"].erase("lambda");
    const std::int64_t run_id = db.ensure_run(sweep, method, "", cfg.dump(), method);
    Lines log;
    const fs::path d = dir.path() / method;
    fs::create_directories(d);
    run(cfg, db, run_id, d, [] { return false; }, log);
    EXPECT_EQ(db.metrics(run_id, "test.auc").size(), 3u) << method;
    EXPECT_GT(at(db, run_id, "test.auc", 3), 0.9) << method;
  }
}

}  // namespace
}  // namespace reglab::testing
