// Stages (init.from): a trial that starts from another configuration's final
// model, produced once, reused across sweeps, rebuilt when its checkpoint is
// missing or corrupt. The real binary, real plugins, a real SQLite file.
#include <gtest/gtest.h>

#include <fstream>

#include "e2e/cli_harness.h"
#include "store/store.h"

namespace reglab::testing {
namespace {

constexpr const char* kData =
    "[data]\ndataset = \"synthetic\"\nval_fraction = 0.2\n"
    "[data.synthetic]\nsamples = 600\ntest_samples = 200\nfeatures = 10\nclasses = 3\n"
    "[model]\narch = \"mlp\"\nhidden = [16]\n";

std::string source_stage(int epochs) {
  return "seed = 0\n[method]\nname = \"ce\"\n[task]\nepochs = " + std::to_string(epochs) +
         "\nbatch_size = 64\n[optim]\nname = \"sgd\"\nlr = 0.1\n" + kData;
}

// Trials that start from source.toml. With lr = 0 a trial does not move its
// weights, so its accuracy is the stage's own.
std::string fine_tune(const std::string& name, const std::string& lr, const std::string& seeds = "[0]") {
  return "[sweep]\nname = \"" + name + "\"\nseeds = " + seeds +
         "\n[init]\nfrom = \"source.toml\"\n[method]\nname = \"ce\"\n"
         "[task]\nepochs = 1\nbatch_size = 64\n[optim]\nname = \"sgd\"\nlr = " + lr + "\n" + kData;
}

std::vector<store::RunRow> runs_of(const fs::path& db, const std::string& sweep) {
  store::Store s(db);
  const auto sw = s.find_sweep(sweep);
  return sw ? s.list_runs(sw->id) : std::vector<store::RunRow>{};
}

double final_acc(const fs::path& db, std::int64_t run) {
  store::Store s(db);
  return s.summary(run, "test.acc", "final").value_or(-1);
}

TEST(Stages, ProducedOnceReusedAcrossSweepsAndTheTrialStartsFromItsWeights) {
  CliSandbox box;
  box.write("source.toml", source_stage(4));
  const auto a = box.write("a.toml", fine_tune("ft_a", "0.0", "[0, 1]"));
  const auto b = box.write("b.toml", fine_tune("ft_b", "0.0"));
  const auto ra = box.run({"run", a.string(), "-j", "2", "--no-compare"});
  ASSERT_EQ(ra.code, 0) << ra.err;
  const auto rb = box.run({"run", b.string(), "--no-compare"});
  ASSERT_EQ(rb.code, 0) << rb.err;

  const auto stages = runs_of(box.db(), "_stages");
  ASSERT_EQ(stages.size(), 1u);
  EXPECT_EQ(stages[0].status, store::RunStatus::kCompleted);
  EXPECT_EQ(stages[0].attempts, 1) << "the second sweep reuses the stage";
  EXPECT_TRUE(fs::exists(box.dir() / "results" / "runs" / "_stages" / stages[0].key / "checkpoint.pt"));
  const double stage_acc = final_acc(box.db(), stages[0].id);
  ASSERT_GT(stage_acc, 0.5) << "the stage learned something";

  store::Store s(box.db());
  for (const auto* sweep : {"ft_a", "ft_b"}) {
    for (const auto& r : runs_of(box.db(), sweep)) {
      EXPECT_EQ(r.status, store::RunStatus::kCompleted) << r.error;
      bool has_stage_param = false;
      for (const auto& p : s.params(r.id))
        if (p.key == "init.stage") has_stage_param = p.value == stages[0].key;
      EXPECT_TRUE(has_stage_param) << sweep << " " << r.label;
    }
  }
  // Seed 0 sees the stage's own data: with lr = 0 it must score exactly the
  // stage's final test accuracy (a model trained from scratch for one epoch
  // at lr 0 stays at its random initialisation).
  for (const auto& r : runs_of(box.db(), "ft_b")) EXPECT_DOUBLE_EQ(final_acc(box.db(), r.id), stage_acc);
}

TEST(Stages, AMissingOrCorruptCheckpointIsRebuiltNeverUsed) {
  CliSandbox box;
  box.write("source.toml", source_stage(3));
  const auto a = box.write("a.toml", fine_tune("ft_a", "0.0"));
  ASSERT_EQ(box.run({"run", a.string(), "--no-compare"}).code, 0);
  const auto stage = runs_of(box.db(), "_stages").at(0);
  const fs::path ckpt = box.dir() / "results" / "runs" / "_stages" / stage.key / "checkpoint.pt";
  const double stage_acc = final_acc(box.db(), stage.id);

  // Corrupt: one byte appended. A new sweep on the same stage rebuilds it.
  std::ofstream(ckpt, std::ios::app) << 'x';
  const auto b = box.write("b.toml", fine_tune("ft_b", "0.0"));
  const auto rb = box.run({"run", b.string(), "--no-compare"});
  ASSERT_EQ(rb.code, 0) << rb.err;
  EXPECT_NE(rb.err.find("does not match its recorded checksum"), std::string::npos) << rb.err;
  EXPECT_EQ(runs_of(box.db(), "_stages").at(0).attempts, 2);
  EXPECT_DOUBLE_EQ(final_acc(box.db(), runs_of(box.db(), "ft_b").at(0).id), stage_acc)
      << "the rebuilt stage is the same deterministic model";

  // Missing: deleted. Rebuilt again.
  fs::remove(ckpt);
  const auto c = box.write("c.toml", fine_tune("ft_c", "0.0"));
  const auto rc = box.run({"run", c.string(), "--no-compare"});
  ASSERT_EQ(rc.code, 0) << rc.err;
  EXPECT_NE(rc.err.find("is missing"), std::string::npos) << rc.err;
  EXPECT_EQ(runs_of(box.db(), "_stages").at(0).attempts, 3);
  EXPECT_TRUE(fs::exists(ckpt));
}

TEST(Stages, ChangingTheStageChangesTheTrialKeys) {
  CliSandbox box;
  box.write("source.toml", source_stage(2));
  const auto a = box.write("a.toml", fine_tune("ft_a", "0.01"));
  ASSERT_EQ(box.run({"run", a.string(), "--no-compare"}).code, 0);
  const std::string first_key = runs_of(box.db(), "ft_a").at(0).key;
  box.write("source.toml", source_stage(3));
  const auto again = box.run({"run", a.string(), "--no-compare"});
  ASSERT_EQ(again.code, 0) << again.err;
  const auto runs = runs_of(box.db(), "ft_a");
  ASSERT_EQ(runs.size(), 2u) << "a new stage makes a new trial, not a skipped one";
  EXPECT_NE(runs[0].key, runs[1].key);
  EXPECT_EQ(runs_of(box.db(), "_stages").size(), 2u);
  EXPECT_EQ(first_key, runs[0].key);
}

TEST(Stages, BadStagesAreRejectedBeforeAnythingRuns) {
  CliSandbox box;
  const auto missing = box.write("m.toml", fine_tune("ft_m", "0.1"));
  auto r = box.run({"run", missing.string()});
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("m.toml:"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("init.from"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("does not exist"), std::string::npos) << r.err;

  box.write("source.toml", "[sweep]\nseeds = [0, 1]\n" + source_stage(2));
  r = box.run({"run", missing.string()});
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("has a [sweep] table"), std::string::npos) << r.err;

  box.write("source.toml", source_stage(2) + "[task.extra]\n");
  r = box.run({"run", missing.string()});
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("source.toml:"), std::string::npos) << "the stage's own errors name its file: " << r.err;

  box.write("source.toml", source_stage(2));
  std::string other_model = fine_tune("ft_m", "0.1");
  other_model.replace(other_model.find("hidden = [16]"), 13, "hidden = [32]");
  const auto mismatch = box.write("x.toml", other_model);
  r = box.run({"run", mismatch.string()});
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("model"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("must agree"), std::string::npos) << r.err;

  const auto reserved = box.write("r.toml", "[sweep]\nname = \"_mine\"\n[method]\nname = \"ce\"\n" + std::string(kData));
  r = box.run({"run", reserved.string()});
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("reserved"), std::string::npos) << r.err;
  EXPECT_FALSE(fs::exists(box.db())) << "nothing may be stored for an invalid sweep";
}

}  // namespace
}  // namespace reglab::testing
