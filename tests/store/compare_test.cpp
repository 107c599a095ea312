// query::compare and query::format against hand-computed statistics.
#include "query/compare.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <limits>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>

#include "metrics/directions.h"
#include "store/temp_db.h"

namespace reglab::query {
namespace {

using store::RunStatus;
using store::Store;
using testing_support::TempDir;

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

std::int64_t add_run(Store& s, std::int64_t sweep, const std::string& key, const std::string& method,
                     const std::string& lr, int seed, std::vector<store::MetricPoint> points,
                     RunStatus status = RunStatus::kCompleted) {
  const std::string config = R"({"method":{"name":")" + method + R"("},"optim":{"lr":)" + lr +
                             R"(},"seed":)" + std::to_string(seed) + "}";
  const auto id = s.ensure_run(sweep, key, method, config, method);
  s.mark_running(id, ::getpid(), "h", "", "");
  // Each key declared as its recorder would: the core's from
  // metrics/directions.h, test.loss as a method would declare it; any other
  // key stays undeclared.
  std::vector<store::MetricDeclaration> declared;
  for (const auto& p : points) {
    if (p.key == "test.loss") {
      declared.push_back({p.key, MetricDirection::kLower});
    } else if (const auto d = metrics::core_direction(p.key)) {
      declared.push_back({p.key, *d});
    }
  }
  s.declare_metrics(id, declared);
  s.add_metrics(id, points);
  if (status != RunStatus::kRunning) s.mark_finished(id, status, "");
  return id;
}

// Sweep "noisy": method a (lr 0.1) final test.acc 0.80 0.82 0.84; b (lr 0.1)
// 0.70 0.74; c (lr 0.01) 0.60 after a best of 0.65. test.loss: a 0.5 0.4 0.6,
// b 0.3 0.5, c 0.9. A failed run of a (0.99) and a running run of b must be
// ignored.
class CompareTest : public ::testing::Test {
 protected:
  void SetUp() override {
    store_ = std::make_unique<Store>(dir_.file("r.db"));
    Store& s = *store_;
    const auto sweep = s.upsert_sweep("noisy", "", "");
    s.upsert_sweep("other", "", "");
    add_run(s, sweep, "a1a1a1a1", "a", "0.1", 1, {{"test.acc", 1, 0.5}, {"test.acc", 2, 0.80}, {"test.loss", 2, 0.5}});
    add_run(s, sweep, "a2a2a2a2", "a", "0.1", 2, {{"test.acc", 1, 0.5}, {"test.acc", 2, 0.82}, {"test.loss", 2, 0.4}});
    add_run(s, sweep, "a3a3a3a3", "a", "0.1", 3, {{"test.acc", 1, 0.5}, {"test.acc", 2, 0.84}, {"test.loss", 2, 0.6}});
    add_run(s, sweep, "b1b1b1b1", "b", "0.1", 1, {{"test.acc", 2, 0.70}, {"test.loss", 2, 0.3}});
    add_run(s, sweep, "b2b2b2b2", "b", "0.1", 2, {{"test.acc", 2, 0.74}, {"test.loss", 2, 0.5}});
    add_run(s, sweep, "c1c1c1c1", "c", "0.01", 1, {{"test.acc", 1, 0.65}, {"test.acc", 2, 0.60}, {"test.loss", 2, 0.9}});
    add_run(s, sweep, "a4a4a4a4", "a", "0.1", 4, {{"test.acc", 2, 0.99}}, RunStatus::kFailed);
    add_run(s, sweep, "b3b3b3b3", "b", "0.1", 3, {{"test.acc", 2, 0.99}}, RunStatus::kRunning);
  }

  TempDir dir_;
  std::unique_ptr<Store> store_;
};

TEST_F(CompareTest, StatisticsPerMethod) {
  CompareOptions o;
  o.sweep = "noisy";
  const auto r = compare(*store_, o);
  EXPECT_EQ(r.direction, MetricDirection::kHigher);
  EXPECT_EQ(r.direction_source, DirectionSource::kDeclared);
  ASSERT_EQ(r.rows.size(), 3u);

  const auto& a = r.rows[0];
  EXPECT_EQ(a.values, std::vector<std::string>{"a"});
  EXPECT_EQ(a.n, 3);
  EXPECT_NEAR(a.mean, 0.82, 1e-12);
  EXPECT_NEAR(a.std, 0.02, 1e-12);
  EXPECT_NEAR(a.ci95, 4.303 * 0.02 / std::sqrt(3.0), 1e-5);
  EXPECT_DOUBLE_EQ(a.min, 0.80);
  EXPECT_DOUBLE_EQ(a.max, 0.84);
  EXPECT_TRUE(a.best);

  const auto& b = r.rows[1];
  EXPECT_EQ(b.values, std::vector<std::string>{"b"});
  EXPECT_EQ(b.n, 2);  // the running run is not counted
  EXPECT_NEAR(b.mean, 0.72, 1e-12);
  // Deviations ±0.02: std = sqrt(2 * 0.02^2 / 1) = 0.02 * sqrt(2).
  EXPECT_NEAR(b.std, 0.02 * std::sqrt(2.0), 1e-12);
  EXPECT_NEAR(b.ci95, 12.706 * 0.02 * std::sqrt(2.0) / std::sqrt(2.0), 1e-4);
  EXPECT_FALSE(b.best);

  const auto& c = r.rows[2];
  EXPECT_EQ(c.values, std::vector<std::string>{"c"});
  EXPECT_EQ(c.n, 1);
  EXPECT_NEAR(c.mean, 0.60, 1e-12);
  EXPECT_TRUE(std::isnan(c.std));
  EXPECT_TRUE(std::isnan(c.ci95));
  EXPECT_FALSE(c.best);
}

TEST_F(CompareTest, LowerIsBetterMetricSortsAscending) {
  CompareOptions o;
  o.sweep = "noisy";
  o.metric = "test.loss";
  const auto r = compare(*store_, o);
  EXPECT_EQ(r.direction, MetricDirection::kLower);
  ASSERT_EQ(r.rows.size(), 3u);
  EXPECT_EQ(r.rows[0].values[0], "b");
  EXPECT_NEAR(r.rows[0].mean, 0.4, 1e-12);
  EXPECT_TRUE(r.rows[0].best);
  EXPECT_EQ(r.rows[1].values[0], "a");
  EXPECT_NEAR(r.rows[1].mean, 0.5, 1e-12);
  EXPECT_NEAR(r.rows[1].std, 0.1, 1e-12);
  EXPECT_EQ(r.rows[2].values[0], "c");
  EXPECT_FALSE(r.rows[1].best || r.rows[2].best);
}

TEST_F(CompareTest, GroupByTwoKeysAndFilterWithWhere) {
  CompareOptions o;
  o.sweep = "noisy";
  o.by = {"method.name", "optim.lr"};
  auto r = compare(*store_, o);
  ASSERT_EQ(r.rows.size(), 3u);
  EXPECT_EQ(r.rows[0].values, (std::vector<std::string>{"a", "0.1"}));
  EXPECT_EQ(r.rows[2].values, (std::vector<std::string>{"c", "0.01"}));

  o.by = {"optim.lr"};
  r = compare(*store_, o);
  ASSERT_EQ(r.rows.size(), 2u);
  EXPECT_EQ(r.rows[0].values[0], "0.1");
  EXPECT_EQ(r.rows[0].n, 5);
  EXPECT_NEAR(r.rows[0].mean, (0.80 + 0.82 + 0.84 + 0.70 + 0.74) / 5, 1e-12);

  o.by = {"method.name"};
  o.where = {{"optim.lr", "0.10"}};  // numerically equal to the stored 0.1
  r = compare(*store_, o);
  ASSERT_EQ(r.rows.size(), 2u);
  EXPECT_EQ(r.rows[0].values[0], "a");
  EXPECT_EQ(r.rows[1].values[0], "b");

  o.where = {{"method.name", "c"}};
  r = compare(*store_, o);
  ASSERT_EQ(r.rows.size(), 1u);
  EXPECT_EQ(r.rows[0].values[0], "c");
  EXPECT_TRUE(r.rows[0].best);

  o.where = {{"method.name", "zzz"}};
  try {
    compare(*store_, o);
    FAIL() << "expected an error";
  } catch (const std::runtime_error& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("method.name=zzz"), std::string::npos) << msg;
    EXPECT_NE(msg.find("a, b, c"), std::string::npos) << msg;
  }
}

TEST_F(CompareTest, ADivergedRunMakesItsGroupNaNAndLast) {
  const auto sweep = store_->find_sweep("noisy")->id;
  add_run(*store_, sweep, "d1d1d1d1", "d", "0.1", 1, {{"test.acc", 1, 0.95}, {"test.acc", 2, kNaN}});
  add_run(*store_, sweep, "d2d2d2d2", "d", "0.1", 2, {{"test.acc", 2, 0.99}});
  CompareOptions o;
  o.sweep = "noisy";
  const auto r = compare(*store_, o);
  ASSERT_EQ(r.rows.size(), 4u);
  EXPECT_EQ(r.rows[0].values[0], "a");
  EXPECT_TRUE(r.rows[0].best);
  EXPECT_EQ(r.rows[3].values[0], "d");
  EXPECT_EQ(r.rows[3].n, 2);
  EXPECT_TRUE(std::isnan(r.rows[3].mean));
  EXPECT_FALSE(r.rows[3].best);
  // Its "best" summary ignores the NaN point: (0.95 + 0.99) / 2.
  o.summary = "best";
  o.where = {{"method.name", "d"}};
  EXPECT_NEAR(compare(*store_, o).rows[0].mean, 0.97, 1e-12);
}

TEST_F(CompareTest, BestSummary) {
  CompareOptions o;
  o.sweep = "noisy";
  o.summary = "best";
  o.where = {{"method.name", "c"}};
  const auto r = compare(*store_, o);
  ASSERT_EQ(r.rows.size(), 1u);
  EXPECT_NEAR(r.rows[0].mean, 0.65, 1e-12);
  o.summary = "last";
  EXPECT_THROW(compare(*store_, o), std::invalid_argument);
}

TEST_F(CompareTest, UnknownSweepListsTheSweeps) {
  CompareOptions o;
  o.sweep = "noisyy";
  try {
    compare(*store_, o);
    FAIL() << "expected an error";
  } catch (const std::runtime_error& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("'noisyy'"), std::string::npos) << msg;
    EXPECT_NE(msg.find("noisy, other"), std::string::npos) << msg;
    EXPECT_NE(msg.find("did you mean 'noisy'"), std::string::npos) << msg;
  }
}

TEST_F(CompareTest, AbsentMetricListsThePresentOnes) {
  CompareOptions o;
  o.sweep = "noisy";
  o.metric = "test.auc";
  try {
    compare(*store_, o);
    FAIL() << "expected an error";
  } catch (const std::runtime_error& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("'test.auc'"), std::string::npos) << msg;
    EXPECT_NE(msg.find("test.acc, test.loss"), std::string::npos) << msg;
  }
  o.sweep = "other";  // no runs at all
  o.metric = "test.acc";
  EXPECT_THROW(compare(*store_, o), std::runtime_error);
}

TEST_F(CompareTest, UnknownConfigKeyIsNamed) {
  CompareOptions o;
  o.sweep = "noisy";
  o.by = {"method.nme"};
  try {
    compare(*store_, o);
    FAIL() << "expected an error";
  } catch (const std::runtime_error& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("'method.nme'"), std::string::npos) << msg;
    EXPECT_NE(msg.find("did you mean 'method.name'"), std::string::npos) << msg;
  }
}

TEST_F(CompareTest, TableOfARealComparisonMarksTheBest) {
  CompareOptions o;
  o.sweep = "noisy";
  const std::string t = format(compare(*store_, o), "table");
  std::istringstream in(t);
  std::string line;
  int best_lines = 0;
  while (std::getline(in, line)) {
    if (line.find("◀ best") != std::string::npos) {
      ++best_lines;
      EXPECT_EQ(line.rfind("a ", 0), 0u) << line;
    }
  }
  EXPECT_EQ(best_lines, 1);
  EXPECT_NE(t.find("0.8200 ± 0.0200"), std::string::npos) << t;
}

// --- formats on a hand-made result ------------------------------------------

CompareResult sample() {
  CompareResult r;
  r.options.sweep = "s";
  r.options.metric = "test.acc";
  r.options.by = {"method.name"};
  GroupRow g1;
  g1.values = {"elr"};
  g1.n = 3;
  g1.mean = 0.82;
  g1.std = 0.02;
  g1.ci95 = 0.05;
  g1.min = 0.8;
  g1.max = 0.84;
  g1.best = true;
  GroupRow g2;
  g2.values = {"ce, plain"};
  g2.n = 1;
  g2.mean = 0.7;
  g2.std = kNaN;
  g2.ci95 = kNaN;
  g2.min = 0.7;
  g2.max = 0.7;
  r.rows = {g1, g2};
  r.direction = MetricDirection::kHigher;
  r.direction_source = DirectionSource::kDeclared;
  return r;
}

TEST(CompareFormat, Csv) {
  EXPECT_EQ(format(sample(), "csv"),
            "method.name,metric,summary,n,mean,std,ci95,min,max,best,direction\n"
            "elr,test.acc,final,3,0.82,0.02,0.05,0.8,0.84,true,higher is better\n"
            "\"ce, plain\",test.acc,final,1,0.7,,,0.7,0.7,false,higher is better\n");
}

TEST(CompareFormat, Markdown) {
  EXPECT_EQ(format(sample(), "markdown"),
            "test.acc (final, higher is better), sweep 's'\n\n"
            "| method.name | n | mean | std | ci95 | min | max |\n"
            "| --- | ---: | ---: | ---: | ---: | ---: | ---: |\n"
            "| elr | 3 | **0.8200** | 0.0200 | 0.0500 | 0.8000 | 0.8400 |\n"
            "| ce, plain | 1 | 0.7000 | n/a | n/a | 0.7000 | 0.7000 |\n");
}

TEST(CompareFormat, Json) {
  const auto doc = nlohmann::json::parse(format(sample(), "json"));
  EXPECT_EQ(doc["sweep"], "s");
  EXPECT_EQ(doc["metric"], "test.acc");
  EXPECT_EQ(doc["summary"], "final");
  EXPECT_EQ(doc["direction"], "higher");
  EXPECT_EQ(doc["direction_source"], "declared");
  EXPECT_EQ(doc["by"], nlohmann::json::array({"method.name"}));
  ASSERT_EQ(doc["groups"].size(), 2u);
  const auto& g = doc["groups"][0];
  EXPECT_EQ(g["values"]["method.name"], "elr");
  EXPECT_EQ(g["n"], 3);
  EXPECT_DOUBLE_EQ(g["mean"].get<double>(), 0.82);
  EXPECT_DOUBLE_EQ(g["std"].get<double>(), 0.02);
  EXPECT_DOUBLE_EQ(g["ci95"].get<double>(), 0.05);
  EXPECT_EQ(g["best"], true);
  EXPECT_TRUE(doc["groups"][1]["std"].is_null());
  EXPECT_TRUE(doc["groups"][1]["ci95"].is_null());
  EXPECT_EQ(doc["groups"][1]["best"], false);
}

std::size_t display_width(const std::string& s) {
  std::size_t n = 0;
  for (unsigned char c : s) n += (c & 0xC0) != 0x80;
  return n;
}

TEST(CompareFormat, TableIsAlignedAndMarksTheBest) {
  const std::string t = format(sample(), "table");
  std::istringstream in(t);
  std::string line;
  std::vector<std::string> lines;
  while (std::getline(in, line)) lines.push_back(line);
  ASSERT_EQ(lines.size(), 5u) << t;  // heading, header, rule, two groups
  EXPECT_NE(lines[0].find("test.acc"), std::string::npos);
  EXPECT_NE(lines[0].find("higher is better"), std::string::npos);
  EXPECT_EQ(lines[1].rfind("method.name", 0), 0u);
  EXPECT_EQ(lines[2].find_first_not_of("- "), std::string::npos);
  const std::string marker = "  ◀ best";
  ASSERT_GE(lines[3].size(), marker.size());
  EXPECT_EQ(lines[3].substr(lines[3].size() - marker.size()), marker);
  EXPECT_EQ(lines[4].find("best"), std::string::npos);
  const std::string row1 = lines[3].substr(0, lines[3].size() - marker.size());
  EXPECT_NE(row1.find("0.8200 ± 0.0200"), std::string::npos) << row1;
  EXPECT_NE(row1.find("±0.0500"), std::string::npos) << row1;
  // Every line of the table proper has the same width (numbers right-aligned).
  for (const std::string& l : {lines[1], lines[2], lines[4]}) {
    EXPECT_EQ(display_width(l), display_width(row1)) << "\n" << t;
  }
  // The group column is left-aligned: "ce, plain" starts the last line.
  EXPECT_EQ(lines[4].rfind("ce, plain", 0), 0u);
}

TEST(CompareFormat, UnknownFormatListsTheChoices) {
  try {
    format(sample(), "xml");
    FAIL() << "expected an error";
  } catch (const std::invalid_argument& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("'xml'"), std::string::npos);
    for (const char* f : {"table", "markdown", "csv", "json"}) EXPECT_NE(msg.find(f), std::string::npos) << f;
  }
}

// --- helpers ----------------------------------------------------------------

TEST(CompareHelpers, StudentTQuantileMatchesTables) {
  // Two-sided 95% critical values from printed t tables (3 decimals).
  const std::vector<std::pair<int, double>> table = {
      {1, 12.706}, {2, 4.303},  {3, 3.182},  {4, 2.776},  {5, 2.571},  {6, 2.447},  {7, 2.365},
      {8, 2.306},  {9, 2.262},  {10, 2.228}, {15, 2.131}, {20, 2.086}, {25, 2.060}, {29, 2.045},
      {30, 2.042}, {40, 2.021}, {50, 2.009}, {60, 2.000}, {80, 1.990}, {100, 1.984}, {120, 1.980}};
  for (const auto& [dof, t] : table) EXPECT_NEAR(t_quantile_975(dof), t, 6e-4) << "dof " << dof;
  EXPECT_NEAR(t_quantile_975(1000000), 1.960, 5e-4);
  EXPECT_TRUE(std::isnan(t_quantile_975(0)));
  // Decreasing in the degrees of freedom, and continuous where the table
  // hands over to the series.
  for (int dof = 1; dof < 500; ++dof) EXPECT_GT(t_quantile_975(dof), t_quantile_975(dof + 1)) << dof;
  EXPECT_LT(t_quantile_975(30) - t_quantile_975(31), 0.004);
}

}  // namespace
}  // namespace reglab::query
