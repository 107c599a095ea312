// The tta paradigm from the command line: a source stage trained on 8 of the
// 10 Fashion-MNIST classes, then test-time adaptation with `source` and
// `bn_adapt` on contrast-corrupted test images, closed and open set; and the
// bad inputs validation refuses before anything runs. Real data, real
// plugins, a real SQLite file; sized to run in seconds.
#include <gtest/gtest.h>

#include <cmath>
#include <map>

#include "e2e/cli_harness.h"
#include "store/store.h"

namespace reglab::testing {
namespace {

constexpr const char* kModel = "[model]\narch = \"cnn\"\nchannels = [8, 16]\nhidden = [32]\n";
constexpr const char* kClasses = "classes = [0, 1, 2, 3, 4, 5, 6, 7]\n";

std::string stage() {
  return std::string("[task]\nepochs = 2\nbatch_size = 64\n[optim]\nname = \"sgd\"\nlr = 0.05\n[method]\nname = \"ce\"\n") +
         "[data]\ndataset = \"fashion-mnist\"\nlimit = 2000\ntest_limit = 500\n" + kClasses + kModel;
}

std::string tta_sweep(const std::string& tta, const std::string& extra_data = "") {
  return std::string("[sweep]\nname = \"adapt\"\nseeds = [0]\n") +
         "[[sweep.variants]]\nmethod = { name = \"source\" }\n[[sweep.variants]]\nmethod = { name = \"bn_adapt\" }\n" +
         "[init]\nfrom = \"stage.toml\"\n[task]\nparadigm = \"tta\"\n" +
         "[data]\ndataset = \"fashion-mnist\"\ntest_limit = 1000\n" + kClasses + extra_data + kModel + "[tta]\n" + tta;
}

double metric(store::Store& s, std::int64_t run, const std::string& key) {
  const auto points = s.metrics(run, key);
  return points.size() == 1 ? points[0].value : std::nan("");
}

TEST(Tta, SourceAndBnAdaptOnAClosedAndAnOpenStream) {
  CliSandbox box;
  box.write("stage.toml", stage());
  const auto sweep = box.write(
      "adapt.toml", tta_sweep("protocol = \"standard\"\ncorruptions = [\"contrast\"]\nseverity = 5\nheld_out = 200\n"
                              "batch_size = 100\n[sweep.grid]\n\"tta.unknown_ratio\" = [0.0, 0.2]\n"));
  const auto r = box.run({"run", sweep.string(), "-j", "2", "--no-compare"});
  ASSERT_EQ(r.code, 0) << r.out << r.err;

  store::Store s(box.db());
  const auto stages = s.list_runs(s.find_sweep("_stages")->id);
  ASSERT_EQ(stages.size(), 1u);
  const auto runs = s.list_runs(s.find_sweep("adapt")->id);
  ASSERT_EQ(runs.size(), 4u);
  std::map<std::pair<std::string, bool>, std::int64_t> by;  // (method, open) -> run id
  for (const auto& run : runs) {
    ASSERT_EQ(run.status, store::RunStatus::kCompleted) << run.error;
    std::string method;
    bool open = false;
    for (const auto& p : s.params(run.id)) {
      if (p.key == "method.name") method = p.value;
      if (p.key == "tta.unknown_ratio") open = p.numeric.value_or(0) > 0;
    }
    by[{method, open}] = run.id;
    const double err = metric(s, run.id, "tta.err.contrast");
    EXPECT_GT(err, 0.0) << method;
    EXPECT_LT(err, 1.0) << method;
    EXPECT_DOUBLE_EQ(metric(s, run.id, "tta.err"), err) << "one corruption: the stream's error is its error";
    EXPECT_DOUBLE_EQ(metric(s, run.id, "tta.used_frac"), 0.0) << method << " updates nothing";
    EXPECT_FALSE(std::isnan(metric(s, run.id, "tta.clean_err"))) << method;
    EXPECT_EQ(s.summary(run.id, "tta.err", "final").has_value(), true);
    EXPECT_EQ(s.metrics(run.id, "tta.auroc").size(), open ? 1u : 0u) << method;
    if (open) {
      const double auroc = metric(s, run.id, "tta.auroc");
      EXPECT_GT(auroc, 0.0);
      EXPECT_LT(auroc, 1.0);
      EXPECT_DOUBLE_EQ(metric(s, run.id, "tta.known_acc"), 1.0 - err);
    }
    const std::string log = CliSandbox::slurp(run.log_path);
    EXPECT_NE(log.find("corruption 1/1 contrast s5: err"), std::string::npos) << log;
  }
  ASSERT_EQ(by.size(), 4u);
  for (bool open : {false, true}) {
    const std::int64_t source = by[{"source", open}], bn = by[{"bn_adapt", open}];
    // Nothing adapts in `source`: its clean error is the stage model's.
    EXPECT_DOUBLE_EQ(metric(s, source, "tta.clean_err"), metric(s, source, "tta.clean_err_source"));
    EXPECT_DOUBLE_EQ(metric(s, bn, "tta.clean_err_source"), metric(s, source, "tta.clean_err_source"));
    // Severity-5 contrast shrinks every image towards its mean: batch
    // statistics undo much of it.
    EXPECT_LT(metric(s, bn, "tta.err.contrast"), metric(s, source, "tta.err.contrast") - 0.05) << "open " << open;
  }
}

TEST(Tta, BadInputIsRejectedBeforeAnythingRuns) {
  CliSandbox box;
  box.write("stage.toml", stage());
  struct Case {
    std::string name, tta, extra_data, expect1, expect2;
  };
  const std::vector<Case> cases = {
      {"severity", "severity = 6\n", "", "key 'tta.severity'", "expected a value in [1, 5], got 6"},
      {"corruption", "corruptions = [\"fogg\"]\n", "", "key 'tta.corruptions'", "expected one of"},
      {"protocol", "protocol = \"episodic\"\n", "", "key 'tta.protocol'", "\"continual\""},
      {"unknowns", "unknown_ratio = 0.5\n", "", "key 'tta.unknown_ratio'", "data.classes"},
      {"held_out", "held_out = 1000\n", "", "key 'tta.held_out'", "the stream would be empty"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    std::string text = tta_sweep(c.tta, c.extra_data);
    if (c.name == "unknowns") {
      // Every class known: nothing is left to be unknown.
      text.replace(text.find(kClasses), std::string(kClasses).size(), "");
    }
    const auto file = box.write(c.name + ".toml", text);
    const auto r = box.run({"run", file.string(), "--dry-run"});
    EXPECT_NE(r.code, 0);
    EXPECT_NE(r.err.find(c.name + ".toml:"), std::string::npos) << r.err;
    EXPECT_NE(r.err.find(c.expect1), std::string::npos) << r.err;
    EXPECT_NE(r.err.find(c.expect2), std::string::npos) << r.err;
  }
  // Without init.from there is no model to adapt.
  std::string no_stage = tta_sweep("severity = 3\n");
  no_stage.replace(no_stage.find("[init]\nfrom = \"stage.toml\"\n"), std::string("[init]\nfrom = \"stage.toml\"\n").size(),
                   "");
  const auto file = box.write("no_stage.toml", no_stage);
  const auto r = box.run({"run", file.string(), "--dry-run"});
  EXPECT_NE(r.code, 0);
  EXPECT_NE(r.err.find("key 'init.from': a tta trial adapts a trained source model"), std::string::npos) << r.err;
  // A class the dataset does not have.
  const auto bad_classes = box.write("classes.toml", [] {
    std::string t = tta_sweep("severity = 3\n");
    t.replace(t.find(kClasses), std::string(kClasses).size(), "classes = [0, 10]\n");
    return t;
  }());
  const auto rc = box.run({"run", bad_classes.string(), "--dry-run"});
  EXPECT_NE(rc.code, 0);
  EXPECT_NE(rc.err.find("classes.toml:"), std::string::npos) << rc.err;
  EXPECT_NE(rc.err.find("class 10 is out of range"), std::string::npos) << rc.err;
  EXPECT_FALSE(fs::exists(box.db())) << "nothing is stored for an invalid sweep";
}

}  // namespace
}  // namespace reglab::testing
