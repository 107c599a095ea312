// The sft and rlvr paradigms from the command line: a tiny warm-up policy
// trained as a stage, then grpo, ttrl and evol_rl from it; and the bad
// inputs validation refuses before anything runs. Real plugins, a real
// SQLite file; sized to run in seconds.
#include <gtest/gtest.h>

#include <cmath>
#include <map>

#include "e2e/cli_harness.h"
#include "store/store.h"

namespace reglab::testing {
namespace {

constexpr const char* kPolicy = "[policy]\nd_model = 32\ndepth = 1\nheads = 2\ncontext = 64\n";
constexpr const char* kArith = "[arith]\nmax_digits = 2\nood_min_digits = 3\nood_max_digits = 3\neval_prompts = 6\n";

std::string stage() {
  return std::string("[task]\nparadigm = \"sft\"\nepochs = 1\nbatch_size = 50\n") +
         "[optim]\nname = \"adamw\"\nlr = 0.003\n[method]\nname = \"ce\"\n[sft]\nexamples = 300\n" + kPolicy + kArith;
}

std::string rlvr_sweep(const std::string& rlvr, const std::string& policy = kPolicy) {
  return std::string("[sweep]\nname = \"rl\"\nseeds = [0]\n") +
         "[[sweep.variants]]\nmethod = { name = \"grpo\" }\n[[sweep.variants]]\nmethod = { name = \"ttrl\" }\n"
         "[[sweep.variants]]\nmethod = { name = \"evol_rl\" }\n"
         "[init]\nfrom = \"stage.toml\"\n[task]\nparadigm = \"rlvr\"\n[optim]\nname = \"adamw\"\nlr = 0.0001\n" +
         policy + kArith + "[rlvr]\n" + rlvr;
}

std::vector<double> series(store::Store& s, std::int64_t run, const std::string& key) {
  std::vector<double> out;
  for (const auto& p : s.metrics(run, key)) out.push_back(p.value);
  return out;
}

TEST(Rlvr, WarmUpStageThenThreeMethodsFromTheSameStart) {
  CliSandbox box;
  box.write("stage.toml", stage());
  const auto sweep = box.write("rl.toml", rlvr_sweep("steps = 2\nprompts = 2\nvotes = 4\ntrained = 2\neval_every = 1\n"
                                                     "eval_samples = 4\nembedding = \"char_ngram\"\n"));
  const auto r = box.run({"run", sweep.string(), "-j", "2", "--no-compare"});
  ASSERT_EQ(r.code, 0) << r.out << r.err;

  store::Store s(box.db());
  const auto stages = s.list_runs(s.find_sweep("_stages")->id);
  ASSERT_EQ(stages.size(), 1u);
  ASSERT_EQ(stages[0].status, store::RunStatus::kCompleted) << stages[0].error;
  const auto sft_loss = series(s, stages[0].id, "sft.loss");
  ASSERT_EQ(sft_loss.size(), 1u);
  EXPECT_GT(sft_loss[0], 0.0);
  EXPECT_LT(sft_loss[0], std::log(20.0) + 0.5) << "next-token loss of a 20-token vocabulary after training";
  ASSERT_EQ(series(s, stages[0].id, "eval.ood.greedy_acc").size(), 1u);

  const auto runs = s.list_runs(s.find_sweep("rl")->id);
  ASSERT_EQ(runs.size(), 3u);
  std::map<std::string, std::int64_t> by;
  for (const auto& run : runs) {
    ASSERT_EQ(run.status, store::RunStatus::kCompleted) << run.error;
    for (const auto& p : s.params(run.id))
      if (p.key == "method.name") by[p.value] = run.id;
  }
  ASSERT_EQ(by.size(), 3u);
  std::vector<double> start_pass1;
  for (const auto& [method, id] : by) {
    SCOPED_TRACE(method);
    const auto pass1 = series(s, id, "eval.id.pass_at_1");
    const auto pass4 = series(s, id, "eval.id.pass_at_4");
    ASSERT_EQ(pass1.size(), 3u) << "evaluated at steps 0, 1 and 2";
    ASSERT_EQ(pass4.size(), 3u);
    for (std::size_t i = 0; i < 3; ++i) {
      EXPECT_GE(pass1[i], 0.0);
      EXPECT_LE(pass4[i], 1.0);
      EXPECT_GE(pass4[i], pass1[i]) << "pass@k cannot fall as k grows";
    }
    start_pass1.push_back(pass1[0]);
    ASSERT_EQ(series(s, id, "eval.ood.maj_at_4").size(), 3u);
    ASSERT_EQ(series(s, id, "rlvr.reward").size(), 2u);
    // The first mini-batch of a step sees the policy that sampled it, and at
    // step 1 that is the reference itself: ratio 1 and KL 0, to rounding.
    const auto kl = series(s, id, "rlvr.kl");
    ASSERT_EQ(kl.size(), 2u);
    EXPECT_NEAR(kl[0], 0.0, 1e-6);
    const auto clip = series(s, id, "rlvr.clip_frac");
    ASSERT_EQ(clip.size(), 2u);
    EXPECT_DOUBLE_EQ(clip[0], 0.0);
    const auto invalid = series(s, id, "rlvr.invalid_frac");
    ASSERT_EQ(invalid.size(), 2u);
    EXPECT_GE(invalid[0], 0.0);
    EXPECT_LE(invalid[0], 1.0);
    const std::string log = CliSandbox::slurp(s.get_run(id)->log_path);
    EXPECT_NE(log.find("step 2/2 reward"), std::string::npos) << log;
  }
  // Same start, same evaluation draws: every method scores the same at step 0.
  EXPECT_DOUBLE_EQ(start_pass1[0], start_pass1[1]);
  EXPECT_DOUBLE_EQ(start_pass1[0], start_pass1[2]);
  EXPECT_NE(CliSandbox::slurp(s.get_run(by["grpo"])->log_path).find("reads the true answers"), std::string::npos);
  EXPECT_NE(CliSandbox::slurp(s.get_run(by["ttrl"])->log_path).find("(label-free)"), std::string::npos);
}

// A store started afresh beside the results of an earlier one: the old
// stage folder is not this store's, so it is moved aside, never resumed
// from, and the stage is trained again for the trials that start from it.
TEST(Rlvr, AStoreStartedAfreshRetrainsItsStageBesideTheOldResults) {
  CliSandbox box;
  box.write("stage.toml", stage());
  const auto sweep = box.write("rl.toml", rlvr_sweep("steps = 1\nprompts = 2\nvotes = 2\ntrained = 2\n"
                                                    "eval_samples = 2\nembedding = \"char_ngram\"\n"));
  ASSERT_EQ(box.run({"run", sweep.string(), "--no-compare"}).code, 0);
  fs::remove(box.db());
  const auto r = box.run({"run", sweep.string(), "--no-compare"});
  ASSERT_EQ(r.code, 0) << r.out << r.err;
  store::Store s(box.db());
  const auto stages = s.list_runs(s.find_sweep("_stages")->id);
  ASSERT_EQ(stages.size(), 1u);
  EXPECT_EQ(stages[0].status, store::RunStatus::kCompleted) << stages[0].error;
  EXPECT_NE(r.err.find("moved it aside"), std::string::npos) << r.err;
  EXPECT_EQ(CliSandbox::slurp(stages[0].log_path).find("resumed from"), std::string::npos);
  for (const auto& run : s.list_runs(s.find_sweep("rl")->id))
    EXPECT_EQ(run.status, store::RunStatus::kCompleted) << run.error;
}

TEST(Rlvr, BadInputIsRejectedBeforeAnythingRuns) {
  CliSandbox box;
  box.write("stage.toml", stage());
  struct Case {
    std::string name, rlvr, policy, expect1, expect2;
  };
  const std::vector<Case> cases = {
      {"group", "trained = 1\nvotes = 4\n", kPolicy, "key 'rlvr.trained'", "needs at least 2"},
      {"votes", "trained = 8\nvotes = 4\n", kPolicy, "key 'rlvr.votes'", "fewer than rlvr.trained = 8"},
      {"temperature", "temperature = 0.0\n", kPolicy, "key 'rlvr.temperature'", "must be > 0"},
      {"context", "", "[policy]\nd_model = 32\ndepth = 1\nheads = 2\ncontext = 30\n", "key 'policy.context'",
       "shorter than the longest prompt plus its worked answer"},
      {"mismatch", "", "[policy]\nd_model = 64\ndepth = 1\nheads = 2\ncontext = 64\n", "key 'init.from'",
       "has policy = "},
      {"embedding", "embedding = \"bert\"\n", kPolicy, "key 'rlvr.embedding'", "\"char_ngram\""},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    const auto file = box.write(c.name + ".toml", rlvr_sweep(c.rlvr, c.policy));
    const auto r = box.run({"run", file.string(), "--dry-run"});
    EXPECT_NE(r.code, 0);
    EXPECT_NE(r.err.find(c.name + ".toml:"), std::string::npos) << r.err;
    EXPECT_NE(r.err.find(c.expect1), std::string::npos) << r.err;
    EXPECT_NE(r.err.find(c.expect2), std::string::npos) << r.err;
  }
  // No warm-up stage; a classify stage in its place; an image-model key.
  std::string no_stage = rlvr_sweep("steps = 1\n");
  no_stage.replace(no_stage.find("[init]\nfrom = \"stage.toml\"\n"),
                   std::string("[init]\nfrom = \"stage.toml\"\n").size(), "[model]\narch = \"mlp\"\n");
  const auto file = box.write("no_stage.toml", no_stage);
  const auto r = box.run({"run", file.string(), "--dry-run"});
  EXPECT_NE(r.code, 0);
  EXPECT_NE(r.err.find("key 'init.from': an rlvr trial starts from a warm-up policy"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("key 'model.arch': only applies to the paradigm classify, mil, tta"), std::string::npos)
      << r.err;
  box.write("classify_stage.toml", "[method]\nname = \"ce\"\n");
  std::string wrong = rlvr_sweep("steps = 1\n");
  wrong.replace(wrong.find("stage.toml"), std::string("stage.toml").size(), "classify_stage.toml");
  const auto rw = box.run({"run", box.write("wrong_stage.toml", wrong).string(), "--dry-run"});
  EXPECT_NE(rw.code, 0);
  EXPECT_NE(rw.err.find("this rlvr trial starts from an sft configuration"), std::string::npos) << rw.err;
  EXPECT_FALSE(fs::exists(box.db())) << "nothing is stored for an invalid sweep";
}

}  // namespace
}  // namespace reglab::testing
