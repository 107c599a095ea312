// Golden tests for the rlvr plugins `grpo` (supervised GRPO baseline) and
// `ttrl` (Test-Time RL), loaded from the build's plugin folder.
//
// The loss numbers (methods/rlvr_actor_cases.h) come from the official
// actors run on the same tensors; see that header for how. The rewards:
//   - grpo: 1 where the answer equals the true answer, else 0, by hand;
//   - ttrl: PRIME-RL/TTRL @ 3e2cc93, verl/verl/utils/reward_score/ttrl/
//     ttt_metrics.py::test_time_train_metrics, loaded on its own and run with
//     Debian's /usr/bin/python3 on the test's answers written as the strings
//     the extractor returns ("" for a response without one; auto_extract
//     replaced by the identity on those strings, auto_verify by the
//     official qwen/math_grade.py::grade_answer on each (answer, label) pair,
//     as qwen_reward_fn does after extraction; pylatexenc is not installed
//     and its latex_to_text was replaced by the identity, which it is on
//     plain integers). It returned the rewards and majority_ratio below.
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

RlvrGroup group_of(Answers answers, std::optional<std::int64_t> truth = std::nullopt) {
  RlvrGroup g;
  g.answers = std::move(answers);
  g.truth = truth;
  return g;
}

// The actor parameters, with the defaults each method's official runs use.
void expect_actor_params(const PluginInfo& info, const char* clip_high, const char* entropy_coeff) {
  ASSERT_EQ(info.num_params, 7u);
  const char* names[] = {"clip_low", "clip_high", "clip_ratio_c", "kl_coef", "entropy_coeff", "loss_agg", "convention"};
  for (std::size_t i = 0; i < 7; ++i) EXPECT_STREQ(info.params[i].name, names[i]);
  EXPECT_STREQ(info.params[0].default_value, "0.2");
  EXPECT_STREQ(info.params[1].default_value, clip_high);
  EXPECT_STREQ(info.params[2].default_value, "3.0");
  EXPECT_STREQ(info.params[3].default_value, "0.001");
  EXPECT_STREQ(info.params[4].default_value, entropy_coeff);
  EXPECT_STREQ(info.params[5].default_value, "\"token-mean\"");
  EXPECT_STREQ(info.params[5].choices, "token-mean|seq-mean-token-sum|seq-mean-token-mean");
  EXPECT_STREQ(info.params[6].default_value, "\"fork\"");
  EXPECT_STREQ(info.params[6].choices, "fork|b178a3c");
  EXPECT_TRUE(info.paradigms & kRlvr);
  EXPECT_FALSE(info.paradigms & kClassify);
}

// Every bad value is refused at validation, naming the parameter.
void expect_refuses_bad_params(const char* method) {
  const PluginInfo& info = *build_plugin(method).info;
  const auto error = [&](const char* json) { return error_of([&] { plugins::resolve_params(info, json); }); };
  const std::string prefix = std::string("method '") + method + "' parameter '";
  struct Bad {
    const char* json;
    const char* key;
  };
  for (const Bad& b : {Bad{R"({"clip_low": -0.1})", "clip_low"}, Bad{R"({"clip_low": 1.5})", "clip_low"},
                       Bad{R"({"clip_high": -0.01})", "clip_high"}, Bad{R"({"clip_ratio_c": 1.0})", "clip_ratio_c"},
                       Bad{R"({"clip_ratio_c": 0.5})", "clip_ratio_c"}, Bad{R"({"kl_coef": -0.001})", "kl_coef"},
                       Bad{R"({"entropy_coeff": -0.003})", "entropy_coeff"},
                       Bad{R"({"loss_agg": "mean"})", "loss_agg"}, Bad{R"({"convention": "verl"})", "convention"},
                       Bad{R"({"clip_low": "0.2"})", "clip_low"}})
    EXPECT_NE(error(b.json).find(prefix + b.key + "'"), std::string::npos) << b.json << ": " << error(b.json);
  EXPECT_NE(error(R"({"clip_ratio": 0.2})").find("has no parameter 'clip_ratio'"), std::string::npos);
  EXPECT_EQ(error(R"({"clip_low": 0, "clip_high": 0, "clip_ratio_c": 1.01, "kl_coef": 0, "entropy_coeff": 0,
                      "loss_agg": "seq-mean-token-mean", "convention": "b178a3c"})"),
            "(no exception)");
  EXPECT_EQ(error(R"({"clip_low": 1, "loss_agg": "seq-mean-token-sum"})"), "(no exception)");
}

// ------------------------------------------------------------------- grpo

TEST(Grpo, DeclaresTheVerlActorParametersAndAsksForTheTruthOnly) {
  expect_actor_params(*build_plugin("grpo").info, "0.2", "0.0");
  MethodSession s("grpo", "{}", 0, 20, 10, torch::kDouble, kRlvr);
  const RlvrRequirements req = s.handle().rlvr_requirements();
  EXPECT_TRUE(req.ground_truth);
  EXPECT_FALSE(req.embeddings);
}

TEST(Grpo, RewardIsTheGroundTruthCheckAndInvalidAnswersGetZero) {
  MethodSession s("grpo", "{}", 0, 20, 10, torch::kDouble, kRlvr);
  EXPECT_EQ(s.handle().rewards(group_of({7, 3, std::nullopt, 7, -7}, 7), s.context(0, 0)),
            (std::vector<double>{1, 0, 0, 1, 0}));
  // The majority does not matter: only the truth does.
  EXPECT_EQ(s.handle().rewards(group_of({4, 4, 4, 12}, 12), s.context(0, 0)), (std::vector<double>{0, 0, 0, 1}));
  EXPECT_EQ(s.handle().rewards(group_of({std::nullopt, std::nullopt}, 0), s.context(0, 0)),
            (std::vector<double>{0, 0}));
  EXPECT_EQ(s.handle().rewards(group_of({0}, 0), s.context(0, 0)), (std::vector<double>{1}));
}

TEST(Grpo, RefusesAGroupWithoutTheTruth) {
  MethodSession s("grpo", "{}", 0, 20, 10, torch::kDouble, kRlvr);
  const std::string e = error_of([&] { s.handle().rewards(group_of({1, 2}), s.context(0, 0)); });
  EXPECT_NE(e.find("no ground truth"), std::string::npos) << e;
}

TEST(Grpo, DefaultLossAndGradientsMatchTheForkActor) {
  MethodSession s("grpo", "{}", 0, 20, 10, torch::kDouble, kRlvr);
  expect_golden(run_policy_loss(s.handle(), s.context(0, 0)), kGrpoDefault);
}

TEST(Grpo, SeqMeanTokenSumAggregatesEveryTerm) {
  MethodSession s("grpo", R"({"loss_agg": "seq-mean-token-sum", "entropy_coeff": 0.01, "kl_coef": 0.05})", 0, 20, 10,
                  torch::kDouble, kRlvr);
  expect_golden(run_policy_loss(s.handle(), s.context(0, 0)), kSeqMeanTokenSum);
}

TEST(Grpo, SeqMeanTokenMeanWithOtherClipRanges) {
  MethodSession s("grpo",
                  R"({"loss_agg": "seq-mean-token-mean", "entropy_coeff": 0.01, "kl_coef": 0.05,
                      "clip_low": 0.1, "clip_high": 0.3, "clip_ratio_c": 2.0})",
                  0, 20, 10, torch::kDouble, kRlvr);
  expect_golden(run_policy_loss(s.handle(), s.context(0, 0)), kSeqMeanTokenMean);
}

TEST(Grpo, ZeroKlCoefficientDropsTheKlTerm) {
  MethodSession s("grpo", R"({"kl_coef": 0})", 0, 20, 10, torch::kDouble, kRlvr);
  const LossRun r = run_policy_loss(s.handle(), s.context(0, 0));
  expect_golden(r, kNoKl);
  EXPECT_EQ(r.loss.item<double>(), kNoKl.pg_loss);
}

TEST(Grpo, B178a3cConventionKeepsPaddingOutWhereTheForkGivesNan) {
  // Row 1's padded position has old_log_prob −1000: its log-ratio ≈ 999
  // overflows exp in float64. b178a3c clamps it and zeroes padding before the
  // sums (the same numbers as with clean padding); the fork's 0·inf is NaN.
  std::vector<double> garbage = kOld;
  garbage[7] = -1000.0;
  const char* evol_settings = R"({"clip_high": 0.28, "entropy_coeff": 0.003, "convention": "b178a3c"})";
  MethodSession b("grpo", evol_settings, 0, 20, 10, torch::kDouble, kRlvr);
  expect_golden(run_policy_loss(b.handle(), b.context(0, 0)), kB178Evol);
  expect_golden(run_policy_loss(b.handle(), b.context(0, 1), garbage), kB178EvolPaddingGarbage);
  MethodSession f("grpo", R"({"clip_high": 0.28, "entropy_coeff": 0.003})", 0, 20, 10, torch::kDouble, kRlvr);
  const LossRun r = run_policy_loss(f.handle(), f.context(0, 0), garbage);
  EXPECT_TRUE(std::isnan(r.loss.item<double>()));
  EXPECT_TRUE(std::isnan(r.grad_log_prob[1][3].item<double>()));
  EXPECT_FALSE(std::isnan(r.grad_log_prob[0][0].item<double>()));
}

TEST(Grpo, RecordsPerStepMeansOfItsTerms) {
  // The store keeps the last value per (key, RL step): each call records the
  // mean over the step's mini-batches so far. The second mini-batch has every
  // old log-prob 0.01 lower; its pg_loss, 0.62038041737391159, is the fork's
  // compute_policy_loss on those tensors (same run as the header's numbers).
  const double pg_shifted = 0.62038041737391159;
  MethodSession s("grpo", "{}", 0, 20, 10, torch::kDouble, kRlvr);
  NullLogger log;
  CollectingSink sink;
  run_policy_loss(s.handle(), StepContext{0, 10, 0, log, sink});
  EXPECT_NEAR(last_metric(sink, "method.pg_loss", 0), kGrpoDefault.pg_loss, 1e-13);
  EXPECT_NEAR(last_metric(sink, "method.kl", 0), kGrpoDefault.kl, 1e-13);
  EXPECT_NEAR(last_metric(sink, "method.entropy", 0), kGrpoDefault.entropy, 1e-13);
  std::vector<double> shifted = kOld;
  for (double& v : shifted) v -= 0.01;
  run_policy_loss(s.handle(), StepContext{0, 10, 1, log, sink}, shifted);
  EXPECT_EQ(sink.points["method.pg_loss"].size(), 2u);
  EXPECT_NEAR(last_metric(sink, "method.pg_loss", 0), (kGrpoDefault.pg_loss + pg_shifted) / 2, 1e-13);
  EXPECT_NEAR(last_metric(sink, "method.kl", 0), kGrpoDefault.kl, 1e-13);  // the KL does not see old_log_prob
  // The next RL step starts a new mean.
  run_policy_loss(s.handle(), StepContext{1, 10, 2, log, sink}, shifted);
  EXPECT_NEAR(last_metric(sink, "method.pg_loss", 1), pg_shifted, 1e-13);
  EXPECT_NEAR(last_metric(sink, "method.pg_loss", 0), (kGrpoDefault.pg_loss + pg_shifted) / 2, 1e-13);
}

TEST(Grpo, RefusesBadParameters) { expect_refuses_bad_params("grpo"); }

TEST(Grpo, RefusesABatchWithoutReferenceLogProbs) {
  MethodSession s("grpo", "{}", 0, 20, 10, torch::kDouble, kRlvr);
  RlvrBatch b;
  b.log_prob = torch::zeros({1, 2}, torch::kDouble);
  b.old_log_prob = b.log_prob.clone();
  b.advantages = b.log_prob.clone();
  b.response_mask = torch::ones({1, 2}, torch::kDouble);
  const std::string e = error_of([&] { s.handle().policy_loss(b, s.context(0, 0)); });
  EXPECT_NE(e.find("ref_log_prob"), std::string::npos) << e;
}

// ------------------------------------------------------------------- ttrl

TEST(Ttrl, DeclaresTtrlsActorSettingsAndNeedsNoLabels) {
  expect_actor_params(*build_plugin("ttrl").info, "0.2", "0.0");
  MethodSession s("ttrl", "{}", 0, 20, 10, torch::kDouble, kRlvr);
  const RlvrRequirements req = s.handle().rlvr_requirements();
  EXPECT_FALSE(req.ground_truth);
  EXPECT_FALSE(req.embeddings);
}

struct TtrlCase {
  Answers answers;
  std::vector<double> rewards;
  double majority_ratio;
};

TEST(Ttrl, RewardsMatchTheOfficialMajorityVote) {
  const std::vector<TtrlCase> cases = {
      // a tie between 3 and 5 (two votes each) goes to 3, seen first
      {{3, 5, 5, 3, std::nullopt}, {1, 0, 0, 1, 0}, 0.4},
      // "no answer" (three votes) wins: the responses without an answer are rewarded
      {{std::nullopt, 4, std::nullopt, std::nullopt, 7}, {1, 0, 1, 1, 0}, 0.6},
      // one valid response, outvoted by the invalid ones
      {{std::nullopt, std::nullopt, 9}, {1, 1, 0}, 2.0 / 3.0},
      // a single vote is its own majority
      {{6}, {1}, 1.0},
      // all answers (and so all rewards) equal
      {{2, 2, 2}, {1, 1, 1}, 1.0},
      {{-12, 12, -12, 120}, {1, 0, 1, 0}, 0.5},
      {{std::nullopt, std::nullopt}, {1, 1}, 1.0},
      {{10, 1, 10, 0, 1, 1}, {0, 1, 0, 0, 1, 1}, 0.5},
  };
  MethodSession s("ttrl", "{}", 0, 20, 10, torch::kDouble, kRlvr);
  NullLogger log;
  for (std::size_t i = 0; i < cases.size(); ++i) {
    CollectingSink sink;
    const StepContext step{static_cast<std::int64_t>(i), 10, 0, log, sink};
    EXPECT_EQ(s.handle().rewards(group_of(cases[i].answers), step), cases[i].rewards) << "case " << i;
    EXPECT_NEAR(last_metric(sink, "method.majority_ratio", static_cast<std::int64_t>(i)), cases[i].majority_ratio,
                1e-15)
        << "case " << i;
  }
}

TEST(Ttrl, IgnoresTheTruthEvenWhenGiven) {
  MethodSession s("ttrl", "{}", 0, 20, 10, torch::kDouble, kRlvr);
  EXPECT_EQ(s.handle().rewards(group_of({5, 5, 8}, 8), s.context(0, 0)), (std::vector<double>{1, 1, 0}));
}

TEST(Ttrl, RefusesAnEmptyGroup) {
  MethodSession s("ttrl", "{}", 0, 20, 10, torch::kDouble, kRlvr);
  EXPECT_NE(error_of([&] { s.handle().rewards(group_of({}), s.context(0, 0)); }).find("no answers"),
            std::string::npos);
}

TEST(Ttrl, DefaultLossAndGradientsMatchTtrlsActor) {
  MethodSession s("ttrl", "{}", 0, 20, 10, torch::kDouble, kRlvr);
  expect_golden(run_policy_loss(s.handle(), s.context(0, 0)), kGrpoDefault);
}

TEST(Ttrl, RefusesBadParameters) { expect_refuses_bad_params("ttrl"); }

}  // namespace
}  // namespace reglab::testing
