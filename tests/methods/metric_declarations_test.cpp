// Metric directions declared where metrics are recorded reach the store:
// a plugin's through its MetricSink (the runner's MetricRecorder), the core's
// through record_core from metrics/directions.h.
#include <gtest/gtest.h>
#include <unistd.h>

#include <map>
#include <stdexcept>
#include <string>

#include "methods/method_harness.h"
#include "plugins/method_handle.h"
#include "runner/trial_env.h"
#include "store/store.h"
#include "store/temp_db.h"

namespace reglab {
namespace {

using testing::build_plugin;
using testing::NullLogger;
using testing_support::TempDir;

std::map<std::string, MetricDirection> stored(store::Store& db, std::int64_t run) {
  std::map<std::string, MetricDirection> out;
  for (const auto& d : db.metric_directions(run)) out[d.key] = d.direction;
  return out;
}

class RecorderTest : public ::testing::Test {
 protected:
  void SetUp() override {
    db_ = std::make_unique<store::Store>(dir_.file("r.db"));
    const auto sweep = db_->upsert_sweep("s", "", "");
    run_ = db_->ensure_run(sweep, "kkkkkkkk", "", "{}", "m");
    db_->mark_running(run_, ::getpid(), "h", "", "");
  }
  TempDir dir_;
  std::unique_ptr<store::Store> db_;
  std::int64_t run_ = 0;
};

// The in-tree plugins that record metrics declare them in setup(), across
// the plugin boundary, and the recorder writes them with its next flush.
TEST_F(RecorderTest, PluginDeclarationsFromSetupReachTheStore) {
  for (const std::string method : {"aepo", "epo"}) {
    runner::MetricRecorder recorder(db_.get(), run_);
    NullLogger log;
    const plugins::LoadedPlugin& plugin = build_plugin(method);
    const Params params = plugins::resolve_params(*plugin.info, "{}");
    const MethodContext ctx{params, log, recorder, kRlvr, 8, 16, 4, torch::Device(torch::kCPU), torch::kFloat};
    plugins::MethodHandle handle(plugin);
    handle.setup(ctx);
    recorder.flush();
  }
  const auto d = stored(*db_, run_);
  for (const char* key : {"method.entropy", "method.temperature", "method.selected_rows", "method.replaced_rows",
                          "method.entropy_estimate", "method.entropy_history_mean", "method.phase_weight",
                          "method.in_band_fraction"}) {
    ASSERT_EQ(d.count(key), 1u) << key;
    EXPECT_EQ(d.at(key), MetricDirection::kNone) << key;
  }
}

// A method's own score, declared lower is better, ranks its "best" summary;
// one recorded but never declared gets none.
TEST_F(RecorderTest, DeclaredPluginMetricGetsItsBestSummary) {
  runner::MetricRecorder recorder(db_.get(), run_);
  MetricSink& sink = recorder;  // what a plugin sees
  sink.record("method.gap", 0.5, 1);
  sink.record("method.gap", 0.2, 2);
  sink.record("method.gap", 0.3, 3);
  sink.declare("method.gap", MetricDirection::kLower);  // after the points: fine
  sink.record("method.raw", 1.0, 1);
  recorder.flush();
  db_->mark_finished(run_, store::RunStatus::kCompleted, "");
  EXPECT_EQ(stored(*db_, run_), (std::map<std::string, MetricDirection>{{"method.gap", MetricDirection::kLower}}));
  EXPECT_DOUBLE_EQ(*db_->summary(run_, "method.gap", "best"), 0.2);
  EXPECT_EQ(db_->summary(run_, "method.raw", "best"), std::nullopt);
}

TEST_F(RecorderTest, ConflictingDeclarationNamesTheKeyAndBothDirections) {
  runner::MetricRecorder recorder(db_.get(), run_);
  recorder.declare("method.gap", MetricDirection::kLower);
  recorder.declare("method.gap", MetricDirection::kLower);  // the same again: a no-op
  try {
    recorder.declare("method.gap", MetricDirection::kHigher);
    FAIL() << "expected an error";
  } catch (const std::invalid_argument& e) {
    const std::string msg = e.what();
    for (const char* word : {"'method.gap'", "lower", "higher"}) EXPECT_NE(msg.find(word), std::string::npos) << msg;
  }
}

TEST_F(RecorderTest, CoreKeysAreDeclaredFromTheCoreTable) {
  runner::MetricRecorder recorder(db_.get(), run_);
  recorder.record_core("tta.err.gaussian_noise", 0.3, 1);
  recorder.record_core("tta.used_frac", 0.5, 1);
  recorder.record_core("train.flipped_acc", 0.1, 1);
  EXPECT_THROW(recorder.record_core("test.not_a_core_key", 1.0, 1), std::logic_error);
  recorder.flush();
  EXPECT_EQ(stored(*db_, run_), (std::map<std::string, MetricDirection>{
                                    {"tta.err.gaussian_noise", MetricDirection::kLower},
                                    {"tta.used_frac", MetricDirection::kNone},
                                    {"train.flipped_acc", MetricDirection::kLower}}));
}

}  // namespace
}  // namespace reglab
