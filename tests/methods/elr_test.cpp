// Golden tests for the `elr` plugin (Early-Learning Regularization): hand
// cases, and multi-step sequences (state carried, duplicate indices, clamped
// rows, prior state) against an independent re-implementation of the
// official semantics (shengliu66/ELR @ 934af53, ELR/model/loss.py::elr_loss),
// run in Debian's python3-torch 1.13:
//
//   import torch, torch.nn.functional as F
//   def last_write(state, idx, rows):          # plain index assignment: the last duplicate wins
//       for j, i in enumerate(idx):
//           state[i] = rows[j]
//   def elr(steps, N, K, beta=0.7, lam=3.0, dtype=torch.float64, T0=None):
//       T = torch.zeros(N, K, dtype=dtype) if T0 is None else torch.tensor(T0, dtype=dtype)
//       out = []
//       for z, y, idx in steps:
//           z = torch.tensor(z, dtype=dtype, requires_grad=True); y = torch.tensor(y)
//           p = torch.clamp(torch.softmax(z, 1), 1e-4, 1 - 1e-4)
//           q = p.detach()
//           new = beta * T[idx] + (1 - beta) * q / q.sum(1, keepdim=True)   # every row from the old T
//           last_write(T, idx, new)
//           t = T[idx]                                                      # read after all writes
//           loss = F.cross_entropy(z, y) + lam * torch.log(1 - (t * p).sum(1)).mean()
//           loss.backward()
//           out.append((loss.item(), z.grad.tolist(), T.tolist()))
//       return out
//   elr(kStepsA, 4, 3); elr(kStepsB, 3, 3, beta=0.9, lam=7.0, T0=kPriorB)
//
// (`T[list] = rows` with duplicates gives the same rows as last_write on the
// CPU; the float32 runs agree with these float64 numbers to 1.1e-7.)
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <cmath>
#include <cstdint>
#include <functional>
#include <stdexcept>
#include <string>
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

// ---- sequence A: N = 4, K = 3, defaults (β 0.7, λ 3) ----
// Step 0 repeats index 0; step 1's first row, z = (12, 0, 3), has p ≈
// (0.99987, 6.1e-6, 1.23e-4): both clamps active, only p_2 free; step 2 (a
// new epoch) has index 0 twice.
const std::vector<Step> kStepsA = {
    {{{0.5, -1.0, 2.0}, {1.2, 0.3, -0.4}, {-0.7, 0.9, 0.1}}, {2, 0, 1}, {0, 2, 0}, 0},
    {{{12.0, 0.0, 3.0}, {0.2, 0.2, -1.5}, {1.0, -2.0, 0.5}}, {0, 1, 2}, {2, 1, 3}, 0},
    {{{-0.3, 1.1, 0.4}, {2.2, -0.6, 0.0}}, {1, 1}, {0, 0}, 1},
};
const double kLossA[] = {0.027509415717184516, -0.2671685648656913, 1.0766260645741075};
const Rows kGradA[] = {
    {{0.06621984244227817, 0.008626658451948762, -0.07484650089422692},
     {-0.15982338569032736, 0.10306972586924575, 0.05675365982108157},
     {0.054927312640176015, -0.1629998869025801, 0.10807257426240406}},
    {{-0.00013535770476882654, 6.690675425798567e-06, 0.00012866702934285896},
     {0.1477770177863763, -0.185556315546957, 0.03777929776058074},
     {0.1790420477334507, 0.01499922102016154, -0.19404126875361224}},
    {{0.03702792065762316, -0.20978491467039767, 0.17275699401277453},
     {0.38241776296678703, -0.4622020892437887, 0.07978432627700163}},
};
const Rows kStateA[] = {
    {{0.03668121407679005, 0.18168324268851968, 0.08163554323469031},
     {0.0, 0.0, 0.0},
     {0.18651309188384968, 0.07583056430438387, 0.03765634381176647},
     {0.0, 0.0, 0.0}},
    {{0.03668121407679005, 0.18168324268851968, 0.08163554323469031},
     {0.13744548703193118, 0.13744548703193118, 0.02510902593613763},
     {0.43049215246282213, 0.05311139219763544, 0.026396455339542525},
     {0.18112466884458778, 0.009017666270872209, 0.10985766488454007}},
    {{0.28173404912906536, 0.14274912420553343, 0.08551682666540132},
     {0.13744548703193118, 0.13744548703193118, 0.02510902593613763},
     {0.43049215246282213, 0.05311139219763544, 0.026396455339542525},
     {0.18112466884458778, 0.009017666270872209, 0.10985766488454007}},
};

// ---- case B: prior state, CIFAR-100 parameters (β 0.9, λ 7), N = 3 ----
const Rows kPriorB = {{0.2, 0.5, 0.3}, {0.1, 0.1, 0.8}, {0.0, 0.0, 0.0}};
const std::vector<Step> kStepsB = {
    {{{0.4, -0.2, 1.0}, {12.0, 0.0, 3.0}, {0.0, 1.0, -1.0}}, {2, 0, 1}, {1, 0, 2}, 0},
};
const double kLossB = -2.0345837973529286;
const Rows kGradB = {{0.5590579965640108, 0.31643308254178226, -0.8754910791057933},
                     {-5.273724587265916e-05, 7.622036257758075e-06, 4.511520961467931e-05},
                     {0.09757169061308762, -0.13689090963601322, 0.039319219022925525}};
const Rows kStateB = {{0.2799776627147091, 0.4500099990615223, 0.2700123382237687},
                      {0.11966540006808556, 0.10628071674674988, 0.7740538831851647},
                      {0.02447284710547976, 0.06652409557748218, 0.009003057317038045}};

class ElrPaths : public PathCaseTest {
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

TEST(Elr, DeclaresBetaAndLambda) {
  const PluginInfo& info = *build_plugin("elr").info;
  EXPECT_STREQ(info.name, "elr");
  EXPECT_TRUE(info.paradigms & kClassify);
  ASSERT_EQ(info.num_params, 2u);
  EXPECT_STREQ(info.params[0].name, "beta");
  EXPECT_EQ(info.params[0].type, ParamType::kFloat);
  EXPECT_STREQ(info.params[0].default_value, "0.7");
  EXPECT_TRUE(info.params[0].has_min && info.params[0].has_max);
  EXPECT_EQ(info.params[0].min, 0.0);
  EXPECT_EQ(info.params[0].max, 1.0);
  EXPECT_STREQ(info.params[1].name, "lambda");
  EXPECT_STREQ(info.params[1].default_value, "3.0");
  EXPECT_TRUE(info.params[1].has_min);
  EXPECT_FALSE(info.params[1].has_max);
  EXPECT_EQ(info.params[1].min, 0.0);
}

// K = 2, z = (0, ln 3): p = (1/4, 3/4), no clamp; y = 1; T = 0, β 0.7, λ 3.
//   T ← 0.3·p = (0.075, 0.225);  ⟨T, p⟩ = 0.01875 + 0.16875 = 0.1875 = 3/16.
//   loss = ln(4/3) + 3·ln(13/16).
//   d⟨T,p⟩/dz_j = p_j (T_j − ⟨T,p⟩) = (−0.028125, +0.028125);
//   d reg/dz = −(1/(13/16))·that = (9/260)·(1, −1); times λ = 27/260.
//   CE gradient p − onehot = (1/4, −1/4);  total = (23/65, −23/65).
TEST_P(ElrPaths, TwoClassesByHand) {
  MethodSession s("elr", "{}", 1, 2, 1, dtype());
  const StepResult r = s.step(make_logits({{0.0, kLn3}}, dtype()), {1}, {0});
  EXPECT_EQ(r.loss.scalar_type(), dtype());
  EXPECT_EQ(r.grad.scalar_type(), dtype());
  EXPECT_NEAR(r.loss.item<double>(), std::log(4.0 / 3.0) + 3.0 * std::log(13.0 / 16.0), tol());
  EXPECT_EQ(made_by(r.loss_fn, "ElrLossCpu"), !GetParam().tensor_ops) << r.loss_fn;
  expect_rows_near(r.grad, {{23.0 / 65.0, -23.0 / 65.0}}, tol());
  const StateDict state = s.handle().state_dict();
  ASSERT_EQ(state.size(), 1u);
  const torch::Tensor& t = state.at("target");
  EXPECT_EQ(t.scalar_type(), dtype());
  expect_rows_near(t, {{0.075, 0.225}}, tol());
}

// z = (20, 0, 0), y = 0: every entry is clamped, p̃ = (0.9999, 1e-4, 1e-4),
// so the regulariser has no gradient and the gradient is CE's, p − onehot.
//   T ← 0.3·p̃/1.0001;  ⟨T, p̃⟩ = 0.3·(0.9999² + 2e-8)/1.0001.
TEST(Elr, FullyClampedRowHasOnlyTheCrossEntropyGradient) {
  MethodSession s("elr", "{}", 1, 3, 1, torch::kDouble);
  const StepResult r = s.step(make_logits({{20.0, 0.0, 0.0}}, torch::kDouble), {0}, {0});
  const double e = std::exp(-20.0);
  const double inner = 0.3 * (0.9999 * 0.9999 + 2e-8) / 1.0001;
  EXPECT_NEAR(r.loss.item<double>(), std::log1p(2 * e) + 3.0 * std::log(1.0 - inner), 1e-14);
  expect_rows_near(r.grad, {{-2 * e / (1 + 2 * e), e / (1 + 2 * e), e / (1 + 2 * e)}}, 1e-15);
  expect_rows_near(s.handle().state_dict().at("target"), {{0.3 * 0.9999 / 1.0001, 0.3e-4 / 1.0001, 0.3e-4 / 1.0001}},
                   1e-15);
}

// Index 0 twice with β = 0, λ = 1, K = 2: T[0] becomes p̃ of the LAST row,
// (1/4, 3/4), and both rows read it. Rows z = (0, 0), y = 0 and z = (0, ln 3), y = 1:
//   ⟨T, p⟩ = 1/2 and 1/4·1/4 + 3/4·3/4 = 5/8;
//   loss = ½[ln 2 + ln(4/3)] + ½[ln(1/2) + ln(3/8)] = ½ ln(1/2) = −½ ln 2.
// (Had the first row won, T = (1/2, 1/2) and the loss would be ½ ln(4/3) − ½ ln 2.)
TEST_P(ElrPaths, DuplicateIndicesKeepTheLastRow) {
  MethodSession s("elr", R"({"beta": 0, "lambda": 1})", 2, 2, 1, dtype());
  const StepResult r = s.step(make_logits({{0.0, 0.0}, {0.0, kLn3}}, dtype()), {0, 1}, {0, 0});
  EXPECT_NEAR(r.loss.item<double>(), -0.5 * std::log(2.0), tol());
  expect_rows_near(s.handle().state_dict().at("target"), {{0.25, 0.75}, {0.0, 0.0}}, tol());
}

// Three steps through the probe: loss, gradient and state after every step.
TEST_P(ElrPaths, ProbeSequenceMatchesReference) {
  const json out = probe::run_probe(
      {{"method", "elr"}, {"dtype", dtype_name()}, {"num_samples", 4}, {"total_epochs", 2}, {"steps", steps_json(kStepsA)}});
  EXPECT_EQ(out["params"], json({{"beta", 0.7}, {"lambda", 3.0}}));
  ASSERT_EQ(out["steps"].size(), 3u);
  for (std::size_t i = 0; i < 3; ++i) {
    SCOPED_TRACE("step " + std::to_string(i));
    const json& step = out["steps"][i];
    EXPECT_NEAR(step["loss"].get<double>(), kLossA[i], tol());
    expect_json_rows_near(step["grad_logits"], kGradA[i], tol());
    ASSERT_EQ(step["state"].size(), 1u);
    expect_json_rows_near(step["state"]["target"], kStateA[i], tol());
  }
}

// Prior state given to the probe is loaded after setup and used: rows 0 and 1
// start from kPriorB, row 2 from zeros.
TEST_P(ElrPaths, ProbeHonoursPriorStateAndParameters) {
  const json request = {{"method", "elr"},
                        {"dtype", dtype_name()},
                        {"params", {{"beta", 0.9}, {"lambda", 7}}},
                        {"num_samples", 3},
                        {"state", {{"target", kPriorB}}},
                        {"steps", steps_json(kStepsB)}};
  const json out = probe::run_probe(request);
  EXPECT_EQ(out["params"], json({{"beta", 0.9}, {"lambda", 7.0}}));
  EXPECT_NEAR(out["steps"][0]["loss"].get<double>(), kLossB, tol());
  expect_json_rows_near(out["steps"][0]["grad_logits"], kGradB, tol());
  expect_json_rows_near(out["steps"][0]["state"]["target"], kStateB, tol());

  // Without the prior state the same step gives something else.
  json fresh = request;
  fresh.erase("state");
  EXPECT_GT(std::abs(probe::run_probe(fresh)["steps"][0]["loss"].get<double>() - kLossB), 0.1);
}

// Resuming from state_dict() continues exactly as an uninterrupted run.
TEST_P(ElrPaths, StateDictRoundTrip) {
  const torch::ScalarType dt = dtype();
  MethodSession first("elr", "{}", 4, 3, 2, dt);
  for (int i = 0; i < 2; ++i) first.step(make_logits(kStepsA[i].logits, dt), kStepsA[i].labels, kStepsA[i].indices);
  StateDict saved;
  for (const auto& [name, t] : first.handle().state_dict()) saved[name] = t.clone();
  ASSERT_EQ(saved.count("target"), 1u);
  expect_rows_near(saved.at("target"), kStateA[1], tol());

  MethodSession resumed("elr", "{}", 4, 3, 2, dt);
  resumed.handle().load_state_dict(saved);
  const Step& s = kStepsA[2];
  const StepResult a = first.step(make_logits(s.logits, dt), s.labels, s.indices, 1);
  const StepResult b = resumed.step(make_logits(s.logits, dt), s.labels, s.indices, 1);
  EXPECT_EQ(a.loss.item<double>(), b.loss.item<double>());
  EXPECT_TRUE(torch::equal(a.grad, b.grad));
  EXPECT_NEAR(b.loss.item<double>(), kLossA[2], tol());
  expect_rows_near(b.grad, kGradA[2], tol());
  EXPECT_TRUE(torch::equal(first.handle().state_dict().at("target"), resumed.handle().state_dict().at("target")));
  expect_rows_near(resumed.handle().state_dict().at("target"), kStateA[2], tol());
  // A float64 checkpoint loads into a float32 run (cast on copy).
  MethodSession other("elr", "{}", 4, 3, 2, torch::kFloat);
  other.handle().load_state_dict({{"target", saved.at("target").to(torch::kDouble)}});
  expect_rows_near(other.handle().state_dict().at("target"), kStateA[1], golden::kTol32);
}

// λ = 0 is plain cross-entropy; β = 1 keeps T at zero, so log(1 − 0) = 0 and
// again plain cross-entropy (golden_cases.h, torch's F.cross_entropy).
TEST_P(ElrPaths, ReducesToCrossEntropy) {
  const torch::Tensor z = make_logits(golden::kLogits, dtype());
  const std::vector<std::int64_t> idx = {0, 1, 2, 3};
  for (const char* params : {R"({"lambda": 0})", R"({"beta": 1.0})"}) {
    SCOPED_TRACE(params);
    MethodSession s("elr", params, 4, 5, 1, dtype());
    const StepResult r = s.step(z, golden::kLabels, idx);
    EXPECT_NEAR(r.loss.item<double>(), golden::kCeLoss, tol());
    expect_rows_near(r.grad, golden::kCeGrad, tol());
  }
  MethodSession s("elr", R"({"beta": 1.0})", 4, 5, 1, dtype());
  s.step(z, golden::kLabels, idx);
  EXPECT_EQ(s.handle().state_dict().at("target").abs().sum().item<double>(), 0.0);
}

INSTANTIATE_TEST_SUITE_P(Paths, ElrPaths, kPathCases, path_case_name);

TEST(Elr, RejectsBadShapesIndicesAndState) {
  MethodSession s("elr", "{}", 4, 3, 1, torch::kDouble);
  const torch::Tensor z = make_logits({{0.0, 1.0, 2.0}, {1.0, 0.0, 0.0}}, torch::kDouble);
  EXPECT_NE(error_of([&] { s.step(make_logits({{0.0, 1.0}}, torch::kDouble), {0}, {0}); })
                .find("elr: logits must be [B, K] with K = 3 (num_classes), got [1, 2]"),
            std::string::npos);
  EXPECT_NE(error_of([&] { s.step(z, {0, 1}, {0}); }).find("elr: indices must be int64 [B] with B = 2"),
            std::string::npos);
  EXPECT_NE(error_of([&] { s.step(z, {0}, {0, 1}); }).find("elr: targets must be int64 [B] with B = 2"),
            std::string::npos);
  EXPECT_NE(error_of([&] { s.step(z, {0, 1}, {0, 4}); })
                .find("elr: indices must be in [0, 4) (num_train_samples), got values in [0, 4]"),
            std::string::npos);
  // The failed steps left the state untouched.
  EXPECT_EQ(s.handle().state_dict().at("target").abs().sum().item<double>(), 0.0);

  EXPECT_NE(error_of([&] { s.handle().load_state_dict({}); }).find("elr: load_state_dict: the state has no 'target' tensor"),
            std::string::npos);
  EXPECT_NE(error_of([&] { s.handle().load_state_dict({{"target", torch::zeros({3, 3})}}); })
                .find("'target' must be a floating tensor of shape [4, 3] (num_train_samples, num_classes), got [3, 3]"),
            std::string::npos);
  EXPECT_NE(error_of([&] { s.handle().load_state_dict({{"target", torch::zeros({4, 3}, torch::kLong)}}); })
                .find("got [4, 3] Long"),
            std::string::npos);
  // Through the probe: a wrong state shape is a request error.
  EXPECT_THROW(probe::run_probe({{"method", "elr"},
                                 {"num_samples", 2},
                                 {"state", {{"target", {{0.5, 0.5}}}}},
                                 {"logits", {{0.0, 1.0}}},
                                 {"labels", {0}}}),
               std::invalid_argument);
  // The schema bounds.
  EXPECT_THROW(MethodSession("elr", R"({"beta": 1.5})", 1, 2, 1, torch::kDouble), std::invalid_argument);
  EXPECT_THROW(MethodSession("elr", R"({"lambda": -1})", 1, 2, 1, torch::kDouble), std::invalid_argument);
}

}  // namespace
}  // namespace reglab::testing
