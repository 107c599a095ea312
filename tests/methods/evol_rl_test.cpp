// Golden tests for the `evol_rl` plugin (EVOL-RL), loaded from the build's
// plugin folder. Its group reward is plugins/evol_rl/novelty.h (golden-tested
// on its own in evol_rl_novelty_test.cpp); here the plugin's hooks.
//
// Rewards: YujunZhou/EVOL-RL @ 19896e0,
// verl/verl/workers/reward_manager/semantic_novelty.py, the methods
// _compute_novelty_rewards, _compute_similarity_based_rewards,
// _extract_after_think and _check_boxed_content_has_numbers of
// SemanticTTRLRewardManager, loaded on their own and run with Debian's
// /usr/bin/python3 (numpy, python3-torch 1.13) on a stand-in object whose
// embedding call returns the float32 rows written below. A valid response
// was the text "resp<i> \boxed{<answer>}", an invalid one "resp<i> no
// answer"; the base rewards were TTRL's vote (Counter over the answers, ""
// for none, most_common(1); 1.0 where equal). The all-majority case is also
// worked out by hand below.
//
// Loss: methods/rlvr_actor_cases.h (the fork's actor and b178a3c's, run on
// the same tensors with EVOL-RL's settings: eps 0.2/0.28, entropy 0.003,
// low_var_kl 0.001, token-mean).
#include <gtest/gtest.h>

#include <torch/types.h>

#include <cmath>
#include <cstdint>
#include <functional>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "methods/method_harness.h"
#include "methods/rlvr_actor_cases.h"
#include "plugins/method_handle.h"
#include "reglab/method.h"

namespace reglab::testing {
namespace {

using namespace rlvr_cases;
using Answers = std::vector<std::optional<std::int64_t>>;

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const std::exception& e) {
    return e.what();
  }
  return "(no exception)";
}

RlvrGroup group_of(Answers answers, const std::vector<std::vector<float>>& rows) {
  RlvrGroup g;
  g.answers = std::move(answers);
  std::vector<float> flat;
  for (const auto& r : rows) flat.insert(flat.end(), r.begin(), r.end());
  g.embeddings = torch::tensor(flat, torch::kFloat).reshape({static_cast<std::int64_t>(rows.size()), -1});
  return g;
}

void expect_rewards(const std::vector<double>& got, const std::vector<double>& expected, double tol = 1e-6) {
  ASSERT_EQ(got.size(), expected.size());
  for (std::size_t i = 0; i < expected.size(); ++i) EXPECT_NEAR(got[i], expected[i], tol) << "response " << i;
}

TEST(EvolRl, DeclaresTheClipHigherAndEntropySettingsAndAsksForEmbeddingsOnly) {
  const PluginInfo& info = *build_plugin("evol_rl").info;
  EXPECT_STREQ(info.name, "evol_rl");
  EXPECT_TRUE(info.paradigms & kRlvr);
  ASSERT_EQ(info.num_params, 7u);
  const char* names[] = {"clip_low", "clip_high", "clip_ratio_c", "kl_coef", "entropy_coeff", "loss_agg", "convention"};
  const char* defaults[] = {"0.2", "0.28", "3.0", "0.001", "0.003", "\"token-mean\"", "\"fork\""};
  for (std::size_t i = 0; i < 7; ++i) {
    EXPECT_STREQ(info.params[i].name, names[i]);
    EXPECT_STREQ(info.params[i].default_value, defaults[i]);
  }
  MethodSession s("evol_rl", "{}", 0, 20, 10, torch::kDouble, kRlvr);
  const RlvrRequirements req = s.handle().rlvr_requirements();
  EXPECT_TRUE(req.embeddings);
  EXPECT_FALSE(req.ground_truth);
}

TEST(EvolRl, RewardsMatchTheOfficialRewardManager) {
  // Label 7 (three votes): majority {0, 1, 4}, minority {2, 5}, 3 invalid.
  MethodSession s("evol_rl", "{}", 0, 20, 10, torch::kDouble, kRlvr);
  const auto r = s.handle().rewards(
      group_of({7, 7, 3, std::nullopt, 7, 3}, {{1.0f, 0.5f, 0.0f, 0.2f},
                                                {0.8f, 0.6f, 0.1f, 0.0f},
                                                {0.0f, 1.0f, 0.3f, -0.2f},
                                                {0.4f, 0.4f, 0.4f, 0.4f},
                                                {0.9f, -0.1f, 0.5f, 0.3f},
                                                {0.1f, 0.7f, -0.6f, 0.2f}}),
      s.context(0, 0));
  expect_rewards(r, {0.5, 0.55884985919384289, -1.0, -1.0, 1.0, -0.5});
}

TEST(EvolRl, OneValidResponseGivesEveryResponseMinusOne) {
  // "No answer" also wins the vote here; with at most one valid response the
  // official code gives −1 to all.
  MethodSession s("evol_rl", "{}", 0, 20, 10, torch::kDouble, kRlvr);
  EXPECT_EQ(s.handle().rewards(group_of({std::nullopt, 5, std::nullopt}, {{1.0f, 0.0f}, {0.3f, 0.7f}, {0.0f, 1.0f}}),
                               s.context(0, 0)),
            (std::vector<double>{-1, -1, -1}));
}

TEST(EvolRl, AllInTheMajorityByHandAndTheNoveltyMetric) {
  // e = (1, 0), (0.6, 0.8), (0, 1): s01 = 0.6, s02 = 0, s12 = 0.8, one
  // cluster of three. u0 = 1 − (0.5·0.3 + 0.5·0.6) = 0.55, u1 = 1 − (0.5·0.7
  // + 0.5·0.8) = 0.25, u2 = 1 − (0.5·0.4 + 0.5·0.8) = 0.4; min-max → 1, 0,
  // 0.5; rewards 0.5 + 0.5·ũ = 1, 0.5, 0.75 (the official code gives
  // 1, 0.5, 0.75000002 from its float32 cosines). Novelty mean 0.4.
  MethodSession s("evol_rl", "{}", 0, 20, 10, torch::kDouble, kRlvr);
  NullLogger log;
  CollectingSink sink;
  const auto r = s.handle().rewards(group_of({4, 4, 4}, {{1.0f, 0.0f}, {0.6f, 0.8f}, {0.0f, 1.0f}}),
                                    StepContext{3, 10, 0, log, sink});
  expect_rewards(r, {1.0, 0.5, 0.75});
  EXPECT_NEAR(last_metric(sink, "method.novelty_mean", 3), 0.4, 1e-6);
  // A group with no valid pair computes no novelty and records nothing more.
  s.handle().rewards(group_of({std::nullopt, std::nullopt}, {{1.0f, 0.0f}, {0.0f, 1.0f}}),
                     StepContext{3, 10, 0, log, sink});
  EXPECT_EQ(sink.points["method.novelty_mean"].size(), 1u);
}

TEST(EvolRl, RefusesAGroupWithoutEmbeddings) {
  MethodSession s("evol_rl", "{}", 0, 20, 10, torch::kDouble, kRlvr);
  RlvrGroup g;
  g.answers = {1, 2};
  EXPECT_NE(error_of([&] { s.handle().rewards(g, s.context(0, 0)); }).find("embeddings"), std::string::npos);
}

TEST(EvolRl, DefaultLossAndGradientsMatchTheForkActor) {
  // The entropy bonus reaches the logits directly, so here the logits
  // gradient is not the log_prob gradient chained through log_softmax alone.
  MethodSession s("evol_rl", "{}", 0, 20, 10, torch::kDouble, kRlvr);
  NullLogger log;
  CollectingSink sink;
  expect_golden(run_policy_loss(s.handle(), StepContext{0, 10, 0, log, sink}), kEvolDefault);
  EXPECT_NEAR(last_metric(sink, "method.pg_loss", 0), kEvolDefault.pg_loss, 1e-13);
  EXPECT_NEAR(last_metric(sink, "method.kl", 0), kEvolDefault.kl, 1e-13);
  EXPECT_NEAR(last_metric(sink, "method.entropy", 0), kEvolDefault.entropy, 1e-13);
}

TEST(EvolRl, B178a3cConventionMatchesThatActor) {
  // Differs from the fork in the last digits only: token-mean divides by
  // Σm, not Σm + 1e-8.
  MethodSession s("evol_rl", R"({"convention": "b178a3c"})", 0, 20, 10, torch::kDouble, kRlvr);
  const LossRun r = run_policy_loss(s.handle(), s.context(0, 0));
  expect_golden(r, kB178Evol);
  EXPECT_GT(std::abs(r.loss.item<double>() - kEvolDefault.loss), 5e-10);
}

TEST(EvolRl, RefusesBadParameters) {
  const PluginInfo& info = *build_plugin("evol_rl").info;
  for (const char* bad : {R"({"clip_high": -0.28})", R"({"clip_ratio_c": 1})", R"({"entropy_coeff": -0.003})",
                          R"({"loss_agg": "token-sum"})", R"({"convention": "b178"})", R"({"novelty_weight": 1})"})
    EXPECT_THROW(plugins::resolve_params(info, bad), std::invalid_argument) << bad;
  EXPECT_NO_THROW(plugins::resolve_params(info, R"({"clip_high": 0.2, "entropy_coeff": 0})"));
}

}  // namespace
}  // namespace reglab::testing
