// Every sweep in experiments/ runs end to end in a smoke mode: the real data
// and plugins, one seed, one epoch, a few hundred samples.
#include <gtest/gtest.h>

#include <iostream>

#include "config/config.h"
#include "e2e/cli_harness.h"
#include "store/store.h"
#include "util/util.h"

using reglab::testing::CliSandbox;
namespace fs = std::filesystem;

namespace {

// The studies of one family ("tta_", "rlvr_"), or with "" every other one.
std::vector<fs::path> experiment_files(const std::string& family) {
  std::vector<fs::path> files;
  for (const auto& e : fs::directory_iterator(fs::path(REGLAB_PROJECT_SOURCE_DIR) / "experiments")) {
    const std::string name = e.path().filename().string();
    if (e.path().extension() != ".toml") continue;
    const bool tta = reglab::util::starts_with(name, "tta_"), rlvr = reglab::util::starts_with(name, "rlvr_");
    if (family.empty() ? !tta && !rlvr : reglab::util::starts_with(name, family)) files.push_back(e.path());
  }
  std::sort(files.begin(), files.end());
  return files;
}

// A JSON value written as a TOML inline value (for --set).
std::string toml_inline(const reglab::config::Json& j) {
  if (j.is_object()) {
    std::vector<std::string> parts;
    for (auto it = j.begin(); it != j.end(); ++it) parts.push_back(it.key() + " = " + toml_inline(it.value()));
    return "{ " + reglab::util::join(parts, ", ") + " }";
  }
  if (j.is_array()) {
    std::vector<std::string> parts;
    for (const auto& e : j) parts.push_back(toml_inline(e));
    return "[" + reglab::util::join(parts, ", ") + "]";
  }
  return j.dump();
}

}  // namespace

TEST(Experiments, EverySweepRunsInSmokeMode) {
  const std::vector<fs::path> files = experiment_files("");  // the tta and rlvr studies: below
  ASSERT_FALSE(files.empty());
  for (const fs::path& file : files) {
    SCOPED_TRACE(file.string());
    CliSandbox box;
    auto r = box.run({"run", file.string(), "--set", "sweep.seeds=[0]", "--set", "task.epochs=1", "--set",
                      "data.limit=300", "--set", "data.test_limit=300", "-j", "2"});
    ASSERT_EQ(r.code, 0) << r.err;
    EXPECT_NE(r.out.find("test.acc"), std::string::npos) << r.out;
    reglab::store::Store s(box.db());
    auto sweeps = s.list_sweeps();
    ASSERT_EQ(sweeps.size(), 1u);
    for (const auto& run : s.list_runs(sweeps[0].id)) {
      EXPECT_EQ(run.status, reglab::store::RunStatus::kCompleted) << run.error;
      EXPECT_EQ(s.metrics(run.id, "test.acc").size(), 1u);
    }
  }
}

// The tta studies start from a source stage (init.from = "stages/X.toml");
// smoke mode swaps it for stages/smoke/X.toml (the same model, one epoch on
// 500 images) and shortens the stream to two corruptions on 600 test images.
// Variants whose method plugin is not in this build are left out of the run
// (and named on stdout), so the studies are checked against every tta method
// the build has.
TEST(Experiments, EveryTtaStudyRunsInSmokeMode) {
  const std::vector<fs::path> files = experiment_files("tta_");
  ASSERT_EQ(files.size(), 4u);  // standard, continual (and its EATA margins), openset
  for (const fs::path& file : files) {
    SCOPED_TRACE(file.string());
    const reglab::config::Document doc = reglab::config::load_toml_file(file);
    const std::string from = doc.tree.at("init").at("from").get<std::string>();
    ASSERT_TRUE(reglab::util::starts_with(from, "stages/")) << from;
    const std::string smoke_stage = "stages/smoke/" + from.substr(std::string("stages/").size());
    ASSERT_TRUE(fs::exists(file.parent_path() / smoke_stage)) << smoke_stage;
    reglab::config::Json variants = reglab::config::Json::array();
    std::vector<std::string> missing;
    for (const auto& v : doc.tree.at("sweep").at("variants")) {
      const std::string name = v.at("method").at("name").get<std::string>();
      if (fs::exists(fs::path(REGLAB_BUILD_DIR) / "plugins" / ("libreglab_" + name + ".so")))
        variants.push_back(v);
      else
        missing.push_back(name);
    }
    if (!missing.empty())
      std::cout << file.filename().string() << ": not built, left out: " << reglab::util::join(missing, ", ") << "\n";
    ASSERT_GE(variants.size(), 2u) << "at least two methods to compare";
    CliSandbox box;
    auto r = box.run({"run", file.string(), "--set", "sweep.seeds=[0]", "--set", "sweep.variants=" + toml_inline(variants),
                      "--set", "init.from=\"" + smoke_stage + "\"", "--set", "data.test_limit=600", "--set",
                      "tta.held_out=100", "--set", "tta.batch_size=100", "--set",
                      "tta.corruptions=[\"gaussian_noise\", \"contrast\"]", "-j", "2"});
    ASSERT_EQ(r.code, 0) << r.out << r.err;
    EXPECT_NE(r.out.find("tta.err"), std::string::npos) << r.out;
    reglab::store::Store s(box.db());
    const auto sweep = s.find_sweep(doc.tree.at("sweep").at("name").get<std::string>());
    ASSERT_TRUE(sweep.has_value());
    const auto runs = s.list_runs(sweep->id);
    EXPECT_GE(runs.size(), variants.size());
    for (const auto& run : runs) {
      EXPECT_EQ(run.status, reglab::store::RunStatus::kCompleted) << run.error;
      EXPECT_EQ(s.metrics(run.id, "tta.err").size(), 1u);
      EXPECT_EQ(s.metrics(run.id, "tta.err.contrast").size(), 1u);
    }
  }
}

// The rlvr studies start from a warm-up stage (init.from = "stages/X.toml");
// smoke mode swaps it for stages/smoke/X.toml (the same policy, one epoch on
// 200 worked examples) and runs two RL steps of two prompts, evaluated on a
// handful of prompts. Every method of the study runs.
TEST(Experiments, EveryRlvrStudyRunsInSmokeMode) {
  const std::vector<fs::path> files = experiment_files("rlvr_");
  ASSERT_EQ(files.size(), 1u);  // label_free
  for (const fs::path& file : files) {
    SCOPED_TRACE(file.string());
    const reglab::config::Document doc = reglab::config::load_toml_file(file);
    const std::string from = doc.tree.at("init").at("from").get<std::string>();
    ASSERT_TRUE(reglab::util::starts_with(from, "stages/")) << from;
    const std::string smoke_stage = "stages/smoke/" + from.substr(std::string("stages/").size());
    ASSERT_TRUE(fs::exists(file.parent_path() / smoke_stage)) << smoke_stage;
    CliSandbox box;
    auto r = box.run({"run", file.string(), "--set", "sweep.seeds=[0]", "--set", "init.from=\"" + smoke_stage + "\"",
                      "--set", "rlvr.steps=2", "--set", "rlvr.prompts=2", "--set", "rlvr.eval_every=2", "--set",
                      "rlvr.eval_samples=4", "--set", "arith.eval_prompts=10", "-j", "2"});
    ASSERT_EQ(r.code, 0) << r.out << r.err;
    EXPECT_NE(r.out.find("eval.id.pass_at_1"), std::string::npos) << r.out;
    reglab::store::Store s(box.db());
    const auto sweep = s.find_sweep(doc.tree.at("sweep").at("name").get<std::string>());
    ASSERT_TRUE(sweep.has_value());
    const auto runs = s.list_runs(sweep->id);
    EXPECT_EQ(runs.size(), doc.tree.at("sweep").at("variants").size());
    for (const auto& run : runs) {
      EXPECT_EQ(run.status, reglab::store::RunStatus::kCompleted) << run.error;
      EXPECT_EQ(s.metrics(run.id, "eval.id.pass_at_1").size(), 2u);
      EXPECT_EQ(s.metrics(run.id, "rlvr.reward").size(), 2u);
    }
  }
}
