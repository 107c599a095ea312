// The sft and rlvr paradigms driven directly (no runner): a warm-up policy
// trained by sft, then an rlvr trial that is interrupted after its first
// checkpoint and resumed ends exactly as the same trial run straight
// through, method state included (epo keeps an entropy history).
#include <gtest/gtest.h>

#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "config/config.h"
#include "paradigms/rlvr.h"
#include "paradigms/sft.h"
#include "runner/trial_env.h"
#include "store/store.h"
#include "store/temp_db.h"

namespace reglab::testing {
namespace {

namespace fs = std::filesystem;
using config::Json;
using testing_support::TempDir;

class Lines final : public Logger {
 public:
  void log(LogLevel, std::string_view m) override { lines.push_back(std::string(m)); }
  std::vector<std::string> lines;
};

const Json kPolicy = {{"d_model", 32}, {"depth", 1},     {"heads", 2},
                      {"context", 48}, {"mlp_ratio", 4}, {"tie_embeddings", true}};
const Json kArith = {{"ops", {"add"}},      {"min_digits", 1},     {"max_digits", 2},  {"ood_ops", {"add"}},
                     {"ood_min_digits", 3}, {"ood_max_digits", 3}, {"eval_prompts", 6}};

Json sft_trial() {
  return Json{{"seed", 0},
              {"task", {{"paradigm", "sft"}, {"epochs", 1}, {"batch_size", 50}, {"checkpoint_every", 1}}},
              {"optim", {{"name", "adamw"}, {"lr", 3e-3}}},
              {"method", {{"name", "ce"}}},
              {"policy", kPolicy},
              {"arith", kArith},
              {"sft", {{"examples", 200}}}};
}

Json rlvr_trial(const std::string& method) {
  return Json{{"seed", 3},
              {"task", {{"paradigm", "rlvr"}}},
              {"optim", {{"name", "adamw"}, {"lr", 1e-3}}},
              {"method", {{"name", method}}},
              {"policy", kPolicy},
              {"arith", kArith},
              {"rlvr",
               {{"steps", 4},
                {"prompts", 2},
                {"pool", 50},
                {"votes", 4},
                {"trained", 3},
                {"eval_every", 2},
                {"eval_samples", 4},
                {"minibatch", 4},
                {"ppo_epochs", 2}}}};
}

struct Trial {
  store::Store& db;
  std::int64_t run_id;
  fs::path dir;
  fs::path init;
};

void run(const Json& cfg, const Trial& t, const std::function<bool()>& stop, Lines& log) {
  runner::MetricRecorder recorder(&t.db, t.run_id);
  runner::TrialEnv env{cfg,
                       log,
                       recorder,
                       t.dir,
                       stop,
                       [](const Json&) {},
                       [] {},
                       [](const std::string&, const std::string&) {},
                       [](const std::string&, const fs::path&) {},
                       0.0,
                       t.init};
  if (cfg.at("task").at("paradigm") == "sft") {
    paradigms::run_sft(env);
  } else {
    paradigms::run_rlvr(env);
  }
}

std::vector<double> values(store::Store& db, std::int64_t run, const std::string& key) {
  std::vector<double> out;
  for (const auto& p : db.metrics(run, key)) out.push_back(p.value);
  return out;
}

TEST(RlvrParadigm, AResumedTrialEndsExactlyAsAnUninterruptedOne) {
  TempDir dir;
  store::Store db(dir.path() / "r.db");
  const std::int64_t sweep = db.upsert_sweep("rl", "", "");
  const fs::path warm = dir.path() / "warm";
  fs::create_directories(warm);
  Lines warm_log;
  const std::int64_t warm_id = db.ensure_run(sweep, "warm", "", sft_trial().dump(), "ce");
  run(
      sft_trial(), Trial{db, warm_id, warm, {}}, [] { return false; }, warm_log);
  ASSERT_TRUE(fs::exists(warm / "checkpoint.pt"));
  EXPECT_EQ(values(db, warm_id, "sft.loss").size(), 1u);

  const Json cfg = rlvr_trial("epo");
  const std::int64_t straight = db.ensure_run(sweep, "straight", "", cfg.dump(), "epo");
  const std::int64_t resumed = db.ensure_run(sweep, "resumed", "", cfg.dump(), "epo");
  const fs::path a = dir.path() / "a", b = dir.path() / "b";
  fs::create_directories(a);
  fs::create_directories(b);
  Lines log_a, log_b1, log_b2;
  run(
      cfg, Trial{db, straight, a, warm / "checkpoint.pt"}, [] { return false; }, log_a);
  EXPECT_THROW(
      run(
          cfg, Trial{db, resumed, b, warm / "checkpoint.pt"}, [&] { return fs::exists(b / "checkpoint.pt"); }, log_b1),
      runner::Interrupted);
  EXPECT_EQ(values(db, resumed, "rlvr.reward").size(), 2u) << "stopped after the checkpoint of step 2";
  run(
      cfg, Trial{db, resumed, b, warm / "checkpoint.pt"}, [] { return false; }, log_b2);
  bool said = false;
  for (const std::string& line : log_b2.lines) said |= line.find("resumed from") != std::string::npos;
  EXPECT_TRUE(said);
  // Evaluations at steps 0, 2 and 4; training metrics at 1..4.
  EXPECT_EQ(values(db, straight, "eval.id.pass_at_4").size(), 3u);
  for (const std::string key :
       {"rlvr.reward", "rlvr.kl", "rlvr.entropy", "rlvr.loss", "rlvr.grad_norm", "rlvr.label_acc", "eval.id.pass_at_1",
        "eval.id.entropy", "eval.ood.maj_at_4", "method.entropy_history_mean"}) {
    const auto x = values(db, straight, key), y = values(db, resumed, key);
    ASSERT_FALSE(x.empty()) << key;
    ASSERT_EQ(x.size(), y.size()) << key;
    EXPECT_EQ(x.back(), y.back()) << key;
  }
  // Two PPO epochs over two mini-batches: the first update of step 1 sees
  // the reference policy itself, the later ones a policy that moved.
  const auto kl = values(db, straight, "rlvr.kl");
  EXPECT_GT(kl[0], 0.0);
  EXPECT_GT(kl[3], 0.0);
}

}  // namespace
}  // namespace reglab::testing
