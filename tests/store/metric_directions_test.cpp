// Metric directions: declared where recorded, kept by the store, used by
// compare, the "best" summaries and the migration of older databases.
// Nothing may be guessed from a metric's name: tta.err.<corruption> is lower
// is better although its last part is a corruption's name, tta.used_frac has
// no better side at all.
#include <SQLiteCpp/SQLiteCpp.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <stdexcept>
#include <string>
#include <tuple>
#include <vector>

#include "metrics/directions.h"
#include "query/compare.h"
#include "store/schema.h"
#include "store/store.h"
#include "store/testing.h"
#include "store/temp_db.h"

namespace reglab {
namespace {

using query::CompareOptions;
using query::DirectionSource;
using store::MetricDeclaration;
using store::MetricPoint;
using store::RunStatus;
using store::Store;
using testing_support::TempDir;

// A completed run of `method` whose keys are declared as a recorder would:
// the core's from metrics/directions.h, plus `extra` (a plugin's).
std::int64_t add_run(Store& s, std::int64_t sweep, const std::string& key, const std::string& method,
                     const std::vector<MetricPoint>& points, const std::vector<MetricDeclaration>& extra = {}) {
  const std::string config = R"({"method":{"name":")" + method + R"("},"seed":)" + std::to_string(key.size()) + "}";
  const auto id = s.ensure_run(sweep, key, method, config, method);
  s.mark_running(id, ::getpid(), "h", "", "");
  std::vector<MetricDeclaration> declared = extra;
  for (const auto& p : points) {
    if (const auto d = metrics::core_direction(p.key)) declared.push_back({p.key, *d});
  }
  s.declare_metrics(id, declared);
  s.add_metrics(id, points);
  s.mark_finished(id, RunStatus::kCompleted, "");
  return id;
}

// --- the core's table ---------------------------------------------------------

TEST(CoreDirections, FamiliesTakeTheirFamilysDirection) {
  using D = MetricDirection;
  EXPECT_EQ(metrics::core_direction("tta.err.gaussian_noise"), D::kLower);
  EXPECT_EQ(metrics::core_direction("tta.clean_err.fog"), D::kLower);
  EXPECT_EQ(metrics::core_direction("tta.used_frac.fog"), D::kNone);
  EXPECT_EQ(metrics::core_direction("tta.used_frac"), D::kNone);
  EXPECT_EQ(metrics::core_direction("tta.auroc.fog"), D::kHigher);
  EXPECT_EQ(metrics::core_direction("eval.id.pass_at_4"), D::kHigher);
  EXPECT_EQ(metrics::core_direction("eval.ood.maj_at_8"), D::kHigher);
  EXPECT_EQ(metrics::core_direction("eval.ood.invalid_frac"), D::kLower);
  EXPECT_EQ(metrics::core_direction("eval.id.entropy"), D::kNone);
  EXPECT_EQ(metrics::core_direction("test.acc"), D::kHigher);
  EXPECT_EQ(metrics::core_direction("test.ece"), D::kLower);
  // Accuracy on the flipped labels measures memorisation of the noise.
  EXPECT_EQ(metrics::core_direction("train.flipped_acc"), D::kLower);
  EXPECT_EQ(metrics::core_direction("time.epoch_s"), D::kNone);
  // Not the core's: plugins declare their own; near misses are not members.
  EXPECT_EQ(metrics::core_direction("method.entropy"), std::nullopt);
  EXPECT_EQ(metrics::core_direction("tta.err."), std::nullopt);
  EXPECT_EQ(metrics::core_direction("tta.err.fog.extra"), std::nullopt);
  EXPECT_EQ(metrics::core_direction("eval.id.pass_at_"), std::nullopt);
  EXPECT_EQ(metrics::core_direction("test.top1_err"), std::nullopt);
  try {
    metrics::require_core_direction("test.brand_new");
    FAIL() << "expected an error";
  } catch (const std::logic_error& e) {
    EXPECT_NE(std::string(e.what()).find("'test.brand_new'"), std::string::npos) << e.what();
  }
}

// --- store and compare ---------------------------------------------------------

class DirectionsTest : public ::testing::Test {
 protected:
  // Sweep "tta": tent, eata, source with one seed each; their error on
  // gaussian_noise 0.30, 0.25, 0.60 and the share of samples they adapted on
  // 0.9, 0.5, 0.0. "plug" holds runs with a plugin metric declared by its
  // method, or declared differently by two runs.
  void SetUp() override {
    store_ = std::make_unique<Store>(dir_.file("r.db"));
    Store& s = *store_;
    const auto tta = s.upsert_sweep("tta", "", "");
    for (const auto& [method, err, used] : std::vector<std::tuple<std::string, double, double>>{
             {"tent", 0.30, 0.9}, {"eata", 0.25, 0.5}, {"source", 0.60, 0.0}}) {
      // The error is logged once per corruption and then again at a later
      // step: the max and the min differ.
      ids_[method] = add_run(s, tta, "k-" + method, method,
                             {{"tta.err.gaussian_noise", 1, err + 0.1},
                              {"tta.err.gaussian_noise", 2, err},
                              {"tta.used_frac", 2, used},
                              {"tta.used_frac", 1, used / 2}});
    }
  }

  TempDir dir_;
  std::unique_ptr<Store> store_;
  std::map<std::string, std::int64_t> ids_;
};

// (a) The old name guess ranked tta.err.<corruption> higher-is-better and
// marked the worst method (source) best.
TEST_F(DirectionsTest, PerCorruptionErrorMarksTheLowestBest) {
  CompareOptions o;
  o.sweep = "tta";
  o.metric = "tta.err.gaussian_noise";
  const auto r = query::compare(*store_, o);
  EXPECT_EQ(r.direction, MetricDirection::kLower);
  EXPECT_EQ(r.direction_source, DirectionSource::kDeclared);
  ASSERT_EQ(r.rows.size(), 3u);
  EXPECT_EQ(r.rows[0].values[0], "eata");
  EXPECT_TRUE(r.rows[0].best);
  EXPECT_EQ(r.rows[2].values[0], "source");
  EXPECT_FALSE(r.rows[1].best || r.rows[2].best);
  // The "best" summary is the minimum, at the earliest step reaching it.
  EXPECT_DOUBLE_EQ(*store_->summary(ids_["eata"], "tta.err.gaussian_noise", "best"), 0.25);
  const std::string table = query::format(r, "table");
  EXPECT_NE(table.find("lower is better"), std::string::npos) << table;
}

// (b) A fraction with no better side: no best mark and no "best" summary.
TEST_F(DirectionsTest, UsedFractionHasNoBestMarkAndNoBestSummary) {
  CompareOptions o;
  o.sweep = "tta";
  o.metric = "tta.used_frac";
  const auto r = query::compare(*store_, o);
  EXPECT_EQ(r.direction, MetricDirection::kNone);
  ASSERT_EQ(r.rows.size(), 3u);
  for (const auto& g : r.rows) EXPECT_FALSE(g.best) << g.values[0];
  // Without a direction the groups keep the order of their values.
  EXPECT_EQ(r.rows[0].values[0], "eata");
  EXPECT_EQ(r.rows[1].values[0], "source");
  EXPECT_EQ(r.rows[2].values[0], "tent");
  for (const auto& [method, id] : ids_) {
    EXPECT_EQ(store_->summary(id, "tta.used_frac", "best"), std::nullopt) << method;
    EXPECT_TRUE(store_->summary(id, "tta.used_frac", "final").has_value()) << method;
  }
  const std::string table = query::format(r, "table");
  EXPECT_NE(table.find("no declared direction"), std::string::npos) << table;
  EXPECT_EQ(table.find("best"), std::string::npos) << table;
  const auto doc = nlohmann::json::parse(query::format(r, "json"));
  EXPECT_EQ(doc["direction"], "none");
  for (const auto& g : doc["groups"]) EXPECT_EQ(g["best"], false);
  // No "best" summaries to compare: the error says why.
  o.summary = "best";
  try {
    query::compare(*store_, o);
    FAIL() << "expected an error";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("declare no higher or lower direction"), std::string::npos) << e.what();
  }
}

// (d) The override ranks as asked, whatever was declared, and says so.
TEST_F(DirectionsTest, OverrideRanksAsAsked) {
  CompareOptions o;
  o.sweep = "tta";
  o.metric = "tta.err.gaussian_noise";
  o.direction = MetricDirection::kHigher;
  auto r = query::compare(*store_, o);
  EXPECT_EQ(r.direction, MetricDirection::kHigher);
  EXPECT_EQ(r.direction_source, DirectionSource::kOverride);
  EXPECT_EQ(r.rows[0].values[0], "source");
  EXPECT_TRUE(r.rows[0].best);
  EXPECT_NE(query::format(r, "table").find("higher is better (as asked)"), std::string::npos);

  o.metric = "tta.used_frac";
  o.direction = MetricDirection::kLower;
  r = query::compare(*store_, o);
  EXPECT_EQ(r.rows[0].values[0], "source");
  EXPECT_TRUE(r.rows[0].best);
}

TEST_F(DirectionsTest, PluginDeclaredDirectionRanksAndUndeclaredDoesNot) {
  Store& s = *store_;
  const auto plug = s.upsert_sweep("plug", "", "");
  const MetricDeclaration lower{"method.divergence", MetricDirection::kLower};
  const auto a = add_run(s, plug, "p-a", "a", {{"method.divergence", 1, 0.4}, {"method.other", 1, 1.0}}, {lower});
  add_run(s, plug, "p-b", "b", {{"method.divergence", 1, 0.2}, {"method.other", 1, 2.0}}, {lower});
  ASSERT_EQ(s.metric_directions(a).size(), 1u);
  EXPECT_EQ(s.metric_directions(a)[0].key, "method.divergence");
  EXPECT_EQ(s.metric_directions(a)[0].direction, MetricDirection::kLower);
  EXPECT_DOUBLE_EQ(*s.summary(a, "method.divergence", "best"), 0.4);
  EXPECT_EQ(s.summary(a, "method.other", "best"), std::nullopt);

  CompareOptions o;
  o.sweep = "plug";
  o.metric = "method.divergence";
  auto r = query::compare(s, o);
  EXPECT_EQ(r.rows[0].values[0], "b");
  EXPECT_TRUE(r.rows[0].best);

  o.metric = "method.other";  // recorded, never declared
  r = query::compare(s, o);
  EXPECT_EQ(r.direction, MetricDirection::kNone);
  EXPECT_EQ(r.direction_source, DirectionSource::kUndeclared);
  for (const auto& g : r.rows) EXPECT_FALSE(g.best);
}

TEST_F(DirectionsTest, RunsThatDisagreeGetNoBest) {
  Store& s = *store_;
  const auto plug = s.upsert_sweep("plug", "", "");
  add_run(s, plug, "p-a", "a", {{"method.score", 1, 0.4}}, {{"method.score", MetricDirection::kLower}});
  add_run(s, plug, "p-b", "b", {{"method.score", 1, 0.2}}, {{"method.score", MetricDirection::kHigher}});
  CompareOptions o;
  o.sweep = "plug";
  o.metric = "method.score";
  const auto r = query::compare(s, o);
  EXPECT_EQ(r.direction, MetricDirection::kNone);
  EXPECT_EQ(r.direction_source, DirectionSource::kDisagree);
  for (const auto& g : r.rows) EXPECT_FALSE(g.best);
  const std::string table = query::format(r, "table");
  EXPECT_NE(table.find("no declared direction"), std::string::npos) << table;
}

TEST(StoreDirections, LatestDeclarationWinsAndUnknownRunIsNamed) {
  TempDir dir;
  Store s(dir.file("r.db"));
  const auto sweep = s.upsert_sweep("x", "", "");
  const auto id = s.ensure_run(sweep, "kkkkkkkk", "m", "{}", "m");
  s.declare_metrics(id, {{"a", MetricDirection::kHigher}, {"b", MetricDirection::kNone}});
  s.declare_metrics(id, {{"a", MetricDirection::kLower}});
  const auto d = s.metric_directions(id);
  ASSERT_EQ(d.size(), 2u);
  EXPECT_EQ(d[0].key, "a");
  EXPECT_EQ(d[0].direction, MetricDirection::kLower);
  EXPECT_EQ(d[1].direction, MetricDirection::kNone);
  try {
    s.declare_metrics(id + 100, {{"a", MetricDirection::kHigher}});
    FAIL() << "expected an error";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find(std::to_string(id + 100)), std::string::npos) << e.what();
  }
}

// --- (e) migration of a version-2 database --------------------------------------

TEST(DirectionsMigration, Version2DatabaseGetsTheCoreDirectionsBackFilled) {
  TempDir dir;
  const auto path = dir.file("v2.db");
  {
    // A quickstart-era file: schema 2, summaries written by the old name
    // guess (the max of tta.err.<corruption>, a "best" for every key).
    SQLite::Database raw(path, SQLite::OPEN_READWRITE | SQLite::OPEN_CREATE);
    const auto& steps = store::migrations();
    store::migrate(raw, {steps[0], steps[1]}, path);
    ASSERT_EQ(store::read_schema_version(raw), 2);
    raw.exec("INSERT INTO sweeps (name, created_at) VALUES ('old', '2026-01-01T00:00:00.000Z')");
    for (int run = 1; run <= 2; ++run) {
      const std::string id = std::to_string(run), method = run == 1 ? "tent" : "source";
      // Distinct configurations, as any two trials of a sweep have (schema 3
      // rekeys each run from its configuration).
      raw.exec("INSERT INTO runs (sweep_id, key, config_json, created_at, status) VALUES (1, 'k" + id +
               "', '{\"seed\": " + id + "}', '2026-01-01T00:00:00.000Z', 'completed')");
      raw.exec("INSERT INTO params (run_id, key, value) VALUES (" + id + ", 'method.name', '" + method + "')");
      // tent: err 0.5 then 0.3; source: 0.7 then 0.6.
      const double first = run == 1 ? 0.5 : 0.7, last = run == 1 ? 0.3 : 0.6;
      raw.exec("INSERT INTO metrics (run_id, key, step, value, time) VALUES (" + id + ", 'tta.err.fog', 1, " +
               std::to_string(first) + ", 0), (" + id + ", 'tta.err.fog', 2, " + std::to_string(last) + ", 0), (" +
               id + ", 'tta.used_frac', 2, 0.5, 0), (" + id + ", 'test.acc', 2, 0.8, 0), (" + id +
               ", 'method.entropy', 2, 1.5, 0)");
      raw.exec("INSERT INTO summaries (run_id, key, kind, value, step) VALUES (" + id + ", 'tta.err.fog', 'final', " +
               std::to_string(last) + ", 2), (" + id + ", 'tta.err.fog', 'best', " + std::to_string(first) +
               ", 1), (" + id + ", 'tta.used_frac', 'final', 0.5, 2), (" + id +
               ", 'tta.used_frac', 'best', 0.5, 2), (" + id + ", 'test.acc', 'final', 0.8, 2), (" + id +
               ", 'test.acc', 'best', 0.8, 2), (" + id + ", 'method.entropy', 'final', 1.5, 2), (" + id +
               ", 'method.entropy', 'best', 1.5, 2)");
    }
  }
  Store s(path);
  EXPECT_EQ(store::read_schema_version(store::raw_connection_for_tests(s)), store::kSchemaVersion);
  const auto d = s.metric_directions(1);
  ASSERT_EQ(d.size(), 3u);  // method.entropy is a plugin's: it stays undeclared
  EXPECT_EQ(d[0].key, "test.acc");
  EXPECT_EQ(d[0].direction, MetricDirection::kHigher);
  EXPECT_EQ(d[1].key, "tta.err.fog");
  EXPECT_EQ(d[1].direction, MetricDirection::kLower);
  EXPECT_EQ(d[2].key, "tta.used_frac");
  EXPECT_EQ(d[2].direction, MetricDirection::kNone);
  // The "best" summaries are ranked again by the declared directions.
  EXPECT_DOUBLE_EQ(*s.summary(1, "tta.err.fog", "best"), 0.3);
  EXPECT_DOUBLE_EQ(*s.summary(1, "test.acc", "best"), 0.8);
  EXPECT_EQ(s.summary(1, "tta.used_frac", "best"), std::nullopt);
  EXPECT_EQ(s.summary(1, "method.entropy", "best"), std::nullopt);
  EXPECT_DOUBLE_EQ(*s.summary(1, "tta.err.fog", "final"), 0.3);

  CompareOptions o;
  o.sweep = "old";
  o.metric = "tta.err.fog";
  const auto r = query::compare(s, o);
  EXPECT_EQ(r.direction, MetricDirection::kLower);
  ASSERT_EQ(r.rows.size(), 2u);
  EXPECT_EQ(r.rows[0].values[0], "tent");
  EXPECT_TRUE(r.rows[0].best);
  o.metric = "method.entropy";
  EXPECT_EQ(query::compare(s, o).direction_source, DirectionSource::kUndeclared);
}

}  // namespace
}  // namespace reglab
