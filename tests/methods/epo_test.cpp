// Golden tests for the `epo` plugin (Entropy-regularized Policy Optimization).
//
// How the numbers were obtained: from WujiangXu/EPO @ 5b6fa98 the functions
// DataParallelPPOActor.generate_entropy_penalty and
// DataParallelPPOActor._calculate_epoch_based_entropy_weight
// (verl/workers/actor/dp_actor.py), compute_policy_loss, agg_loss and
// kl_penalty (verl/trainer/ppo/core_algos.py) and masked_mean and
// entropy_from_logits (verl/utils/torch_functional.py) were loaded on their
// own from the files as they are (decorators dropped; torch, numpy and the
// torch_functional namespace supplied; `self` unused) and run with Debian's
// /usr/bin/python3 and python3-torch 1.13 in float64 on the inputs below. The
// few lines of update_policy that assemble the loss (pg − entropy_coeff·
// [agg(entropy) − entropy_smooth_coeff·agg(mask·w)] + kl_loss_coef·agg(k3),
// the mask from generate_entropy_penalty with rollout_step 0, w from
// _calculate_epoch_based_entropy_weight(epoch, 150)) and the trainer's history
// (ray_trainer.py: one entry per step, appended before the update, averaged
// with np.mean(axis=0); the entry is rollout_loop.py's Σ(entropy·mask)/Σmask
// of the step's batch) were replayed by hand around them, with the band term
// applied at every call (see plugins/epo/README.md: the official turn gate
// would switch it off for a single-turn episode). Gradients are
// torch.autograd's with respect to the logits (a leaf) and to the log-probs
// (log_softmax(logits) at the sampled tokens, retain_grad). The
// "differentiable" variant has no official counterpart: its numbers come from
// an independent re-derivation of the formula in the README, with the same
// inputs. The official mask is float32 (torch.where of Python scalars), so
// its 0.1 differs from a double 0.1 by 1.5e-9 relative; scaled by
// entropy_coeff that is below 1e-12 in the loss.
#include <gtest/gtest.h>

#include <torch/types.h>

#include <cmath>
#include <cstdint>
#include <iterator>
#include <stdexcept>
#include <string>
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
// old = log_prob − kOldOffset, ref = log_prob + kRefOffset (one k3 value beyond the clamp at 10).
const std::vector<std::vector<double>> kOldOffset = {{0.1, -0.3, 0.05}, {-0.25, 1.5, 0.0}, {-1.4, 0.3, 0.0}};
const std::vector<std::vector<double>> kRefOffset = {{0.2, -0.1, 3.0}, {0.05, -0.4, 0.0}, {0.3, 0.0, 0.0}};

torch::Tensor cube(const Cube& c) {
  std::vector<double> flat;
  for (const auto& row : c)
    for (const auto& pos : row) flat.insert(flat.end(), pos.begin(), pos.end());
  return torch::tensor(flat, torch::kDouble).reshape({3, 3, 4});
}

torch::Tensor matrix(const std::vector<std::vector<double>>& m) {
  std::vector<double> flat;
  for (const auto& r : m) flat.insert(flat.end(), r.begin(), r.end());
  return torch::tensor(flat, torch::kDouble).reshape({3, 3});
}

// The three logit sets: L1, L2 = 0.6·L1 + 0.3·(0, 1, 2, 3), L3 = 1.5·L1 reversed over the vocabulary.
torch::Tensor logits_set(int which) {
  const torch::Tensor l1 = cube(kL1);
  if (which == 1) return l1;
  if (which == 2) return 0.6 * l1 + 0.3 * torch::arange(4, torch::kDouble);
  return 1.5 * l1.flip({-1});
}

struct Built {
  RlvrBatch batch;
  torch::Tensor logits;    // leaf
  torch::Tensor log_prob;  // non-leaf, gradient retained
};

Built build(int which, torch::ScalarType dtype = torch::kDouble) {
  Built b;
  b.logits = logits_set(which).to(dtype).requires_grad_(true);
  std::vector<std::int64_t> flat_tokens;
  for (const auto& r : kTokens) flat_tokens.insert(flat_tokens.end(), r.begin(), r.end());
  const torch::Tensor tokens = torch::tensor(flat_tokens, torch::kLong).reshape({3, 3});
  b.log_prob = torch::log_softmax(b.logits, -1).gather(-1, tokens.unsqueeze(-1)).squeeze(-1);
  b.log_prob.retain_grad();
  const torch::Tensor mask = matrix(kMask).to(dtype);
  b.batch.log_prob = b.log_prob;
  b.batch.logits = b.logits;
  b.batch.old_log_prob = b.log_prob.detach() - matrix(kOldOffset).to(dtype);
  b.batch.ref_log_prob = b.log_prob.detach() + matrix(kRefOffset).to(dtype);
  b.batch.advantages = torch::tensor(kRowAdvantage, dtype).unsqueeze(-1) * mask;
  b.batch.response_mask = mask;
  b.batch.rows = torch::arange(3, torch::kLong);
  return b;
}

struct CallResult {
  double loss;
  double clip_fraction;
  torch::Tensor grad_logits;
  torch::Tensor grad_log_prob;
};

CallResult call(MethodSession& s, int which, std::int64_t epoch, std::int64_t step,
                torch::ScalarType dtype = torch::kDouble) {
  Built b = build(which, dtype);
  RlvrLoss out = s.handle().policy_loss(b.batch, s.context(epoch, step));
  out.loss.backward();
  return {out.loss.item<double>(), out.clip_fraction, b.logits.grad(), b.log_prob.grad()};
}

// The four calls every sequence makes: L1 and L2 in RL step 0, L3 in steps 1 and 80.
struct Call {
  int logits;
  std::int64_t epoch;
};
constexpr Call kCalls[] = {{1, 0}, {2, 0}, {3, 1}, {3, 80}};

std::vector<CallResult> run_sequence(const std::string& params) {
  MethodSession s("epo", params, 0, 4, 150, torch::kDouble, kRlvr);
  std::vector<CallResult> out;
  std::int64_t step = 0;
  for (const Call& c : kCalls) out.push_back(call(s, c.logits, c.epoch, step++));
  return out;
}

void expect_values(const torch::Tensor& t, const std::vector<double>& expected, double tol, const std::string& what) {
  ASSERT_TRUE(t.defined()) << what;
  const torch::Tensor flat = t.detach().to(torch::kDouble).contiguous().view(-1);
  ASSERT_EQ(flat.numel(), static_cast<std::int64_t>(expected.size())) << what;
  for (std::size_t i = 0; i < expected.size(); ++i)
    EXPECT_NEAR(flat[static_cast<std::int64_t>(i)].item<double>(), expected[i], tol) << what << " at " << i;
}

void expect_losses(const std::vector<CallResult>& got, const std::vector<double>& expected) {
  ASSERT_EQ(got.size(), expected.size());
  for (std::size_t i = 0; i < expected.size(); ++i) EXPECT_NEAR(got[i].loss, expected[i], 1e-11) << "call " << i;
}

constexpr double kGradTol = 1e-12;

// ---- official defaults: band (0, 2·H̄), penalty 0.1, phase weights over 150 steps ----

// History after each call: [e1], [e1], [e1, e3], [e1, e3, e3] with
// e1 = 0.6613485727878166, e3 = 0.5355891481922952; one third of the 9
// positions lies outside the band at every call.
TEST(EpoGolden, DefaultsMatchTheOfficialLossOverSteps) {
  const auto got = run_sequence("{}");
  expect_losses(got, {0.48773838172274414, 0.4873766424188345, 0.4878639907795426, 0.4878542835649796});
  for (const auto& r : got) EXPECT_NEAR(r.clip_fraction, 0.2857142853061225, 1e-12);
  expect_values(got[0].grad_logits,
                {-0.006427993983896418, 0.0024222443883235908, 0.0013284522518788458, 0.0026772973436939834,
                 0.02440508395300868, -0.06245009086895483, 0.019974440541435767, 0.01807056637451038,
                 -0.0023798652440639905, 0.00028982892826684247, 0.000788780097891029, 0.0013012562179061519,
                 -9.204575649084354e-06, 3.360441780602035e-05, -1.3271513787188818e-05, -1.1128328369747115e-05,
                 -0.00011762695078599276, -0.0001260606973778471, -0.00011762695078599276, 0.0003613145989498326,
                 0.0, 0.0, 0.0, 0.0,
                 0.00022788840926218624, -0.00024091709006878964, -6.061539139321865e-07, 1.3634834720535576e-05,
                 -0.001714051415474375, -0.0006314932467687133, 0.0033859352042731345, -0.0010403905420300543,
                 0.0, 0.0, 0.0, 0.0},
                kGradTol, "call 0 d/dlogits");
  expect_values(got[0].grad_log_prob,
                {-0.12662153725370065, -0.08452899284006343, -0.12014526798562382, -7.324442328968529e-05,
                 0.00047097136213341347, 0.0, -0.0004997982958231499, 0.09641848611768811, 0.0},
                kGradTol, "call 0 d/dlog_prob");
  expect_values(got[2].grad_logits,
                {-0.12620366066866473, 0.0001460564491968134, 0.00035960845089412285, 0.12569799576857382,
                 0.016632435125446543, -0.06519995930081905, 0.022462827043954636, 0.026104697131417883,
                 -0.12000597652811157, 6.573747584348233e-05, 1.4641617318366671e-05, 0.1199255974349497,
                 -3.837382812828644e-06, -7.865974708571356e-05, 8.518907016542382e-05, -2.6919402668816187e-06,
                 -0.00010570261791229387, -0.00011748179947247555, -0.0001303051452761684, 0.0003534895626609378,
                 0.0, 0.0, 0.0, 0.0,
                 1.572847109525009e-06, -0.00049994154920366, 0.00027304411228779924, 0.00022532458980633572,
                 -0.00011354183414698727, -0.09601114831204627, 0.09636479374186724, -0.00024010359567399624,
                 0.0, 0.0, 0.0, 0.0},
                kGradTol, "call 2 d/dlogits");
  expect_values(got[2].grad_log_prob,
                {-0.12662153725370062, -0.08452899284006343, -0.12014526798562379, -7.324442328968486e-05,
                 0.00047097136213341336, 0.0, -0.0004997982958231495, 0.0964184861176881, 0.0},
                kGradTol, "call 2 d/dlog_prob");
}

TEST(EpoGolden, Float32BatchesGiveTheSameLoss) {
  // The paradigm's policy runs in float32.
  MethodSession s("epo", R"({"max_ratio": 1.25})", 0, 4, 150, torch::kFloat, kRlvr);
  const std::vector<double> expected = {0.48775266743722234, 0.48741949956226904, 0.4878782013102121,
                                        0.4878636404883676};
  std::int64_t step = 0;
  for (std::size_t i = 0; i < std::size(kCalls); ++i) {
    const CallResult r = call(s, kCalls[i].logits, kCalls[i].epoch, step++, torch::kFloat);
    EXPECT_NEAR(r.loss, expected[i], 2e-6) << "call " << i;
    EXPECT_EQ(r.grad_logits.scalar_type(), torch::kFloat);
  }
}

TEST(EpoGolden, TheConstantMaskShiftsTheLossButNotTheGradient) {
  const auto with = run_sequence("{}");
  const auto without = run_sequence(R"({"smooth": false})");
  expect_losses(without, {0.4877098102937878, 0.48734807098987815, 0.48783556971820363, 0.48783556971820363});
  for (std::size_t i = 0; i < with.size(); ++i) {
    EXPECT_GT(std::abs(with[i].loss - without[i].loss), 1e-6) << "call " << i;
    EXPECT_TRUE(torch::allclose(with[i].grad_logits, without[i].grad_logits, 0.0, 1e-15)) << "call " << i;
    EXPECT_TRUE(torch::allclose(with[i].grad_log_prob, without[i].grad_log_prob, 0.0, 1e-15)) << "call " << i;
  }
}

TEST(EpoGolden, NarrowBandAndSequenceMode) {
  // Band (0.5, 1.5)·H̄: out-of-band fractions 7/9, 5/9, 8/9, 8/9 by token;
  // by row (seq mode, means over all three positions) 0, 2/3, 0, 0.
  expect_losses(run_sequence(R"({"min_ratio": 0.5, "max_ratio": 1.5})"),
                {0.4877812388661787, 0.4874052138477909, 0.48792083290222055, 0.4878917112585316});
  // Band (0, 1.25)·H̄: the position of entropy 0.7846 in L3 is outside at
  // step 1 only because H̄ already holds step 1's own entry (1.25·0.5985 =
  // 0.748; with step 0's entry alone the edge would be 0.827).
  expect_losses(run_sequence(R"({"max_ratio": 1.25})"),
                {0.48775266743722234, 0.48741949956226904, 0.4878782013102121, 0.4878636404883676});
  expect_losses(run_sequence(R"({"min_ratio": 0.5, "max_ratio": 1.5, "mask_mode": "seq"})"),
                {0.4877098102937878, 0.48741949956226904, 0.48783556971820363, 0.48783556971820363});
}

TEST(EpoGolden, EntropyCoefficientZeroDropsTheWholeBracket) {
  const auto got = run_sequence(R"({"entropy_coeff": 0})");
  expect_losses(got, {0.4883711588656308, 0.4883711588656308, 0.4883711588656308, 0.4883711588656308});
  // Only the policy and KL terms remain: row 1's logits get the KL's gradient only.
  EXPECT_NEAR(got[0].grad_logits[1][0][0].item<double>(), 1.6415419535921477e-06, kGradTol);
}

TEST(EpoGolden, DifferentiablePenaltyPullsEntropyBackIntoTheBand) {
  const auto got = run_sequence(R"({"penalty": "differentiable", "min_ratio": 0.5, "max_ratio": 1.5})");
  expect_losses(got, {0.4877271357335508, 0.48736063064313545, 0.4878631821488786, 0.48785394724133724});
  expect_values(got[2].grad_logits,
                {-0.1262039276487795, 0.00014594568029249324, 0.00035937256531876245, 0.12569860940316824,
                 0.016633142706292386, -0.06519962471696253, 0.022462649371680958, 0.026103832638989195,
                 -0.12000608841485462, 6.567874044121785e-05, 1.4625885951140189e-05, 0.11992578378846225,
                 -4.262670206917869e-06, -7.926675873742456e-05, 8.651692712053156e-05, -2.987498176189206e-06,
                 -0.00010521237813193482, -0.0001174421306806707, -0.00013087472264013714, 0.00035352923145274266,
                 0.0, 0.0, 0.0, 0.0,
                 1.572847109525009e-06, -0.00049994154920366, 0.00027304411228779924, 0.00022532458980633572,
                 -0.00011365323190402976, -0.09601076890233858, 0.09636473525124609, -0.00024031311700348934,
                 0.0, 0.0, 0.0, 0.0},
                kGradTol, "call 2 d/dlogits");
  // The penalty acts on the entropy only, never on the sampled tokens' log-probs.
  expect_values(got[2].grad_log_prob,
                {-0.12662153725370062, -0.08452899284006343, -0.12014526798562379, -7.324442328968486e-05,
                 0.00047097136213341336, 0.0, -0.0004997982958231495, 0.0964184861176881, 0.0},
                kGradTol, "call 2 d/dlog_prob");
}

TEST(EpoGolden, DifferentiableSequencePenaltyReachesEveryPositionOfAnOutlyingRow) {
  const auto got =
      run_sequence(R"({"penalty": "differentiable", "min_ratio": 0.5, "max_ratio": 1.5, "mask_mode": "seq"})");
  expect_losses(got, {0.4877098102937878, 0.4873505557846265, 0.48783556971820363, 0.48783556971820363});
  // Row 2's mean runs over its padding position too (as the official seq
  // mode's entropy.mean(-1) does), so the padding logits get a gradient.
  expect_values(got[1].grad_logits,
                {-0.04238582750142071, 0.01093038572970969, 0.010293221544254117, 0.021162220227456903,
                 0.014216939732545597, -0.06644911834574624, 0.0229924177983507, 0.029239760814849948,
                 -0.027169314168304978, 0.0034171438705771612, 0.008412936933550382, 0.01533923336417746,
                 -1.0810026074309558e-05, 2.8077720774352474e-05, -9.366242497737266e-06, -7.901452202305623e-06,
                 -8.342441202155394e-05, -0.00010835796294126438, -0.00012824382082873612, 0.0003200261957915545,
                 0.0, 0.0, 0.0, 0.0,
                 0.0001521328531564742, -0.0002606690171055629, 4.90962206531807e-06, 0.00010362654188377058,
                 -0.0040917283850145795, -0.003032479992059195, 0.014573659580373455, -0.0074494512032996845,
                 8.038398624576211e-07, 5.034986525699367e-07, -1.0538754433899331e-07, -1.2019509706885648e-06},
                kGradTol, "call 1 d/dlogits");
}

// With an empty band (0, 0) every position is outside, so with unit
// coefficients and penalty the loss rises by exactly w·7/(7 + 1e-8) over the
// same run without smoothing; w from the official
// _calculate_epoch_based_entropy_weight(epoch, max_epochs).
double smoothing_shift(const std::string& extra, std::int64_t epoch, std::int64_t total_epochs) {
  const std::string base = R"("entropy_coeff": 1, "smooth_coeff": 1, "out_range_penalty": 1, "max_ratio": 0)";
  MethodSession on("epo", "{" + base + extra + "}", 0, 4, total_epochs, torch::kDouble, kRlvr);
  MethodSession off("epo", "{" + base + R"(, "smooth": false)" + extra + "}", 0, 4, total_epochs, torch::kDouble,
                    kRlvr);
  return (call(on, 1, epoch, 0).loss - call(off, 1, epoch, 0).loss) * (7.0 + 1e-8) / 7.0;
}

TEST(EpoPhaseWeight, FollowsTheOfficialScheduleOver150Steps) {
  const std::vector<std::pair<std::int64_t, double>> official = {
      {0, 1.0},   {1, 0.994737149870629},    {37, 0.8745634693205331},  {75, 0.8270670566473225},
      {76, 0.7686315513218586}, {80, 0.6549846024623855}, {149, 0.04145513373818067},
      {150, 0.03982965469429116}, {200, 0.03982965469429116}};
  for (const auto& [epoch, w] : official) EXPECT_NEAR(smoothing_shift("", epoch, 10), w, 1e-12) << "epoch " << epoch;
  // phase_epochs 0: the schedule spans the run's RL steps (10 here).
  const std::vector<std::pair<std::int64_t, double>> ten = {
      {0, 1.0}, {5, 0.8270670566473225}, {6, 0.43904930887522114}, {9, 0.07257436263152998}};
  for (const auto& [epoch, w] : ten)
    EXPECT_NEAR(smoothing_shift(R"(, "phase_epochs": 0)", epoch, 10), w, 1e-12) << "epoch " << epoch;
  EXPECT_NEAR(smoothing_shift(R"(, "phase_weights": false)", 80, 150), 1.0, 1e-12);
}

TEST(EpoState, HistoryRoundTripsAndResumesMidStep) {
  MethodSession a("epo", "{}", 0, 4, 150, torch::kDouble, kRlvr);
  call(a, 1, 0, 0);
  const StateDict state = a.handle().state_dict();
  ASSERT_EQ(state.at("history").numel(), 1);
  EXPECT_NEAR(state.at("history")[0].item<double>(), 0.6613485727878166, 1e-14);
  EXPECT_EQ(state.at("last_epoch").item<std::int64_t>(), 0);

  // Resumed inside step 0: the step's entry is already there, L2 adds none.
  MethodSession b("epo", "{}", 0, 4, 150, torch::kDouble, kRlvr);
  b.handle().load_state_dict(state);
  EXPECT_NEAR(call(b, 2, 0, 1).loss, 0.4873766424188345, 1e-11);
  EXPECT_NEAR(call(b, 3, 1, 2).loss, 0.4878639907795426, 1e-11);
  EXPECT_NEAR(call(b, 3, 80, 3).loss, 0.4878542835649796, 1e-11);
  EXPECT_EQ(b.handle().state_dict().at("history").numel(), 3);

  MethodSession c("epo", "{}", 0, 4, 150, torch::kDouble, kRlvr);
  EXPECT_THROW(c.handle().load_state_dict({}), std::exception);
}

TEST(EpoRewards, GroundTruthCheck) {
  MethodSession s("epo", "{}", 0, 4, 10, torch::kDouble, kRlvr);
  EXPECT_TRUE(s.handle().rlvr_requirements().ground_truth);
  RlvrGroup g;
  g.answers = {7, std::nullopt, 3, 7};
  g.truth = 7;
  EXPECT_EQ(s.handle().rewards(g, s.context(0, 0)), (std::vector<double>{1, 0, 0, 1}));
  g.answers = {std::nullopt};
  EXPECT_EQ(s.handle().rewards(g, s.context(0, 0)), (std::vector<double>{0}));
  g.truth.reset();
  EXPECT_THROW(s.handle().rewards(g, s.context(0, 0)), std::exception);
}

TEST(EpoParams, BadValuesAreRefused) {
  const PluginInfo& info = *build_plugin("epo").info;
  for (const char* bad :
       {R"({"entropy_coeff": -0.1})", R"({"kl_coef": -1})", R"({"min_ratio": -0.1})", R"({"out_range_penalty": -1})",
        R"({"mask_mode": "turn"})", R"({"penalty": "hinge"})", R"({"loss_agg": "seq-mean-token-sum-norm"})",
        R"({"clip_ratio_c": 1.0})", R"({"clip_low": 1.5})", R"({"phase_epochs": -1})",
        R"({"unknown": 1})"})
    EXPECT_THROW(plugins::resolve_params(info, bad), std::invalid_argument) << bad;
  EXPECT_NO_THROW(plugins::resolve_params(info, R"({"penalty": "differentiable", "mask_mode": "seq"})"));
  // A band whose lower edge lies above its upper one is refused at setup.
  EXPECT_THROW(MethodSession("epo", R"({"min_ratio": 3, "max_ratio": 2})", 0, 4, 10, torch::kDouble, kRlvr),
               std::exception);
}

TEST(EpoBatch, NeedsLogits) {
  MethodSession s("epo", "{}", 0, 4, 10, torch::kDouble, kRlvr);
  Built b = build(1);
  b.batch.logits = torch::Tensor();
  EXPECT_THROW(s.handle().policy_loss(b.batch, s.context(0, 0)), std::exception);
}

}  // namespace
}  // namespace reglab::testing
