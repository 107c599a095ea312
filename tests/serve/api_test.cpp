// The dashboard's JSON API against a real store (tests/serve/serve_fixture.h):
// every expected number below follows from the fixture's definition by hand.
#include "serve/api.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <cmath>

#include "serve/serve_fixture.h"
#include "store/store.h"
#include "store/temp_db.h"

namespace reglab::serve {
namespace {

using nlohmann::json;
using testing_support::TempDir;

class ApiTest : public ::testing::Test {
 protected:
  void SetUp() override {
    testing_support::write_demo_store(dir_.file("r.db"), dir_.file("logs"));
    store_ = std::make_unique<store::Store>(dir_.file("r.db"));
  }
  json get(const std::string& path, std::vector<std::pair<std::string, std::string>> params = {},
           int expected_status = 200) {
    const ApiResponse r = handle_api(*store_, ApiRequest{path, std::move(params)});
    EXPECT_EQ(r.status, expected_status) << path << ": " << r.body;
    return json::parse(r.body);
  }
  std::vector<std::int64_t> ids(const json& page) {
    std::vector<std::int64_t> out;
    for (const auto& r : page["runs"]) out.push_back(r["id"].get<std::int64_t>());
    return out;
  }
  TempDir dir_;
  std::unique_ptr<store::Store> store_;
};

TEST_F(ApiTest, SweepsCountRunsByStatus) {
  const json j = get("/api/sweeps");
  ASSERT_EQ(j["sweeps"].size(), 1u);
  EXPECT_EQ(j["sweeps"][0]["name"], "demo");
  EXPECT_EQ(j["sweeps"][0]["runs"], 8);
  EXPECT_EQ(j["sweeps"][0]["status"]["completed"], 6);
  EXPECT_EQ(j["sweeps"][0]["status"]["failed"], 1);
  EXPECT_EQ(j["sweeps"][0]["status"]["running"], 1);
}

TEST_F(ApiTest, SweepListsMetricsAndTheKeysThatVary) {
  const json j = get("/api/sweep", {{"name", "demo"}});
  EXPECT_EQ(j["metrics"], json::array({"test.acc", "train.loss"}));
  // data.note is set on one run only; method.name varies; optim.lr does not; seed is left out.
  EXPECT_EQ(j["keys"], json::array({"data.note", "method.name"}));
  EXPECT_EQ(j["toml"].get<std::string>().find("[sweep]"), 0u);
  get("/api/sweep", {{"name", "nope"}}, 404);
  get("/api/sweep", {}, 400);
}

TEST_F(ApiTest, RunsFilterByStatusParameterAndText) {
  EXPECT_EQ(get("/api/runs", {{"sweep", "demo"}})["total"], 8);
  EXPECT_EQ(ids(get("/api/runs", {{"sweep", "demo"}, {"status", "completed"}})),
            (std::vector<std::int64_t>{1, 2, 3, 4, 5, 6}));
  EXPECT_EQ(ids(get("/api/runs", {{"sweep", "demo"}, {"where", "method.name=elr"}})),
            (std::vector<std::int64_t>{4, 5, 6, 8}));
  EXPECT_EQ(ids(get("/api/runs", {{"sweep", "demo"}, {"where", "method.name=elr"}, {"where", "seed=3"}})),
            (std::vector<std::int64_t>{8}));
  EXPECT_EQ(ids(get("/api/runs", {{"sweep", "demo"}, {"q", "ELR SEED"}})), (std::vector<std::int64_t>{4, 5, 6, 8}));
  EXPECT_EQ(ids(get("/api/runs", {{"sweep", "demo"}, {"q", "onerror"}})), (std::vector<std::int64_t>{7}));
}

TEST_F(ApiTest, RunsSortByMetricWithMissingValuesLast) {
  const json page = get("/api/runs", {{"sweep", "demo"}, {"metric", "test.acc"}, {"sort", "metric"}, {"order", "desc"}});
  EXPECT_EQ(ids(page), (std::vector<std::int64_t>{6, 5, 4, 3, 2, 1, 8, 7}));
  EXPECT_NEAR(page["runs"][0]["metric"].get<double>(), 0.60 + 0.19 + 0.002, 1e-12);
  EXPECT_TRUE(page["runs"][7]["metric"].is_null());
  const json asc = get("/api/runs", {{"sweep", "demo"}, {"metric", "test.acc"}, {"sort", "metric"}});
  EXPECT_EQ(ids(asc), (std::vector<std::int64_t>{1, 2, 3, 4, 5, 6, 7, 8}));
}

TEST_F(ApiTest, RunsSortByParameterAndPage) {
  const json page = get("/api/runs", {{"sweep", "demo"}, {"sort", "param:seed"}, {"order", "desc"}, {"limit", "3"},
                                      {"columns", "seed"}, {"columns", "method.name"}});
  EXPECT_EQ(page["total"], 8);
  EXPECT_EQ(ids(page), (std::vector<std::int64_t>{8, 7, 6}));
  EXPECT_EQ(page["runs"][0]["params"]["seed"], "3");
  EXPECT_EQ(page["runs"][1]["params"]["method.name"], "ce");
  EXPECT_EQ(ids(get("/api/runs", {{"sweep", "demo"}, {"limit", "3"}, {"offset", "6"}})),
            (std::vector<std::int64_t>{7, 8}));
}

TEST_F(ApiTest, RunsRejectBadParametersNamingThem) {
  auto error = [&](std::vector<std::pair<std::string, std::string>> p, int status = 400) {
    p.insert(p.begin(), {"sweep", "demo"});
    return get("/api/runs", p, status)["error"].get<std::string>();
  };
  EXPECT_NE(error({{"limit", "0"}}).find("'limit'"), std::string::npos);
  EXPECT_NE(error({{"offset", "x"}}).find("'offset'"), std::string::npos);
  EXPECT_NE(error({{"sort", "colour"}}).find("'sort'"), std::string::npos);
  EXPECT_NE(error({{"order", "up"}}).find("'order'"), std::string::npos);
  EXPECT_NE(error({{"status", "done"}}).find("'status'"), std::string::npos);
  EXPECT_NE(error({{"where", "method.name"}}).find("'where'"), std::string::npos);
  EXPECT_NE(error({{"sort", "metric"}}).find("'metric'"), std::string::npos);
  EXPECT_NE(get("/api/runs", {{"sweep", "other"}}, 404)["error"].get<std::string>().find("other"), std::string::npos);
  EXPECT_NE(get("/api/nothing", {}, 404)["error"].get<std::string>().find("/api/nothing"), std::string::npos);
}

TEST_F(ApiTest, RunDetailCarriesStringsExactlyAndTheLogTail) {
  const json hostile = get("/api/run", {{"id", "7"}});
  EXPECT_EQ(hostile["label"], testing_support::kHostileLabel);
  EXPECT_EQ(hostile["error"], testing_support::kHostileError);
  EXPECT_EQ(hostile["config"]["data"]["note"], testing_support::kHostileValue);
  EXPECT_EQ(hostile["status"], "failed");

  const json run = get("/api/run", {{"id", "1"}});
  EXPECT_EQ(run["log_tail"], "epoch 0 starting\nepoch 19 done: test.acc fine\n");
  EXPECT_EQ(run["metrics"], json::array({"test.acc", "train.loss"}));
  ASSERT_EQ(run["artifacts"].size(), 1u);
  EXPECT_EQ(run["artifacts"][0]["kind"], "checkpoint");
  bool found = false;
  for (const auto& s : run["summaries"]) {
    if (s["key"] == "test.acc" && s["kind"] == "final") {
      EXPECT_NEAR(s["value"].get<double>(), 0.69, 1e-12);
      EXPECT_EQ(s["step"], 19);
      found = true;
    }
  }
  EXPECT_TRUE(found);
  // 30 bytes reach back past the first line's newline: the cut line is dropped.
  EXPECT_EQ(get("/api/run", {{"id", "1"}, {"log_bytes", "30"}})["log_tail"], "epoch 19 done: test.acc fine\n");
  get("/api/run", {{"id", "99"}}, 404);
  get("/api/run", {{"id", "-1"}}, 400);
}

TEST_F(ApiTest, SeriesAreThinnedToMaxPointsKeepingBothEnds) {
  const json j = get("/api/series", {{"ids", "1,8"}, {"key", "test.acc"}, {"max_points", "5"}});
  ASSERT_EQ(j["series"].size(), 2u);
  EXPECT_EQ(j["series"][0]["points"], 20);
  // round(j·19/4) for j = 0..4.
  EXPECT_EQ(j["series"][0]["steps"], json::array({0, 5, 10, 14, 19}));
  EXPECT_NEAR(j["series"][0]["values"][4].get<double>(), 0.69, 1e-12);
  EXPECT_EQ(j["series"][1]["steps"], json::array({0, 1, 2, 3, 4}));
  EXPECT_EQ(j["series"][1]["status"], "running");
  get("/api/series", {{"ids", "1,x"}, {"key", "test.acc"}}, 400);
  get("/api/series", {{"ids", "1,99"}, {"key", "test.acc"}}, 404);
  get("/api/series", {{"key", "test.acc"}}, 400);
}

TEST_F(ApiTest, CurvesAreGroupMeansWithTheirBand) {
  const json j = get("/api/curves", {{"sweep", "demo"}, {"metric", "test.acc"}, {"by", "method.name"}, {"band", "std"}});
  ASSERT_EQ(j["groups"].size(), 2u);
  const json& ce = j["groups"][0];
  EXPECT_EQ(ce["label"], "ce");
  EXPECT_EQ(ce["runs"], 3);  // the failed seed-3 run is not in it
  ASSERT_EQ(ce["steps"].size(), 20u);
  // Epoch 0: 0.500, 0.501, 0.502 -> mean 0.501, sample std 0.001.
  EXPECT_NEAR(ce["mean"][0].get<double>(), 0.501, 1e-12);
  EXPECT_NEAR(ce["hi"][0].get<double>() - ce["mean"][0].get<double>(), 0.001, 1e-9);
  EXPECT_NEAR(ce["mean"][0].get<double>() - ce["lo"][0].get<double>(), 0.001, 1e-9);
  const json ci = get("/api/curves", {{"sweep", "demo"}, {"metric", "test.acc"}, {"band", "ci"}, {"max_points", "2"}});
  // t(0.975, 2 dof) = 4.302653: half-width 4.302653 · 0.001 / sqrt(3).
  EXPECT_NEAR(ci["groups"][1]["hi"][0].get<double>() - ci["groups"][1]["mean"][0].get<double>(),
              4.302653 * 0.001 / std::sqrt(3.0), 1e-6);
  EXPECT_EQ(ci["groups"][1]["steps"], json::array({0, 19}));
  get("/api/curves", {{"sweep", "demo"}, {"metric", "test.acc"}, {"band", "iqr"}}, 400);
  get("/api/curves", {{"sweep", "demo"}, {"metric", "no.such"}}, 404);
}

TEST_F(ApiTest, CompareMatchesTheCommandLineTable) {
  const json j = get("/api/compare", {{"sweep", "demo"}, {"metric", "test.acc"}, {"by", "method.name"}});
  ASSERT_EQ(j["groups"].size(), 2u);
  EXPECT_EQ(j["groups"][0]["values"]["method.name"], "elr");
  EXPECT_TRUE(j["groups"][0]["best"].get<bool>());
  EXPECT_EQ(j["groups"][0]["n"], 3);
  EXPECT_NEAR(j["groups"][0]["mean"].get<double>(), 0.791, 1e-12);
  EXPECT_NEAR(j["groups"][0]["ci95"].get<double>(), 4.302653 * 0.001 / std::sqrt(3.0), 1e-6);
  EXPECT_EQ(j["direction"], "higher");
  EXPECT_EQ(j["direction_source"], "declared");
  get("/api/compare", {{"sweep", "demo"}, {"metric", "test.acc"}, {"summary", "last"}}, 400);
}

// The dashboard's ranking choice: direction=lower overrides the declared
// direction (ce, the lower mean, becomes best); an unknown word is a 400.
TEST_F(ApiTest, CompareDirectionParameterOverridesTheDeclaration) {
  const json j = get("/api/compare", {{"sweep", "demo"}, {"metric", "test.acc"}, {"direction", "lower"}});
  EXPECT_EQ(j["direction"], "lower");
  EXPECT_EQ(j["direction_source"], "override");
  ASSERT_EQ(j["groups"].size(), 2u);
  EXPECT_EQ(j["groups"][0]["values"]["method.name"], "ce");
  EXPECT_TRUE(j["groups"][0]["best"].get<bool>());
  get("/api/compare", {{"sweep", "demo"}, {"metric", "test.acc"}, {"direction", "sideways"}}, 400);
}

TEST_F(ApiTest, StateTokenChangesWhenARunFinishes) {
  const json before = get("/api/state", {{"sweep", "demo"}});
  EXPECT_TRUE(before["live"].get<bool>());
  EXPECT_EQ(get("/api/state", {{"sweep", "demo"}})["token"], before["token"]);
  store_->mark_finished(8, store::RunStatus::kCompleted, "");
  const json after = get("/api/state", {{"sweep", "demo"}});
  EXPECT_FALSE(after["live"].get<bool>());
  EXPECT_NE(after["token"], before["token"]);
}

TEST(ThinIndices, KeepsEverythingUnderTheLimitAndBothEndsOverIt) {
  EXPECT_EQ(thin_indices(3, 10), (std::vector<std::size_t>{0, 1, 2}));
  EXPECT_EQ(thin_indices(1000, 2), (std::vector<std::size_t>{0, 999}));
  EXPECT_EQ(thin_indices(11, 6), (std::vector<std::size_t>{0, 2, 4, 6, 8, 10}));
  EXPECT_TRUE(thin_indices(0, 5).empty());
}

}  // namespace
}  // namespace reglab::serve
