// Golden tests for the `aepo` plugin (Arbitrary Entropy Policy Optimization).
//
// How the numbers were obtained: from 597358816/AEPO @ b353a05 the functions
// compute_policy_loss and compute_grpo_outcome_advantage
// (verl/trainer/core_algos.py), masked_mean (verl/utils/torch_functional.py)
// and _select_by_advantage (verl/trainer/ray_trainer.py) were loaded on their
// own from the files as they are (decorators dropped; torch, numpy,
// defaultdict, the torch_functional namespace and a minimal DataProto with
// `batch`, select_by_index and len supplied) and run with Debian's
// /usr/bin/python3 and python3-torch 1.13 on the inputs below (the loss in
// float64; GRPO on float32 token-level rewards, the score at the last of two
// response positions, uid = the row's prompt, threshold 0.05,
// absolute=False). The entropy estimate of a call is dp_actor.py's
// entropy_loss metric, −masked_mean(log_probs, response_mask); H is the mean
// of a step's values (reduce_metrics). The temperature rule, the first
// quarter of the prompts, k = min(60, selected) (halved while H > target) and
// the replacement of the first k rows were replayed by hand from
// RayPPOTrainer.fit. Gradients are torch.autograd's with respect to the
// logits (a leaf) and the log-probs (log_softmax(logits) at the sampled
// tokens, retain_grad).
#include <gtest/gtest.h>

#include <torch/types.h>

#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <tuple>
#include <vector>

#include "methods/method_harness.h"
#include "plugins/method_handle.h"

namespace reglab::testing {
namespace {

using Cube = std::vector<std::vector<std::vector<double>>>;

// B = 3 rows, T = 3 positions, V = 4 tokens; rows 1 and 2 end one position early.
const Cube kL1 = {{{4.0, 0.1, -0.5, 0.2}, {0.3, 0.2, 0.1, 0.0}, {5.0, -1.0, 0.0, 0.5}},
                  {{-0.2, 3.5, 0.4, 0.1}, {0.0, 0.1, 0.0, -0.1}, {1.0, 1.0, 6.0, 0.0}},
                  {{2.0, 2.1, -3.0, 0.0}, {0.5, -0.5, 4.5, 0.0}, {0.0, 0.0, 0.0, 0.0}}};
const std::vector<std::vector<std::int64_t>> kTokens = {{0, 1, 0}, {1, 3, 2}, {1, 2, 0}};
const std::vector<std::vector<double>> kMask = {{1, 1, 1}, {1, 1, 0}, {1, 1, 0}};
const std::vector<double> kRowAdvantage = {0.8, -1.2, -0.5};
// old = log_prob − kOldOffset: ratios e^offset, clipped above (row 0), below
// and by the dual clip (row 1), below (row 2, position 0).
const std::vector<std::vector<double>> kOldOffset = {{0.1, -0.3, 0.05}, {-0.25, 1.5, 0.0}, {-1.4, 0.3, 0.0}};
// A reference policy away from the current one: a KL term would show in the loss.
const std::vector<std::vector<double>> kRefOffset = {{0.2, -0.1, 3.0}, {0.05, -0.4, 0.0}, {0.3, 0.0, 0.0}};

torch::Tensor matrix(const std::vector<std::vector<double>>& m) {
  std::vector<double> flat;
  for (const auto& r : m) flat.insert(flat.end(), r.begin(), r.end());
  return torch::tensor(flat, torch::kDouble).reshape({3, 3});
}

// L1, L2 = 0.6·L1 + 0.3·(0, 1, 2, 3), L3 = 1.5·L1 reversed over the vocabulary.
torch::Tensor logits_set(int which) {
  std::vector<double> flat;
  for (const auto& row : kL1)
    for (const auto& pos : row) flat.insert(flat.end(), pos.begin(), pos.end());
  const torch::Tensor l1 = torch::tensor(flat, torch::kDouble).reshape({3, 3, 4});
  if (which == 1) return l1;
  if (which == 2) return 0.6 * l1 + 0.3 * torch::arange(4, torch::kDouble);
  return 1.5 * l1.flip({-1});
}

struct CallResult {
  double loss;
  double clip_fraction;
  torch::Tensor grad_logits;
  torch::Tensor grad_log_prob;
};

CallResult call(MethodSession& s, int which, std::int64_t epoch, std::int64_t step,
                torch::ScalarType dtype = torch::kDouble) {
  const torch::Tensor logits = logits_set(which).to(dtype).requires_grad_(true);
  std::vector<std::int64_t> flat_tokens;
  for (const auto& r : kTokens) flat_tokens.insert(flat_tokens.end(), r.begin(), r.end());
  const torch::Tensor tokens = torch::tensor(flat_tokens, torch::kLong).reshape({3, 3});
  torch::Tensor log_prob = torch::log_softmax(logits, -1).gather(-1, tokens.unsqueeze(-1)).squeeze(-1);
  log_prob.retain_grad();
  const torch::Tensor mask = matrix(kMask).to(dtype);
  RlvrBatch b;
  b.log_prob = log_prob;
  b.logits = logits;
  b.old_log_prob = log_prob.detach() - matrix(kOldOffset).to(dtype);
  b.ref_log_prob = log_prob.detach() + matrix(kRefOffset).to(dtype);
  b.advantages = torch::tensor(kRowAdvantage, dtype).unsqueeze(-1) * mask;
  b.response_mask = mask;
  b.rows = torch::arange(3, torch::kLong);
  RlvrLoss out = s.handle().policy_loss(b, s.context(epoch, step));
  out.loss.backward();
  return {out.loss.item<double>(), out.clip_fraction, logits.grad(), log_prob.grad()};
}

void expect_values(const torch::Tensor& t, const std::vector<double>& expected, double tol, const std::string& what) {
  ASSERT_TRUE(t.defined()) << what;
  const torch::Tensor flat = t.detach().to(torch::kDouble).contiguous().view(-1);
  ASSERT_EQ(flat.numel(), static_cast<std::int64_t>(expected.size())) << what;
  for (std::size_t i = 0; i < expected.size(); ++i)
    EXPECT_NEAR(flat[static_cast<std::int64_t>(i)].item<double>(), expected[i], tol) << what << " at " << i;
}

// Per-call entropy estimates −masked_mean(log_prob): L1 0.5353105554428054,
// L2 0.6657168838141204, L3 5.1134240855591795; step of L1 and L2: 0.6005137196284629.
constexpr double kH1 = 0.5353105554428054;
constexpr double kH2 = 0.6657168838141204;
constexpr double kH12 = 0.6005137196284629;

// A sampler that answers with preset rewards and records what it was asked.
struct FakeSampler {
  std::vector<double> rewards;
  std::vector<std::int64_t> prompt;  // the prompt each returned row answers
  std::int64_t calls = 0;
  std::vector<std::int64_t> asked_prompts;
  std::int64_t asked_n = -1;
  double asked_temperature = -1;
  RlvrSampler sampler;

  FakeSampler(std::vector<double> r, std::vector<std::int64_t> p, std::int64_t num_prompts = 9,
              std::int64_t batch_rows = 27)
      : rewards(std::move(r)), prompt(std::move(p)) {
    sampler.num_prompts = num_prompts;
    sampler.batch_rows = batch_rows;
    sampler.sample = [this](const std::vector<std::int64_t>& prompts, std::int64_t n, double temperature) {
      ++calls;
      asked_prompts = prompts;
      asked_n = n;
      asked_temperature = temperature;
      return RlvrRows{rewards, prompt, 42};
    };
  }
};

// Five responses to each of prompts 0 and 1, in that order (the official interleaved repeat).
const std::vector<std::int64_t> kTwoGroups = {0, 0, 0, 0, 0, 1, 1, 1, 1, 1};
// Official GRPO advantages: (1.0954, −0.7303, −0.7303, 1.0954, −0.7303, 0 ×5) → rows 0, 3.
const std::vector<double> kRewardsS0 = {1, 0, 0, 1, 0, 1, 1, 1, 1, 1};
// (−1.7889, 0.4472 ×4, 0.7303, −1.0954, 0.7303, −1.0954, 0.7303) → rows 1, 2, 3, 4, 5, 7, 9.
const std::vector<double> kRewardsS1 = {0, 1, 1, 1, 1, 1, 0, 1, 0, 1};

TEST(AepoGolden, PolicyLossIsEasyR1DualClipPpo) {
  MethodSession s("aepo", "{}", 0, 4, 10, torch::kDouble, kRlvr);
  const CallResult r1 = call(s, 1, 0, 0);
  EXPECT_NEAR(r1.loss, 0.4738744587060778, 1e-13);
  EXPECT_NEAR(r1.clip_fraction, 0.2857142853061225, 1e-13);
  expect_values(r1.grad_log_prob,
                {-0.12630524759963796, -0.08466493938553214, -0.12014526798562382, 0.0, 0.0, 0.0, 0.0,
                 0.09641848611768811, 0.0},
                1e-13, "L1 d/dlog_prob");
  expect_values(r1.grad_logits,
                {-0.006439394959317369, 0.0024263139745212083, 0.0013315893420347842, 0.0026814916427613774,
                 0.02443865372120015, -0.0625519310521665, 0.020008677365370223, 0.018104599965596133,
                 -0.002393388864761631, 0.0002918777266773911, 0.0007934059205590881, 0.0013081052175251847,
                 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
                 0, 0, 0, 0,
                 -0.0017043330881483755, -0.0006269891040380229, 0.0033650524645110944, -0.001033730272324704,
                 0, 0, 0, 0},
                1e-13, "L1 d/dlogits");
  const CallResult r3 = call(s, 3, 0, 1);
  EXPECT_NEAR(r3.loss, 0.4738744587060778, 1e-13);
  expect_values(r3.grad_logits,
                {-0.12588573761215419, 0.00014680238074970644, 0.00036107559241722523, 0.12537785963898726,
                 0.016666309473260123, -0.06530145033959175, 0.022497164632267554, 0.026137976234064084,
                 -0.12000485174109547, 6.63279373766836e-05, 1.4799763289174437e-05, 0.1199237240404296,
                 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
                 0, 0, 0, 0,
                 -0.0001124219628618244, -0.09601496248253075, 0.09636538174263867, -0.00023799729724611178,
                 0, 0, 0, 0},
                1e-13, "L3 d/dlogits");
}

TEST(AepoGolden, Float32BatchesGiveTheSameLossAndEntropy) {
  // The paradigm's policy runs in float32.
  MethodSession s("aepo", "{}", 0, 4, 10, torch::kFloat, kRlvr);
  EXPECT_NEAR(call(s, 1, 0, 0, torch::kFloat).loss, 0.4738744587060778, 2e-6);
  call(s, 2, 0, 1, torch::kFloat);
  FakeSampler f(kRewardsS1, kTwoGroups);
  s.handle().rlvr_extra_rows(f.sampler, s.context(1, 2));
  EXPECT_NEAR(s.handle().state_dict().at("entropy").item<double>(), kH12, 2e-6);
  EXPECT_DOUBLE_EQ(f.asked_temperature, 0.8);
}

TEST(AepoGolden, NoKlAndNoEntropyTermEnterTheLoss) {
  // L1 and L2 share the ratios but not the entropy: an entropy term would
  // tell them apart; the reference log-probs differ from the policy's, so a
  // KL term would move the loss away from the policy-only golden value.
  MethodSession s("aepo", "{}", 0, 4, 10, torch::kDouble, kRlvr);
  EXPECT_NEAR(call(s, 1, 0, 0).loss, call(s, 2, 0, 1).loss, 1e-15);
}

TEST(AepoExtraRows, FirstStepRaisesTheTemperatureAndKeepsTheCorrectAnswers) {
  MethodSession s("aepo", "{}", 0, 4, 10, torch::kDouble, kRlvr);
  FakeSampler f(kRewardsS0, kTwoGroups);
  const auto edit = s.handle().rlvr_extra_rows(f.sampler, s.context(0, 0));
  EXPECT_EQ(f.calls, 1);
  EXPECT_EQ(f.asked_prompts, (std::vector<std::int64_t>{0, 1}));  // ⌊9/4⌋ = 2
  EXPECT_EQ(f.asked_n, 5);
  EXPECT_DOUBLE_EQ(f.asked_temperature, 1.2);  // H = 0 before any update
  ASSERT_TRUE(edit.has_value());
  EXPECT_EQ(edit->keep, (std::vector<std::int64_t>{0, 3}));
  EXPECT_EQ(edit->advantages, (std::vector<double>{1.0, 1.0}));
  EXPECT_EQ(edit->rows.handle, 42);
  EXPECT_EQ(edit->rows.rewards, kRewardsS0);
}

TEST(AepoExtraRows, EntropyAboveTargetLowersTheTemperatureAndHalvesTheRows) {
  MethodSession s("aepo", "{}", 0, 4, 10, torch::kDouble, kRlvr);
  FakeSampler f0(kRewardsS0, kTwoGroups);
  s.handle().rlvr_extra_rows(f0.sampler, s.context(0, 0));
  call(s, 1, 0, 0);
  call(s, 2, 0, 1);  // H = 0.6005 > 0.5
  FakeSampler f1(kRewardsS1, kTwoGroups);
  const auto edit = s.handle().rlvr_extra_rows(f1.sampler, s.context(1, 2));
  EXPECT_DOUBLE_EQ(f1.asked_temperature, 0.8);
  ASSERT_TRUE(edit.has_value());
  EXPECT_EQ(edit->keep, (std::vector<std::int64_t>{1, 2, 3}));  // min(60, 7) // 2
  EXPECT_EQ(edit->advantages, (std::vector<double>{1.0, 1.0, 1.0}));
  EXPECT_NEAR(s.handle().state_dict().at("entropy").item<double>(), kH12, 1e-14);
}

TEST(AepoExtraRows, TheControlledEntropyIsTheMeanOverTheStepsCalls) {
  // kH1 < 0.57 < kH12 < 0.62 < kH2: neither the first nor the last call alone gives these answers.
  for (const auto& [target, temperature, kept] :
       {std::tuple{0.62, 1.2, std::int64_t{7}}, std::tuple{0.57, 0.8, std::int64_t{3}}}) {
    MethodSession s("aepo", R"({"target_entropy": )" + std::to_string(target) + "}", 0, 4, 10, torch::kDouble,
                    kRlvr);
    call(s, 1, 0, 0);
    call(s, 2, 0, 1);
    FakeSampler f(kRewardsS1, kTwoGroups);
    const auto edit = s.handle().rlvr_extra_rows(f.sampler, s.context(1, 2));
    EXPECT_DOUBLE_EQ(f.asked_temperature, temperature) << target;
    ASSERT_TRUE(edit.has_value());
    EXPECT_EQ(static_cast<std::int64_t>(edit->keep.size()), kept) << target;
  }
}

TEST(AepoExtraRows, TemperatureFollowsTheEntropyOverSeveralSteps) {
  MethodSession s("aepo", R"({"target_entropy": 0.55})", 0, 4, 10, torch::kDouble, kRlvr);
  std::vector<double> temperatures;
  auto extra = [&](std::int64_t epoch) {
    FakeSampler f(kRewardsS1, kTwoGroups);
    s.handle().rlvr_extra_rows(f.sampler, s.context(epoch, 0));
    temperatures.push_back(f.asked_temperature);
  };
  extra(0);  // H = 0
  call(s, 1, 0, 0);
  call(s, 2, 0, 1);
  extra(1);  // H = 0.6005
  call(s, 1, 1, 2);
  extra(2);  // H = 0.5353
  call(s, 3, 2, 3);
  extra(3);  // H = 5.1134
  extra(4);  // no update in step 3's place: H unchanged
  EXPECT_EQ(temperatures, (std::vector<double>{1.2, 0.8, 1.2, 0.8, 0.8}));
  EXPECT_NEAR(s.handle().state_dict().at("entropy").item<double>(), 5.1134240855591795, 1e-13);
}

TEST(AepoExtraRows, RowLimitsAndGrouping) {
  {
    MethodSession s("aepo", R"({"max_rows": 4})", 0, 4, 10, torch::kDouble, kRlvr);
    FakeSampler f(kRewardsS1, kTwoGroups);
    EXPECT_EQ(s.handle().rlvr_extra_rows(f.sampler, s.context(0, 0))->keep,
              (std::vector<std::int64_t>{1, 2, 3, 4}));
  }
  {
    MethodSession s("aepo", R"({"max_rows": 5})", 0, 4, 10, torch::kDouble, kRlvr);
    call(s, 1, 0, 0);  // H = 0.5353 > 0.5
    FakeSampler f(kRewardsS1, kTwoGroups);
    EXPECT_EQ(s.handle().rlvr_extra_rows(f.sampler, s.context(1, 1))->keep, (std::vector<std::int64_t>{1, 2}));
  }
  {
    // Rows of two prompts interleaved: groups follow the prompt ids, not the order.
    // Official advantages (1.0954, −1.0954, −0.7303, 0.7303, −0.7303, −1.0954, 1.0954, 0.7303, −0.7303, 0.7303).
    MethodSession s("aepo", "{}", 0, 4, 10, torch::kDouble, kRlvr);
    FakeSampler f({1, 0, 0, 1, 0, 0, 1, 1, 0, 1}, {0, 1, 0, 1, 0, 1, 0, 1, 0, 1});
    EXPECT_EQ(s.handle().rlvr_extra_rows(f.sampler, s.context(0, 0))->keep,
              (std::vector<std::int64_t>{0, 3, 6, 7, 9}));
  }
  {
    // Graded rewards, groups of three: official advantages (−0.9492, 1.0441, −0.0949, 0.5773, 0.5773,
    // −1.1547, −0.5773, −0.5773, 1.1546).
    MethodSession s("aepo", R"({"n": 3})", 0, 4, 10, torch::kDouble, kRlvr);
    FakeSampler f({0.2, 0.9, 0.5, 1, 1, 0, 0.5, 0.5, 0.53}, {0, 0, 0, 1, 1, 1, 2, 2, 2}, 12, 36);
    const auto edit = s.handle().rlvr_extra_rows(f.sampler, s.context(0, 0));
    EXPECT_EQ(f.asked_prompts, (std::vector<std::int64_t>{0, 1, 2}));
    EXPECT_EQ(f.asked_n, 3);
    EXPECT_EQ(edit->keep, (std::vector<std::int64_t>{1, 3, 4, 8}));
  }
  {
    // Never more rows than the ordinary batch holds.
    MethodSession s("aepo", "{}", 0, 4, 10, torch::kDouble, kRlvr);
    FakeSampler f(kRewardsS1, kTwoGroups, 9, 2);
    EXPECT_EQ(s.handle().rlvr_extra_rows(f.sampler, s.context(0, 0))->keep, (std::vector<std::int64_t>{1, 2}));
  }
}

TEST(AepoExtraRows, NothingToReplace) {
  MethodSession s("aepo", "{}", 0, 4, 10, torch::kDouble, kRlvr);
  // Every group uniform: every advantage is 0, nothing passes 0.05.
  FakeSampler none({0, 0, 0, 0, 0, 1, 1, 1, 1, 1}, kTwoGroups);
  EXPECT_FALSE(s.handle().rlvr_extra_rows(none.sampler, s.context(0, 0)).has_value());
  EXPECT_EQ(none.calls, 1);
  // Fewer than four prompts: the first quarter is empty and nothing is sampled.
  FakeSampler few(kRewardsS1, kTwoGroups, 3, 9);
  EXPECT_FALSE(s.handle().rlvr_extra_rows(few.sampler, s.context(1, 0)).has_value());
  EXPECT_EQ(few.calls, 0);
  // One selected row while H > target: min(60, 1) // 2 = 0.
  MethodSession hot("aepo", R"({"target_entropy": 0.1})", 0, 4, 10, torch::kDouble, kRlvr);
  call(hot, 1, 0, 0);
  FakeSampler one({1, 0, 0, 0, 0, 1, 1, 1, 1, 1}, kTwoGroups);
  EXPECT_FALSE(hot.handle().rlvr_extra_rows(one.sampler, hot.context(1, 1)).has_value());
  EXPECT_DOUBLE_EQ(one.asked_temperature, 0.8);
}

TEST(AepoState, RoundTripAndMidStepResume) {
  MethodSession a("aepo", "{}", 0, 4, 10, torch::kDouble, kRlvr);
  call(a, 1, 0, 0);
  const StateDict mid = a.handle().state_dict();
  EXPECT_EQ(mid.at("pending_count").item<std::int64_t>(), 1);
  EXPECT_NEAR(mid.at("pending_sum").item<double>(), kH1, 1e-14);
  EXPECT_EQ(mid.at("entropy").item<double>(), 0.0);

  // Resumed after the first call of step 0: the second call joins the same step.
  MethodSession b("aepo", "{}", 0, 4, 10, torch::kDouble, kRlvr);
  b.handle().load_state_dict(mid);
  call(b, 2, 0, 1);
  FakeSampler f(kRewardsS1, kTwoGroups);
  b.handle().rlvr_extra_rows(f.sampler, b.context(1, 2));
  EXPECT_DOUBLE_EQ(f.asked_temperature, 0.8);
  const StateDict after = b.handle().state_dict();
  EXPECT_NEAR(after.at("entropy").item<double>(), kH12, 1e-14);
  EXPECT_EQ(after.at("pending_count").item<std::int64_t>(), 0);

  MethodSession c("aepo", "{}", 0, 4, 10, torch::kDouble, kRlvr);
  c.handle().load_state_dict(after);
  FakeSampler g(kRewardsS1, kTwoGroups);
  c.handle().rlvr_extra_rows(g.sampler, c.context(1, 2));
  EXPECT_DOUBLE_EQ(g.asked_temperature, 0.8);
  EXPECT_THROW(c.handle().load_state_dict({{"entropy", torch::tensor(0.3)}}), std::exception);
}

TEST(AepoState, OneCallMakesTheStepsEntropy) {
  MethodSession s("aepo", "{}", 0, 4, 10, torch::kDouble, kRlvr);
  call(s, 2, 0, 0);
  FakeSampler f(kRewardsS1, kTwoGroups);
  s.handle().rlvr_extra_rows(f.sampler, s.context(1, 1));
  EXPECT_NEAR(s.handle().state_dict().at("entropy").item<double>(), kH2, 1e-14);
}

TEST(AepoRewards, GroundTruthCheck) {
  MethodSession s("aepo", "{}", 0, 4, 10, torch::kDouble, kRlvr);
  EXPECT_TRUE(s.handle().rlvr_requirements().ground_truth);
  RlvrGroup g;
  g.answers = {7, std::nullopt, 3, 7};
  g.truth = 7;
  EXPECT_EQ(s.handle().rewards(g, s.context(0, 0)), (std::vector<double>{1, 0, 0, 1}));
  g.answers = {std::nullopt, std::nullopt};
  EXPECT_EQ(s.handle().rewards(g, s.context(0, 0)), (std::vector<double>{0, 0}));
  g.truth.reset();
  EXPECT_THROW(s.handle().rewards(g, s.context(0, 0)), std::exception);
}

TEST(AepoParams, BadValuesAreRefused) {
  const PluginInfo& info = *build_plugin("aepo").info;
  for (const char* bad :
       {R"({"n": 1})", R"({"prompt_fraction": 1.5})", R"({"prompt_fraction": -0.1})", R"({"max_rows": -1})",
        R"({"temperature_high": 0})", R"({"temperature_low": -1})", R"({"target_entropy": -0.5})",
        R"({"clip_ratio_c": 1.0})", R"({"clip_low": 1.2})", R"({"loss_agg": "sum"})", R"({"entropy_coef": 0.1})"})
    EXPECT_THROW(plugins::resolve_params(info, bad), std::invalid_argument) << bad;
  EXPECT_NO_THROW(plugins::resolve_params(info, R"({"target_entropy": 0.75, "loss_agg": "seq-mean-token-mean"})"));
}

}  // namespace
}  // namespace reglab::testing
