// Golden tests for the `ps_kd` plugin (Progressive Self-Knowledge
// Distillation): hand cases, and multi-step sequences (state carried across
// steps and epochs, duplicate indices, prior state) against an independent
// re-implementation of the official semantics (lgcnsai/PS-KD-Pytorch @
// 9aa0828, main.py::train and loss/pskd_loss.py), run in Debian's
// python3-torch 1.13:
//
//   import torch, torch.nn.functional as F
//   def last_write(state, idx, rows):          # plain index assignment: the last duplicate wins
//       for j, i in enumerate(idx):
//           state[i] = rows[j]
//   def pskd(steps, N, K, E, alpha_T=0.8, dtype=torch.float64, P0=None):
//       P = torch.zeros(N, K, dtype=dtype) if P0 is None else torch.tensor(P0, dtype=dtype)
//       out = []
//       for z, y, idx, epoch in steps:
//           z = torch.tensor(z, dtype=dtype, requires_grad=True); y = torch.tensor(y)
//           a = max(0.0, alpha_T * ((epoch + 1) / E))
//           onehot = torch.eye(K, dtype=dtype)[y]
//           if epoch == 0:
//               last_write(P, idx, onehot)
//           t = (1 - a) * onehot + a * P[idx]
//           loss = (-t * F.log_softmax(z, 1)).sum(1).mean()
//           loss.backward()
//           last_write(P, idx, torch.softmax(z.detach(), 1))   # after the optimizer step
//           out.append((loss.item(), z.grad.tolist(), P.tolist()))
//       return out
//   pskd(kStepsA, 4, 3, 4); pskd(kStepsB, 4, 3, 3, alpha_T=0.5, P0=kPriorB)
//
// (`P[idx] = rows` with duplicates gives the same rows as last_write on the
// CPU; the float32 runs agree with these float64 numbers to 1.1e-7.)
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <cmath>
#include <cstdint>
#include <functional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "methods/golden_cases.h"
#include "methods/path_cases.h"
#include "methods/method_harness.h"
#include "plugins/method_handle.h"
#include "probe/probe.h"

namespace reglab::testing {
namespace {

using nlohmann::json;

const double kLn3 = std::log(3.0);

struct Step {
  Rows logits;
  std::vector<std::int64_t> labels;
  std::vector<std::int64_t> indices;
  std::int64_t epoch;
};

json steps_json(const std::vector<Step>& steps) {
  json out = json::array();
  for (const Step& s : steps)
    out.push_back({{"logits", s.logits}, {"labels", s.labels}, {"indices", s.indices}, {"epoch", s.epoch}});
  return out;
}

// ---- sequence A: N = 4, K = 3, E = 4, α_T 0.8 (default) ----
// Epoch 0 (two steps; index 1 twice, same label), epoch 1 (α = 0.4), epoch 3
// (α = 0.8; index 3 twice).
const std::vector<Step> kStepsA = {
    {{{0.5, -1.0, 2.0}, {1.2, 0.3, -0.4}, {-0.7, 0.9, 0.1}}, {2, 0, 2}, {1, 3, 1}, 0},
    {{{0.0, 0.4, -0.2}, {1.5, -0.5, 0.3}}, {1, 0}, {0, 2}, 0},
    {{{0.3, 0.1, -0.9}, {-1.0, 2.0, 0.5}, {0.8, 0.8, 0.0}}, {2, 0, 1}, {1, 0, 2}, 1},
    {{{1.0, -1.0, 0.0}, {0.2, 0.3, 0.4}}, {0, 2}, {3, 3}, 3},
};
const double kLossA[] = {0.6727033551970593, 0.5796730585349138, 1.7218426708278283, 1.0170452693071357};
const Rows kGradA[] = {
    {{0.05843013071334556, 0.013037524423562482, -0.07146765513690803},
     {-0.12609656457350038, 0.0842561825604265, 0.04184038201307386},
     {0.04075690452976672, 0.2018702696539107, -0.24262717418367746}},
    {{0.1510320571405532, -0.2746866470221551, 0.12365458988160193},
     {-0.15193892524413272, 0.04710494413572513, 0.10483398110840753}},
    {{0.14093550786188655, 0.047987699081139264, -0.18892320694302586},
     {-0.22723769081391837, 0.20178211740233334, 0.025455573411585056},
     {0.043275409620821804, -0.07646962221380695, 0.033194212592985134}},
    {{-0.016063644624388678, -0.05609213248732161, 0.07215577711171019},
     {-0.0983793198339359, 0.06500507769416178, 0.03337424213977414}},
};
const Rows kStateA[] = {
    {{0.0, 0.0, 0.0},
     {0.12227071358930015, 0.6056108089617321, 0.27211847744896767},
     {0.0, 0.0, 0.0},
     {0.6217103062794989, 0.25276854768127954, 0.12552114603922154}},
    {{0.3020641142811064, 0.45062670595568977, 0.24730917976320385},
     {0.12227071358930015, 0.6056108089617321, 0.27211847744896767},
     {0.6961221495117346, 0.09420988827145026, 0.20966796221681505},
     {0.6217103062794989, 0.25276854768127954, 0.12552114603922154}},
    {{0.039112573270687456, 0.7855970345892759, 0.1752903921400367},
     {0.47171480902137986, 0.38620742082811077, 0.14207777015050943},
     {0.4082750886671593, 0.4082750886671593, 0.18344982266568147},
     {0.6217103062794989, 0.25276854768127954, 0.12552114603922154}},
    {{0.039112573270687456, 0.7855970345892759, 0.1752903921400367},
     {0.47171480902137986, 0.38620742082811077, 0.14207777015050943},
     {0.4082750886671593, 0.4082750886671593, 0.18344982266568147},
     {0.3006096053557273, 0.3322249935333472, 0.3671654011109255}},
};

// ---- case B: prior state, α_T 0.5, E = 3, N = 4 ----
// Epoch 0 with index 0 twice under different labels (1 then 2): P[0] becomes
// onehot(2) and both rows read it, so row 0's target is (5/6)·e1 + (1/6)·e2.
// Epoch 2 (α = 0.5) reads the prior rows 1 and 2, and row 3, which is zero:
// z = 0, t = 0.5·e2, so its gradient is (p·Σt − t)/3 = (1/18, 1/18, −1/9).
const Rows kPriorB = {{0.1, 0.6, 0.3}, {0.3, 0.3, 0.4}, {0.5, 0.25, 0.25}, {0.0, 0.0, 0.0}};
const std::vector<Step> kStepsB = {
    {{{0.2, -0.4, 0.9}, {1.0, 0.5, -0.5}}, {1, 2}, {0, 0}, 0},
    {{{0.6, 0.0, -0.6}, {-0.2, 0.7, 0.1}, {0.0, 0.0, 0.0}}, {0, 1, 2}, {1, 2, 3}, 2},
};
const double kLossB[] = {1.878972272726583, 0.8216933850521736};
const Rows kGradB[] = {
    {{0.14034834231224802, -0.3396418632991974, 0.19929352098694936},
     {0.2732746936330898, 0.16574948021204575, -0.4390241738451356}},
    {{-0.03648705604945147, 0.048884666893618506, -0.01239761084416709},
     {-0.014025510760709745, -0.03786359730619448, 0.0518891080669042},
     {1.0 / 18.0, 1.0 / 18.0, -1.0 / 9.0}},
};
const Rows kStateB[] = {
    {{0.5465493872661796, 0.3314989604240915, 0.12195165230972885},
     {0.3, 0.3, 0.4},
     {0.5, 0.25, 0.25},
     {0.0, 0.0, 0.0}},
    {{0.5465493872661796, 0.3314989604240915, 0.12195165230972885},
     {0.5405388318516456, 0.2966540006808555, 0.16280716746749876},
     {0.2079234677178708, 0.5114092080814165, 0.28066732420071266},
     {1.0 / 3.0, 1.0 / 3.0, 1.0 / 3.0}},
};

class PsKdPaths : public PathCaseTest {
 protected:
  double tol() const { return dtype() == torch::kDouble ? golden::kTol64 : golden::kTol32; }
  const char* dtype_name() const { return dtype() == torch::kDouble ? "float64" : "float32"; }
};

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const std::exception& e) {
    return e.what();
  }
  return "(no exception)";
}

TEST(PsKd, DeclaresAlphaT) {
  const PluginInfo& info = *build_plugin("ps_kd").info;
  EXPECT_STREQ(info.name, "ps_kd");
  EXPECT_TRUE(info.paradigms & kClassify);
  ASSERT_EQ(info.num_params, 1u);
  EXPECT_STREQ(info.params[0].name, "alpha_T");
  EXPECT_EQ(info.params[0].type, ParamType::kFloat);
  EXPECT_STREQ(info.params[0].default_value, "0.8");
  EXPECT_TRUE(info.params[0].has_min && info.params[0].has_max);
  EXPECT_EQ(info.params[0].min, 0.0);
  EXPECT_EQ(info.params[0].max, 1.0);
}

// K = 2, z = (0, ln 3): p = (1/4, 3/4); y = 1; E = 2; prior P[0] = (1/2, 1/2).
// Epoch 0: P[0] is overwritten with onehot(1) first, so t = onehot whatever
//   α_0 = 0.4: loss = ln(4/3), gradient p − t = (1/4, −1/4).
// Epoch 1: α_1 = 0.8, t = 0.2·(0, 1) + 0.8·(1/2, 1/2) = (0.4, 0.6):
//   loss = 0.4·ln 4 + 0.6·ln(4/3), gradient p − t = (−0.15, 0.15).
// Either way P[0] ends as sg(p) = (1/4, 3/4).
TEST_P(PsKdPaths, TwoClassesByHandThroughTheProbe) {
  const json request = {{"method", "ps_kd"},
                        {"dtype", dtype_name()},
                        {"total_epochs", 2},
                        {"state", {{"past_predictions", {{0.5, 0.5}}}}},
                        {"logits", {{0.0, kLn3}}},
                        {"labels", {1}}};
  json epoch0 = request;
  epoch0["epoch"] = 0;
  json out = probe::run_probe(epoch0);
  EXPECT_EQ(out["params"], json({{"alpha_T", 0.8}}));
  EXPECT_NEAR(out["steps"][0]["loss"].get<double>(), std::log(4.0 / 3.0), tol());
  expect_json_rows_near(out["steps"][0]["grad_logits"], {{0.25, -0.25}}, tol());
  expect_json_rows_near(out["steps"][0]["state"]["past_predictions"], {{0.25, 0.75}}, tol());

  json epoch1 = request;
  epoch1["epoch"] = 1;
  out = probe::run_probe(epoch1);
  EXPECT_NEAR(out["steps"][0]["loss"].get<double>(), 0.4 * std::log(4.0) + 0.6 * std::log(4.0 / 3.0), tol());
  expect_json_rows_near(out["steps"][0]["grad_logits"], {{-0.15, 0.15}}, tol());
  expect_json_rows_near(out["steps"][0]["state"]["past_predictions"], {{0.25, 0.75}}, tol());
}

// Epoch 0 is plain cross-entropy (golden_cases.h, torch's F.cross_entropy),
// and afterwards P holds softmax(z) = B·grad + onehot row by row.
TEST_P(PsKdPaths, EpochZeroIsCrossEntropy) {
  MethodSession s("ps_kd", "{}", 4, 5, 10, dtype());
  const StepResult r = s.step(make_logits(golden::kLogits, dtype()), golden::kLabels, {0, 1, 2, 3}, 0);
  EXPECT_EQ(r.loss.scalar_type(), dtype());
  EXPECT_EQ(r.grad.scalar_type(), dtype());
  EXPECT_NEAR(r.loss.item<double>(), golden::kCeLoss, tol());
  EXPECT_EQ(made_by(r.loss_fn, "PsKdLossCpu"), !GetParam().tensor_ops) << r.loss_fn;
  expect_rows_near(r.grad, golden::kCeGrad, tol());
  Rows p = golden::kCeGrad;
  for (std::size_t i = 0; i < p.size(); ++i) {
    for (double& v : p[i]) v *= 4.0;
    p[i][static_cast<std::size_t>(golden::kLabels[i])] += 1.0;
  }
  const torch::Tensor state = s.handle().state_dict().at("past_predictions");
  EXPECT_EQ(state.scalar_type(), dtype());
  expect_rows_near(state, p, 4 * tol());
}

// α_T = 0: cross-entropy in every epoch, whatever P holds.
TEST_P(PsKdPaths, AlphaZeroIsCrossEntropyInLaterEpochs) {
  MethodSession s("ps_kd", R"({"alpha_T": 0})", 4, 5, 3, dtype());
  s.handle().load_state_dict({{"past_predictions", torch::full({4, 5}, 0.2, dtype())}});
  const StepResult r = s.step(make_logits(golden::kLogits, dtype()), golden::kLabels, {0, 1, 2, 3}, 2);
  EXPECT_NEAR(r.loss.item<double>(), golden::kCeLoss, tol());
  expect_rows_near(r.grad, golden::kCeGrad, tol());
}

TEST_P(PsKdPaths, ProbeSequenceMatchesReference) {
  const json out = probe::run_probe(
      {{"method", "ps_kd"}, {"dtype", dtype_name()}, {"total_epochs", 4}, {"steps", steps_json(kStepsA)}});
  EXPECT_EQ(out["num_samples"], 4);
  ASSERT_EQ(out["steps"].size(), 4u);
  for (std::size_t i = 0; i < 4; ++i) {
    SCOPED_TRACE("step " + std::to_string(i));
    const json& step = out["steps"][i];
    EXPECT_NEAR(step["loss"].get<double>(), kLossA[i], tol());
    expect_json_rows_near(step["grad_logits"], kGradA[i], tol());
    ASSERT_EQ(step["state"].size(), 1u);
    expect_json_rows_near(step["state"]["past_predictions"], kStateA[i], tol());
  }
}

TEST_P(PsKdPaths, ProbeHonoursPriorState) {
  const json request = {{"method", "ps_kd"},
                        {"dtype", dtype_name()},
                        {"params", {{"alpha_T", 0.5}}},
                        {"total_epochs", 3},
                        {"num_samples", 4},
                        {"state", {{"past_predictions", kPriorB}}},
                        {"steps", steps_json(kStepsB)}};
  const json out = probe::run_probe(request);
  ASSERT_EQ(out["steps"].size(), 2u);
  for (std::size_t i = 0; i < 2; ++i) {
    SCOPED_TRACE("step " + std::to_string(i));
    const json& step = out["steps"][i];
    EXPECT_NEAR(step["loss"].get<double>(), kLossB[i], tol());
    expect_json_rows_near(step["grad_logits"], kGradB[i], tol());
    expect_json_rows_near(step["state"]["past_predictions"], kStateB[i], tol());
  }
  // Without the prior state, the epoch-2 step reads zeros for rows 1 and 2.
  json fresh = request;
  fresh.erase("state");
  EXPECT_GT(std::abs(probe::run_probe(fresh)["steps"][1]["loss"].get<double>() - kLossB[1]), 0.1);
}

// Resuming from state_dict() continues exactly as an uninterrupted run.
TEST_P(PsKdPaths, StateDictRoundTrip) {
  const torch::ScalarType dt = dtype();
  MethodSession first("ps_kd", "{}", 4, 3, 4, dt);
  for (int i = 0; i < 2; ++i)
    first.step(make_logits(kStepsA[i].logits, dt), kStepsA[i].labels, kStepsA[i].indices, kStepsA[i].epoch);
  StateDict saved;
  for (const auto& [name, t] : first.handle().state_dict()) saved[name] = t.clone();
  ASSERT_EQ(saved.size(), 1u);
  expect_rows_near(saved.at("past_predictions"), kStateA[1], tol());

  MethodSession resumed("ps_kd", "{}", 4, 3, 4, dt);
  resumed.handle().load_state_dict(saved);
  for (int i = 2; i < 4; ++i) {
    const Step& s = kStepsA[i];
    const StepResult a = first.step(make_logits(s.logits, dt), s.labels, s.indices, s.epoch);
    const StepResult b = resumed.step(make_logits(s.logits, dt), s.labels, s.indices, s.epoch);
    EXPECT_EQ(a.loss.item<double>(), b.loss.item<double>());
    EXPECT_TRUE(torch::equal(a.grad, b.grad));
    EXPECT_NEAR(b.loss.item<double>(), kLossA[i], tol());
    expect_rows_near(b.grad, kGradA[i], tol());
  }
  EXPECT_TRUE(torch::equal(first.handle().state_dict().at("past_predictions"),
                           resumed.handle().state_dict().at("past_predictions")));
  expect_rows_near(resumed.handle().state_dict().at("past_predictions"), kStateA[3], tol());
}

INSTANTIATE_TEST_SUITE_P(Paths, PsKdPaths, kPathCases, path_case_name);

// After epoch 0, training_loss only reads P; the batch's rows change in
// after_optimizer_step. In epoch 0, training_loss writes the one-hot rows.
TEST(PsKd, StateChangesOnlyAfterTheOptimizerStepAfterEpochZero) {
  MethodSession s("ps_kd", "{}", 2, 3, 2, torch::kDouble);
  const torch::Tensor prior = torch::tensor({0.2, 0.3, 0.5, 0.6, 0.3, 0.1}, torch::kDouble).reshape({2, 3});
  s.handle().load_state_dict({{"past_predictions", prior}});
  NullLogger log;
  NullSink sink;
  Outputs outputs;
  outputs.set("logits", make_logits({{1.0, 0.0, -1.0}}, torch::kDouble).requires_grad_(true));
  const Batch batch{torch::Tensor(), torch::tensor({2L}), torch::tensor({1L})};
  const StepContext later{1, 2, 0, log, sink};
  s.handle().training_loss(batch, outputs, later);
  EXPECT_TRUE(torch::equal(s.handle().state_dict().at("past_predictions"), prior));
  s.handle().after_optimizer_step(batch, outputs, later);
  const torch::Tensor p = torch::softmax(outputs.at("logits").detach(), 1);
  EXPECT_TRUE(torch::allclose(s.handle().state_dict().at("past_predictions")[1], p[0], 0, 1e-15));
  EXPECT_TRUE(torch::equal(s.handle().state_dict().at("past_predictions")[0], prior[0]));

  const StepContext first{0, 2, 1, log, sink};
  s.handle().training_loss(batch, outputs, first);
  expect_rows_near(s.handle().state_dict().at("past_predictions"), {{0.2, 0.3, 0.5}, {0.0, 0.0, 1.0}}, 0.0);
}

TEST(PsKd, RejectsBadShapesIndicesAndState) {
  MethodSession s("ps_kd", "{}", 4, 3, 2, torch::kDouble);
  const torch::Tensor z = make_logits({{0.0, 1.0, 2.0}, {1.0, 0.0, 0.0}}, torch::kDouble);
  EXPECT_NE(error_of([&] { s.step(make_logits({{0.0, 1.0}}, torch::kDouble), {0}, {0}); })
                .find("ps_kd: training_loss: logits must be [B, K] with K = 3 (num_classes), got [1, 2]"),
            std::string::npos);
  EXPECT_NE(error_of([&] { s.step(z, {0, 1}, {0}); }).find("ps_kd: training_loss: indices must be int64 [B] with B = 2"),
            std::string::npos);
  EXPECT_NE(error_of([&] { s.step(z, {0}, {0, 1}); }).find("ps_kd: training_loss: targets must be int64 [B] with B = 2"),
            std::string::npos);
  EXPECT_NE(error_of([&] { s.step(z, {0, 1}, {-1, 0}); })
                .find("ps_kd: training_loss: indices must be in [0, 4) (num_train_samples), got values in [-1, 0]"),
            std::string::npos);
  EXPECT_NE(error_of([&] { s.step(z, {0, 1}, {0, 1}, 2); }).find("ps_kd: needs 0 <= epoch < total_epochs, got epoch 2 of 2"),
            std::string::npos);
  EXPECT_EQ(s.handle().state_dict().at("past_predictions").abs().sum().item<double>(), 0.0);

  EXPECT_NE(error_of([&] { s.handle().load_state_dict({{"target", torch::zeros({4, 3})}}); })
                .find("ps_kd: load_state_dict: the state has no 'past_predictions' tensor"),
            std::string::npos);
  EXPECT_NE(error_of([&] { s.handle().load_state_dict({{"past_predictions", torch::zeros({4, 2})}}); })
                .find("'past_predictions' must be a floating tensor of shape [4, 3] (num_train_samples, num_classes), "
                      "got [4, 2]"),
            std::string::npos);
  EXPECT_THROW(MethodSession("ps_kd", R"({"alpha_T": 1.2})", 1, 2, 1, torch::kDouble), std::invalid_argument);
}

}  // namespace
}  // namespace reglab::testing
