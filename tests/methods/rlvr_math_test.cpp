// Golden tests for reglab/rlvr.h, the numerical core of the rlvr methods.
//
// Verified against:
//   - the EVOL-RL copy of verl, YujunZhou/EVOL-RL @ 19896e0,
//     verl/verl/trainer/ppo/core_algos.py (compute_grpo_outcome_advantage,
//     agg_loss, compute_policy_loss, kl_penalty, compute_entropy_loss) with
//     verl/verl/utils/torch_functional.py (masked_mean, entropy_from_logits);
//   - volcengine/verl @ b178a3c, verl/trainer/ppo/core_algos.py and
//     verl/utils/torch_functional.py (the same functions; kl_penalty through
//     kl_penalty_forward);
//   - PRIME-RL/TTRL @ 3e2cc93, verl/verl/utils/reward_score/ttrl/ttt_metrics.py
//     (the vote: Counter(answers).most_common(1); reward = answer equals label).
// How the numbers were obtained: the official functions were loaded on their
// own from those files (each function's source taken from the file as is;
// verl_F, numpy, torch and defaultdict supplied; decorators dropped) and run
// with Debian's /usr/bin/python3 and python3-torch 1.13 on the float32 inputs
// written in each test below. GRPO received the scores as token-level rewards
// (the score at a row's last response token, 0 elsewhere). Gradients are
// torch.autograd's of the returned loss with respect to the new log-probs
// (policy loss, KL) or the logits (entropy). The majority vote cases are
// worked out by hand from Counter's rule (ties: the first answer seen).
#include <gtest/gtest.h>

#include <reglab/rlvr.h>

#include <torch/types.h>

#include <cmath>
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace reglab::testing {
namespace {

using rlvr::AggMode;
using rlvr::Convention;

torch::Tensor make(const std::vector<float>& values, std::vector<std::int64_t> shape) {
  return torch::tensor(values, torch::kFloat).reshape(shape);
}

void expect_values(const torch::Tensor& t, const std::vector<double>& expected, double tol = 2e-6) {
  const torch::Tensor flat = t.detach().to(torch::kDouble).contiguous().view(-1);
  ASSERT_EQ(flat.numel(), static_cast<std::int64_t>(expected.size()));
  for (std::size_t i = 0; i < expected.size(); ++i) {
    const double got = flat[static_cast<std::int64_t>(i)].item<double>();
    EXPECT_NEAR(got, expected[i], tol * std::max(1.0, std::abs(expected[i]))) << "at flat index " << i;
  }
}

constexpr AggMode kModes[] = {AggMode::token_mean, AggMode::seq_mean_token_sum, AggMode::seq_mean_token_mean};

// --------------------------------------------------------------- advantages

const torch::Tensor kAdvMask = make({1, 1, 1, 1, 1, 1, 0, 0, 1, 1, 1, 0, 1, 0, 0, 0,
                                     1, 1, 1, 1, 1, 1, 0, 0, 1, 1, 1, 1, 1, 1, 1, 0},
                                    {8, 4});
const std::vector<std::int64_t> kIds = {0, 1, 0, 1, 0, 2, 3, 3};
const torch::Tensor kScores = make({1.0f, 0.0f, 0.0f, 1.0f, 1.0f, 0.7f, 0.3f, 0.3f}, {8});

TEST(RlvrAdvantages, GroupRelativeWithSingletonAndEqualGroups) {
  // Groups {0,2,4} = (1,0,1), {1,3} = (0,1), {5} alone (mean 0, std 1),
  // {6,7} equal (advantage 0); ids need not be contiguous.
  const torch::Tensor adv = rlvr::broadcast_advantages(rlvr::grpo_advantages(kScores, kIds), kAdvMask);
  expect_values(adv, {0.577349246, 0.577349246, 0.577349246, 0.577349246, -0.707105756, -0.707105756, 0, 0,
                      -1.15469861, -1.15469861, -1.15469861, 0, 0.707105756, 0, 0, 0,
                      0.577349246, 0.577349246, 0.577349246, 0.577349246, 0.699999332, 0.699999332, 0, 0,
                      0, 0, 0, 0, 0, 0, 0, 0});
}

TEST(RlvrAdvantages, DrGrpoSubtractsTheMeanOnly) {
  rlvr::AdvantageOptions o;
  o.normalize_by_std = false;
  const torch::Tensor adv = rlvr::broadcast_advantages(rlvr::grpo_advantages(kScores, kIds, o), kAdvMask);
  expect_values(adv, {0.333333313, 0.333333313, 0.333333313, 0.333333313, -0.5, -0.5, 0, 0,
                      -0.666666687, -0.666666687, -0.666666687, 0, 0.5, 0, 0, 0,
                      0.333333313, 0.333333313, 0.333333313, 0.333333313, 0.699999988, 0.699999988, 0, 0,
                      0, 0, 0, 0, 0, 0, 0, 0});
}

TEST(RlvrAdvantages, FixedGroupSizeAndAllRewardsEqual) {
  const torch::Tensor s = make({1.0f, 0.75f, -0.5f, -1.0f, -1.0f, -1.0f}, {6});
  const torch::Tensor adv = rlvr::grpo_advantages(s, 3);
  expect_values(adv, {0.725865304, 0.41478017, -1.14064538, 0, 0, 0});
  EXPECT_TRUE(adv.slice(0, 3).eq(0).all().item<bool>());  // exactly zero, not merely small
}

TEST(RlvrAdvantages, GroupOfOneKeepsItsScoreAndNoGradientFlows) {
  const torch::Tensor s = make({0.5f, -2.0f}, {2}).requires_grad_(true);
  const torch::Tensor adv = rlvr::grpo_advantages(s, 1);
  expect_values(adv, {0.5 / (1 + 1e-6), -2.0 / (1 + 1e-6)});
  EXPECT_FALSE(adv.requires_grad());
}

TEST(RlvrAdvantages, RejectsBadShapes) {
  EXPECT_THROW(rlvr::grpo_advantages(kScores, 3), std::invalid_argument);
  EXPECT_THROW(rlvr::grpo_advantages(kScores, std::vector<std::int64_t>{0, 1}), std::invalid_argument);
  EXPECT_THROW(rlvr::grpo_advantages(kAdvMask, 4), std::invalid_argument);
  EXPECT_THROW(rlvr::broadcast_advantages(kScores, kAdvMask.slice(0, 0, 3)), std::invalid_argument);
}

// ---------------------------------------------------------------- policy loss
//
// Row 0 (A = 1.2): ρ = e^0.5 above 1 + ε_high (clipped, no gradient), e^−0.5
// below 1 − ε_low (the unclipped term is larger: gradient), e^0.1, 1.
// Row 1 (A = −0.8): ρ = e^1.5 > c (dual clip binds), e^0.7 in (1 + ε, c)
// (dual clip inactive), e^−0.7 (clipped up to 1 − ε_low), then padding.
// Row 2 (A = −1.5): ρ = e^1.2 > c, then padding with large log-ratios.
// ε_low 0.2, ε_high 0.28, c 3.

const torch::Tensor kOld = make({-1.0f, -2.0f, -0.5f, -1.5f, -0.3f, -1.2f, -2.2f, -0.9f, -0.7f, -1.1f, -0.4f, -2.5f}, {3, 4});
const torch::Tensor kDelta = make({0.5f, -0.5f, 0.1f, 0.0f, 1.5f, 0.7f, -0.7f, 2.0f, 1.2f, 0.3f, -3.0f, 5.0f}, {3, 4});
const torch::Tensor kPolicyMask = make({1, 1, 1, 1, 1, 1, 1, 0, 1, 0, 0, 0}, {3, 4});

torch::Tensor policy_advantages() {
  return rlvr::broadcast_advantages(make({1.2f, -0.8f, -1.5f}, {3}), kPolicyMask);
}

struct PolicyGolden {
  AggMode mode;
  double loss;
  std::vector<double> grad;
};

TEST(RlvrPolicyLoss, DualClipAsymmetricEveryAggregationWithGradients) {
  const std::vector<PolicyGolden> goldens = {
      {AggMode::token_mean, 0.545120001,
       {0, -0.0909796059, -0.165775657, -0.150000006, 0, 0.201375276, 0, 0, 0, 0, 0, 0}},
      {AggMode::seq_mean_token_sum, 1.45365345,
       {0, -0.242612287, -0.442068428, -0.400000036, 0, 0.537000775, 0, 0, 0, 0, 0, 0}},
      {AggMode::seq_mean_token_mean, 1.61760795,
       {0, -0.0606530719, -0.110517107, -0.100000009, 0, 0.179000244, 0, 0, 0, 0, 0, 0}},
  };
  for (const Convention convention : {Convention::fork, Convention::b178a3c}) {
    for (const auto& g : goldens) {
      SCOPED_TRACE(rlvr::agg_mode_name(g.mode));
      rlvr::PolicyLossOptions o;
      o.clip_low = 0.2;
      o.clip_high = 0.28;
      o.agg = g.mode;
      o.convention = convention;
      const torch::Tensor lp = (kOld + kDelta).detach().requires_grad_(true);
      const auto out = rlvr::ppo_policy_loss(kOld, lp, policy_advantages(), kPolicyMask, o);
      out.loss.backward();
      expect_values(out.loss, {g.loss});
      expect_values(out.clip_fraction, {0.25});        // (0,0) clipped above, (1,2) clipped below
      expect_values(out.clip_fraction_lower, {0.25});  // (1,0) and (2,0): A < 0 and ρ > c
      expect_values(out.approx_kl, {-0.350000024});
      expect_values(lp.grad(), g.grad);
      EXPECT_FALSE(out.clip_fraction.requires_grad());
    }
  }
}

TEST(RlvrPolicyLoss, DualClipInactiveWhenCIsLarge) {
  // Symmetric ε = 0.2 and c = 10: no ratio reaches c, so (1,0) and (2,0)
  // carry the unclipped −A·ρ and its gradient.
  rlvr::PolicyLossOptions o;
  o.clip_ratio_c = 10.0;
  const torch::Tensor lp = (kOld + kDelta).detach().requires_grad_(true);
  const auto out = rlvr::ppo_policy_loss(kOld, lp, policy_advantages(), kPolicyMask, o);
  out.loss.backward();
  expect_values(out.loss, {0.765310824});
  expect_values(out.clip_fraction, {0.25});
  expect_values(out.clip_fraction_lower, {0.0});
  expect_values(lp.grad(), {0, -0.0909796059, -0.165775657, -0.150000006, 0.448168904, 0.201375276, 0, 0,
                            0.622521937, 0, 0, 0});
}

TEST(RlvrPolicyLoss, LogRatioClampOnlyInB178a3c) {
  // ρ = e^−25 under the fork, e^−20 under b178a3c: the logged KL shows it.
  const torch::Tensor old = torch::zeros({1, 2});
  const torch::Tensor lp = make({-25.0f, 0.0f}, {1, 2});
  const torch::Tensor a = torch::ones({1, 2});
  const torch::Tensor m = torch::ones({1, 2});
  rlvr::PolicyLossOptions o;
  const auto fork = rlvr::ppo_policy_loss(old, lp, a, m, o);
  o.convention = Convention::b178a3c;
  const auto b178 = rlvr::ppo_policy_loss(old, lp, a, m, o);
  expect_values(fork.loss, {-0.5});
  expect_values(fork.approx_kl, {12.5});
  expect_values(b178.loss, {-0.5});
  expect_values(b178.approx_kl, {10.0});
}

TEST(RlvrPolicyLoss, RejectsBadOptionsAndShapes) {
  rlvr::PolicyLossOptions o;
  o.clip_ratio_c = 1.0;
  EXPECT_THROW(rlvr::ppo_policy_loss(kOld, kOld, kOld, kPolicyMask, o), std::invalid_argument);
  EXPECT_THROW(rlvr::ppo_policy_loss(kOld, kOld.slice(1, 0, 3), kOld, kPolicyMask), std::invalid_argument);
  EXPECT_THROW(rlvr::agg_mode_from_name("seq-mean"), std::invalid_argument);
  EXPECT_EQ(rlvr::agg_mode_from_name("seq-mean-token-sum"), AggMode::seq_mean_token_sum);
}

// ---------------------------------------------------------------- aggregation

TEST(RlvrAggLoss, EmptyRowsFollowEachConvention) {
  // Row 1 has no response token. The fork averages over all rows (token-sum
  // counts it as 0; token-mean divides 0 by 0); b178a3c drops it.
  const torch::Tensor x = make({2, 4, 9, 5, 6, 7, 3, 8, 1}, {3, 3});
  const torch::Tensor m = make({1, 1, 0, 0, 0, 0, 1, 0, 0}, {3, 3});
  expect_values(rlvr::agg_loss(x, m, AggMode::token_mean, Convention::fork), {3.0});
  expect_values(rlvr::agg_loss(x, m, AggMode::token_mean, Convention::b178a3c), {3.0});
  expect_values(rlvr::agg_loss(x, m, AggMode::seq_mean_token_sum, Convention::fork), {3.0});
  expect_values(rlvr::agg_loss(x, m, AggMode::seq_mean_token_sum, Convention::b178a3c), {4.5});
  EXPECT_TRUE(std::isnan(rlvr::agg_loss(x, m, AggMode::seq_mean_token_mean, Convention::fork).item<double>()));
  expect_values(rlvr::agg_loss(x, m, AggMode::seq_mean_token_mean, Convention::b178a3c), {3.0});
}

// ---------------------------------------------------------------- k3 KL

TEST(RlvrKl, LowVarKlClampedWithGradients) {
  const torch::Tensor lp0 = make({-1.0f, -2.0f, -0.5f, -0.2f, -3.0f, -1.0f}, {2, 3});
  const torch::Tensor ref = make({-1.3f, -1.5f, 2.8f, -0.9f, -3.1f, 4.0f}, {2, 3});
  const torch::Tensor m = make({1, 1, 1, 1, 1, 0}, {2, 3});
  for (const Convention c : {Convention::fork, Convention::b178a3c})
    expect_values(rlvr::low_var_kl(lp0, ref, c), {0.0408182144, 0.148721218, 10, 0.196585298, 0.00483739376, 10});
  const std::vector<std::pair<double, std::vector<double>>> goldens = {
      {2.07819247, {0.0518363416, -0.129744247, 0, 0.100682937, 0.0190325081, 0}},
      {5.19548082, {0.129590869, -0.324360609, 0, 0.251707345, 0.0475812554, 0}},
      {1.74861217, {0.0431969613, -0.108120218, 0, 0.125853673, 0.0237906277, 0}},
  };
  for (std::size_t i = 0; i < 3; ++i) {
    SCOPED_TRACE(rlvr::agg_mode_name(kModes[i]));
    const torch::Tensor lp = lp0.detach().requires_grad_(true);
    const torch::Tensor loss = rlvr::agg_loss(rlvr::low_var_kl(lp, ref), m, kModes[i]);
    loss.backward();
    expect_values(loss, {goldens[i].first});
    expect_values(lp.grad(), goldens[i].second);
  }
}

TEST(RlvrKl, OverflowGivesANaNGradientUnderTheForkOnly) {
  // d = ref − lp = 100: e^d overflows float. The value is the clamp's 10 in
  // both; the fork's gradient at that token is NaN, b178a3c's is 0 (official
  // runs of both give exactly this). The same holds for the PPO ratio.
  const torch::Tensor ref = make({0.0f, -1.5f}, {1, 2});
  const torch::Tensor m = torch::ones({1, 2});
  for (const Convention c : {Convention::fork, Convention::b178a3c}) {
    const torch::Tensor lp = make({-100.0f, -1.0f}, {1, 2}).requires_grad_(true);
    const torch::Tensor loss = rlvr::agg_loss(rlvr::low_var_kl(lp, ref, c), m, AggMode::token_mean, c);
    loss.backward();
    expect_values(loss, {5.05326557});
    EXPECT_EQ(std::isnan(lp.grad()[0][0].item<double>()), c == Convention::fork);
    EXPECT_NEAR(lp.grad()[0][1].item<double>(), 0.196734667, 1e-6);

    rlvr::PolicyLossOptions o;
    o.convention = c;
    const torch::Tensor lp2 = make({100.0f, 0.0f}, {1, 2}).requires_grad_(true);
    const auto out = rlvr::ppo_policy_loss(torch::zeros({1, 2}), lp2, -torch::ones({1, 2}), m, o);
    out.loss.backward();
    expect_values(out.loss, {2.0});
    EXPECT_EQ(std::isnan(lp2.grad()[0][0].item<double>()), c == Convention::fork);
    EXPECT_NEAR(lp2.grad()[0][1].item<double>(), 0.5, 1e-6);
  }
}

// ---------------------------------------------------------------- entropy

TEST(RlvrEntropy, FullVocabularyEntropyEveryAggregationWithLogitGradients) {
  // Row 1's padded positions hold extreme logits; they reach neither the
  // value nor the gradient.
  const torch::Tensor logits0 = make({1.0f, 2.0f, 0.5f, -1.0f, 0.0f, 3.0f, 3.0f, 3.0f, 3.0f, 3.0f,
                                      10.0f, -5.0f, 0.0f, 2.0f, 1.0f, 0.2f, -0.4f, 1.5f, 0.9f, -2.0f,
                                      50.0f, -50.0f, 0.0f, 0.0f, 0.0f, -1.0f, 4.0f, 4.0f, 0.5f, 2.0f},
                                     {2, 3, 5});
  const torch::Tensor m = make({1, 1, 1, 1, 0, 0}, {2, 3});
  expect_values(rlvr::entropy_from_logits(logits0), {1.20648909, 1.60943794, 0.00475692749, 1.230129, 0, 0.964538813});
  const std::vector<std::pair<double, std::vector<double>>> goldens = {
      {1.01270318,
       {0.0190527514, -0.0889645517, 0.027259456, 0.016594097, 0.0260582753, 0, 0, 0, 0, 0,
        -0.00106257224, 1.14623003e-06, 0.000113394344, 0.000670230365, 0.00027740089,
        0.0259978138, 0.025479326, -0.067016229, 0.00435876288, 0.0111803161, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}},
      {2.02540636,
       {0.0381055027, -0.177929103, 0.054518912, 0.033188194, 0.0521165505, 0, 0, 0, 0, 0,
        -0.00212514447, 2.29246007e-06, 0.000226788688, 0.00134046073, 0.00055480178,
        0.0519956276, 0.050958652, -0.134032458, 0.00871752575, 0.0223606322, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}},
      {1.08517849,
       {0.0127018327, -0.0593097024, 0.01817297, 0.011062732, 0.0173721835, 0, 0, 0, 0, 0,
        -0.000708222622, 7.64153413e-07, 7.55962392e-05, 0.000446820311, 0.000184933961,
        0.0519956276, 0.050958652, -0.134032458, 0.00871752575, 0.0223606322, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}},
  };
  for (std::size_t i = 0; i < 3; ++i) {
    SCOPED_TRACE(rlvr::agg_mode_name(kModes[i]));
    const torch::Tensor logits = logits0.detach().requires_grad_(true);
    const torch::Tensor loss = rlvr::entropy_loss(logits, m, kModes[i]);
    loss.backward();
    expect_values(loss, {goldens[i].first});
    // The uniform row's gradient is ±4e-9 in the official float32 run: zero up to rounding.
    const torch::Tensor g = logits.grad();
    const torch::Tensor flat = g.reshape({-1});
    for (std::size_t k = 0; k < goldens[i].second.size(); ++k)
      EXPECT_NEAR(flat[static_cast<std::int64_t>(k)].item<double>(), goldens[i].second[k], 2e-7) << "index " << k;
  }
}

// ---------------------------------------------------------------- majority vote

TEST(RlvrMajorityVote, MostCommonWins) {
  const std::vector<std::optional<std::string>> a = {"3", "7", "7", std::nullopt, "7", "3"};
  const auto v = rlvr::majority_vote(a);
  ASSERT_TRUE(v.label.has_value());
  EXPECT_EQ(*v.label, "7");
  EXPECT_EQ(v.count, 3);
  EXPECT_EQ(rlvr::majority_rewards(a, v.label), (std::vector<double>{0, 1, 1, 0, 1, 0}));
}

TEST(RlvrMajorityVote, TiesGoToTheFirstSeen) {
  const std::vector<std::optional<std::int64_t>> a = {12, 7, 7, 12, 5};
  const auto v = rlvr::majority_vote(a);
  EXPECT_EQ(v.label, std::optional<std::int64_t>(12));
  EXPECT_EQ(v.count, 2);
  const std::vector<std::optional<std::int64_t>> b = {7, 12, 12, 7};
  EXPECT_EQ(rlvr::majority_vote(b).label, std::optional<std::int64_t>(7));
}

TEST(RlvrMajorityVote, NoAnswerCanWinAndIsRewarded) {
  const std::vector<std::optional<std::string>> a = {std::nullopt, "4", std::nullopt, "5"};
  const auto v = rlvr::majority_vote(a);
  EXPECT_FALSE(v.label.has_value());
  EXPECT_EQ(v.count, 2);
  EXPECT_EQ(rlvr::majority_rewards(a, v.label), (std::vector<double>{1, 0, 1, 0}));
  // A tie between "no answer" and an answer goes to whichever came first.
  const std::vector<std::optional<std::string>> b = {"4", std::nullopt, std::nullopt, "4"};
  EXPECT_EQ(rlvr::majority_vote(b).label, std::optional<std::string>("4"));
}

TEST(RlvrMajorityVote, RejectsAnEmptyList) {
  EXPECT_THROW(rlvr::majority_vote(std::vector<std::optional<std::string>>{}), std::invalid_argument);
}

}  // namespace
}  // namespace reglab::testing
