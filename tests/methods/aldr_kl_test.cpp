// Golden tests for the `aldr_kl` plugin (ALDR-KL loss with per-sample Λ):
// hand cases, and the official code, Optimization-AI/ICML2023_LDR @ 732fc85,
// loss.py::ALDRLoss_V1, run in Debian's python3-torch 1.13 on the CPU (its
// `.cuda()` calls made no-ops). One ALDRLoss_V1(N, threshold=c, Lambda=λ0,
// alpha=α, softplus=…) object per sequence, its Λ buffer optionally replaced
// by a prior; for each step z = torch.tensor(Z, dtype, requires_grad=True),
// loss = obj(z, F.one_hot(y, K), torch.tensor(indices)), backward(), then
// the loss, z.grad and obj.Lambda (flattened) are printed. The float64
// numbers come from a run under torch.set_default_dtype(torch.float64) with
// the Λ buffer in float64 (the official code allocates it in float32 and its
// index assignment refuses float64 rows); the float32 runs of the unchanged
// code agree with them to 6e-7. The official `Lambda[ids] = rows` keeps the
// last row of a repeated index on the CPU, and every such row reads it back.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <cmath>
#include <cstdint>
#include <functional>
#include <stdexcept>
#include <string>
#include <vector>

#include "methods/golden_cases.h"
#include "methods/method_harness.h"
#include "plugins/method_handle.h"
#include "probe/probe.h"

namespace reglab::testing {
namespace {

using nlohmann::json;

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

// ---- golden::kLogits / kLabels, indices 0..3, defaults (c 0.1, λ0 10, α 2, no softplus) ----
const double kDefaultLoss = -0.47580336006387114;
const Rows kDefaultGrad = {
    {0.12471012992112782, -0.02571438999667068, 0.11825284391875066, -0.117687452695435, -0.02871356999597044},
    {0.05647210924980737, -0.187376904306093, 0.007789362896649929, 0.09526929313833758, 0.10017519466505442},
    {-0.12902183835103748, 0.011587830061761645, 0.0036316091979248302, 0.0735876240924869, 0.0015993869684853557},
    {0.08424767808729337, 0.07539075152314396, 0.0022293556951654206, 0.0771694281695415, -0.13381667100390057}};
const std::vector<double> kDefaultState = {9.980335012265378, 9.975829425493465, 9.975965648296846,
                                           9.984218863218132};

// ---- sequence A: N = 4, K = 3, defaults ----
// Step 0 repeats index 0 (rows 0 and 2), step 1 revisits index 2, step 2 (a
// new epoch) has index 0 twice.
const std::vector<Step> kStepsA = {
    {{{0.5, -1.0, 2.0}, {1.2, 0.3, -0.4}, {-0.7, 0.9, 0.1}}, {2, 0, 1}, {0, 2, 0}, 0},
    {{{4.0, -2.0, 1.0}, {0.2, 0.2, -1.5}, {1.0, -2.0, 0.5}}, {0, 1, 2}, {2, 1, 3}, 0},
    {{{-0.3, 1.1, 0.4}, {2.2, -0.6, 0.0}}, {1, 1}, {0, 0}, 1},
};
const double kLossA[] = {-1.217116579926788, -0.788666690961973, 0.15591068228378957};
const Rows kGradA[] = {
    {{0.20744383795546406, -0.028806122085786243, -0.06626402053175913},
     {-0.11571537190262912, 0.3860589403088418, -0.057601910476255846},
     {-0.08202628296756423, -0.1134925346056605, 0.4472488306779936}},
    {{-0.03313250879332713, -0.014402725362225421, 0.10372458444885772},
     {0.3217399476274137, -0.20648395058340233, 0.015367466272534852},
     {0.14795333284730705, 0.03818135863560184, -0.14318123115220674}},
    {{-0.05307495333161433, -0.2244711172014781, 0.5774893573053538},
     {-0.0359283557315801, -0.1317373043491272, 0.1676656600807073}},
};
const std::vector<double> kStateA[] = {
    {9.969915426757735, 10.0, 9.975514456526788, 10.0},
    {9.969915426757735, 9.965932796089625, 9.974904469149738, 9.972694026124435},
    {9.960289081024865, 9.965932796089625, 9.974904469149738, 9.972694026124435},
};

// ---- sequence B: prior Λ, softplus, small λ0, large logits ----
// c 0.5, λ0 0.05, α 1.5, softplus on, N = 3, K = 4, prior Λ = (0.03, 0.05,
// 0.01). softmax(s/Λ) saturates, so the 1e-5 floor sets Λ near λ0/3, and
// d/Λ reaches ≈ 198 (row 2 of step 0): exp overflows in float32 without the
// detached shift. Step 1 repeats index 2 (the second row's Λ is kept).
const std::vector<double> kPriorB = {0.03, 0.05, 0.01};
const char* const kParamsB = R"({"c": 0.5, "lambda0": 0.05, "alpha": 1.5, "softplus": true})";
const std::vector<Step> kStepsB = {
    {{{80.0, -50.0, 3.0, 0.0}, {-40.0, 60.0, 59.5, -1.0}, {5.0, -3.0, 0.0, 1.0}}, {0, 2, 1}, {1, 0, 2}, 0},
    {{{0.0, 0.0, 0.0, 0.0}, {30.0, -30.0, 1.0, 2.0}}, {3, 0}, {2, 2}, 0},
};
const double kLossB[] = {1.2271147425182494, 0.2129502466152078};
const Rows kGradB[] = {
    {{-1.1426550083656e-86, -2.1941347171512048e-108, 2.8802592538263243e-85, -5.529003706893688e-87},
     {-1.972966130415853e-22, 0.011081986579895585, -0.011174868011709253, -1.2489832145424033e-05},
     {0.05586787053296279, -0.01524167837522157, -0.06628366671712994, -0.09691448635321996}},
    {{0.12022458674074314, 0.12022458674074314, 0.12022458674074314, -0.3606737602222294},
     {-5.908330232057033e-77, -5.528772134856072e-90, -4.121463699069528e-77, 7.646821287800098e-76}},
};
const std::vector<double> kStateB[] = {
    {0.03244333224157896, 0.01667569249142479, 0.01667569249142479},
    {0.03244333224157896, 0.01667569249142479, 0.01667569249142479},
};

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const std::exception& e) {
    return e.what();
  }
  return "(no exception)";
}

void expect_state_near(const StateDict& state, const std::vector<double>& expected, double tol) {
  ASSERT_EQ(state.size(), 1u);
  const torch::Tensor& lambda = state.at("lambda");
  ASSERT_EQ(lambda.dim(), 1);
  expect_rows_near(lambda.unsqueeze(0), {expected}, tol);
}

class AldrKlDtype : public ::testing::TestWithParam<torch::ScalarType> {
 protected:
  double tol() const { return GetParam() == torch::kDouble ? golden::kTol64 : golden::kTol32; }
  // Λ ≈ 10 in float32 has a spacing of 9.5e-7.
  double state_tol() const { return GetParam() == torch::kDouble ? golden::kTol64 : 4e-6; }
  const char* dtype_name() const { return GetParam() == torch::kDouble ? "float64" : "float32"; }
};

TEST(AldrKl, DeclaresItsParameters) {
  const PluginInfo& info = *build_plugin("aldr_kl").info;
  EXPECT_STREQ(info.name, "aldr_kl");
  EXPECT_TRUE(info.paradigms & kClassify);
  ASSERT_EQ(info.num_params, 4u);
  EXPECT_STREQ(info.params[0].name, "c");
  EXPECT_STREQ(info.params[0].default_value, "0.1");
  EXPECT_TRUE(info.params[0].has_min);
  EXPECT_EQ(info.params[0].min, 0.0);
  EXPECT_STREQ(info.params[1].name, "lambda0");
  EXPECT_STREQ(info.params[1].default_value, "10.0");
  EXPECT_TRUE(info.params[1].has_min);
  EXPECT_GT(info.params[1].min, 0.0);
  EXPECT_STREQ(info.params[2].name, "alpha");
  EXPECT_STREQ(info.params[2].default_value, "2.0");
  EXPECT_TRUE(info.params[2].has_min);
  EXPECT_EQ(info.params[2].min, 1.0);
  EXPECT_STREQ(info.params[3].name, "softplus");
  EXPECT_EQ(info.params[3].type, ParamType::kBool);
  EXPECT_STREQ(info.params[3].default_value, "false");
  for (std::size_t i = 0; i < 3; ++i) {
    EXPECT_EQ(info.params[i].type, ParamType::kFloat);
    EXPECT_FALSE(info.params[i].has_max);
  }
}

// K = 2, z = (1, 1), y = 0, defaults: s = z/(‖z‖₁/2) = (1, 1), q uniform, so
// Σ q ln(2q) = 0, Λ stays λ0 = 10 and the extra term is 0. d = (0, c):
//   loss = 10·ln((1 + e^{0.01})/2);
//   ∂loss/∂s = (−w₁, w₁), w₁ = e^{0.01}/(1 + e^{0.01}); ∂s_k/∂z_j = δ_kj − 1/2
//   at z = (1, 1), so the gradient is (−w₁, w₁).
TEST_P(AldrKlDtype, UniformRowKeepsLambda0) {
  MethodSession s("aldr_kl", "{}", 1, 2, 1, GetParam());
  const StepResult r = s.step(make_logits({{1.0, 1.0}}, GetParam()), {0}, {0});
  EXPECT_EQ(r.loss.scalar_type(), GetParam());
  EXPECT_EQ(r.grad.scalar_type(), GetParam());
  const double w1 = std::exp(0.01) / (1.0 + std::exp(0.01));
  EXPECT_NEAR(r.loss.item<double>(), 10.0 * std::log((1.0 + std::exp(0.01)) / 2.0), tol());
  expect_rows_near(r.grad, {{-w1, w1}}, tol());
  const StateDict state = s.handle().state_dict();
  EXPECT_EQ(state.at("lambda").scalar_type(), GetParam());
  expect_state_near(state, {10.0}, state_tol());
}

// K = 2, z = (1, 3), y = 1, defaults: s = z/(4/2) = (0.5, 1.5).
//   a = 1/(1 + e^{0.1}) (softmax(s/10)₀), q = (a + 1e-5, 1 − a + 1e-5)/(1 + 2e-5),
//   Λ = 10 − 10·Σ q ln(2q)/(2 ln 2);
//   d = (c + s₀ − s₁, 0) = (−0.9, 0);
//   loss = Λ·ln((e^{−0.9/Λ} + 1)/2) − (2 ln 2/(2·10))·(Λ − 10)².
// With w₀ = e^{−0.9/Λ}/(1 + e^{−0.9/Λ}): ∂loss/∂s = (w₀, −w₀) (Λ a constant);
// ∂s_k/∂z_j = δ_kj/2 − z_k/8, so ∂loss/∂z_j = g_j/2 − (w₀ − 3w₀)/8 and the
// gradient is (3w₀/4, −w₀/4).
TEST_P(AldrKlDtype, TwoClassesByHand) {
  MethodSession s("aldr_kl", "{}", 1, 2, 1, GetParam());
  const StepResult r = s.step(make_logits({{1.0, 3.0}}, GetParam()), {1}, {0});
  const double a = 1.0 / (1.0 + std::exp(0.1));
  const double q0 = (a + 1e-5) / (1.0 + 2e-5);
  const double q1 = (1.0 - a + 1e-5) / (1.0 + 2e-5);
  const double kl = q0 * std::log(2.0 * q0) + q1 * std::log(2.0 * q1);
  const double lam = 10.0 - 10.0 * kl / (2.0 * std::log(2.0));
  const double e = std::exp(-0.9 / lam);
  const double w0 = e / (1.0 + e);
  EXPECT_NEAR(r.loss.item<double>(),
              lam * std::log((e + 1.0) / 2.0) - (2.0 * std::log(2.0) / 20.0) * (lam - 10.0) * (lam - 10.0), tol());
  expect_rows_near(r.grad, {{0.75 * w0, -0.25 * w0}}, tol());
  expect_state_near(s.handle().state_dict(), {lam}, state_tol());
}

TEST_P(AldrKlDtype, DefaultsMatchTheOfficialCode) {
  MethodSession s("aldr_kl", "{}", 4, 5, 1, GetParam());
  const StepResult r = s.step(make_logits(golden::kLogits, GetParam()), golden::kLabels, {0, 1, 2, 3});
  EXPECT_NEAR(r.loss.item<double>(), kDefaultLoss, tol());
  expect_rows_near(r.grad, kDefaultGrad, tol());
  expect_state_near(s.handle().state_dict(), kDefaultState, state_tol());
}

// Three steps through the probe (the `reglab probe` path): loss, gradient and Λ after every step.
TEST_P(AldrKlDtype, ProbeSequenceMatchesTheOfficialCode) {
  const json out = probe::run_probe({{"method", "aldr_kl"},
                                     {"dtype", dtype_name()},
                                     {"num_samples", 4},
                                     {"total_epochs", 2},
                                     {"steps", steps_json(kStepsA)}});
  EXPECT_EQ(out["params"], json({{"c", 0.1}, {"lambda0", 10.0}, {"alpha", 2.0}, {"softplus", false}}));
  ASSERT_EQ(out["steps"].size(), 3u);
  for (std::size_t i = 0; i < 3; ++i) {
    SCOPED_TRACE("step " + std::to_string(i));
    const json& step = out["steps"][i];
    EXPECT_NEAR(step["loss"].get<double>(), kLossA[i], tol());
    expect_json_rows_near(step["grad_logits"], kGradA[i], tol());
    ASSERT_EQ(step["state"].size(), 1u);
    expect_json_rows_near(json::array({step["state"]["lambda"]}), {kStateA[i]}, state_tol());
  }
}

// A prior Λ given to the probe is used for q (index 2 starts at 0.01), with
// softplus, a small λ0 and the stability shift in play.
TEST_P(AldrKlDtype, ProbeWithPriorStateSoftplusAndLargeLogits) {
  const json request = {{"method", "aldr_kl"},
                        {"dtype", dtype_name()},
                        {"params", json::parse(kParamsB)},
                        {"num_samples", 3},
                        {"state", {{"lambda", kPriorB}}},
                        {"steps", steps_json(kStepsB)}};
  const json out = probe::run_probe(request);
  EXPECT_EQ(out["params"], json({{"c", 0.5}, {"lambda0", 0.05}, {"alpha", 1.5}, {"softplus", true}}));
  ASSERT_EQ(out["steps"].size(), 2u);
  for (std::size_t i = 0; i < 2; ++i) {
    SCOPED_TRACE("step " + std::to_string(i));
    const json& step = out["steps"][i];
    ASSERT_TRUE(step["loss"].is_number()) << step["loss"];
    EXPECT_NEAR(step["loss"].get<double>(), kLossB[i], tol());
    expect_json_rows_near(step["grad_logits"], kGradB[i], tol());
    expect_json_rows_near(json::array({step["state"]["lambda"]}), {kStateB[i]}, tol());
  }
  // Without the prior (Λ = λ0 everywhere) the first step gives another loss,
  // by 1.3e-4: q is nearly one-hot at either temperature.
  json fresh = request;
  fresh.erase("state");
  EXPECT_GT(std::abs(probe::run_probe(fresh)["steps"][0]["loss"].get<double>() - kLossB[0]), 5e-5);
}

// Index 0 twice: Λ[0] becomes the value the last row computes alone, never the
// first row's, whichever order the rows come in.
TEST_P(AldrKlDtype, DuplicateIndicesKeepTheLastRow) {
  const Rows rows = {{-0.3, 1.1, 0.4}, {2.2, -0.6, 0.0}};
  const auto lambda_after = [&](const Rows& logits, const std::vector<std::int64_t>& labels,
                                const std::vector<std::int64_t>& indices) {
    MethodSession s("aldr_kl", "{}", 2, 3, 1, GetParam());
    s.step(make_logits(logits, GetParam()), labels, indices);
    return s.handle().state_dict().at("lambda")[0].item<double>();
  };
  const double first_alone = lambda_after({rows[0]}, {1}, {0});
  const double last_alone = lambda_after({rows[1]}, {1}, {0});
  ASSERT_GT(std::abs(first_alone - last_alone), 1e-3);
  EXPECT_EQ(lambda_after(rows, {1, 1}, {0, 0}), last_alone);
  EXPECT_EQ(lambda_after({rows[1], rows[0]}, {1, 1}, {0, 0}), first_alone);
}

// Resuming from state_dict() continues exactly as an uninterrupted run.
TEST_P(AldrKlDtype, StateDictRoundTrip) {
  const torch::ScalarType dt = GetParam();
  MethodSession first("aldr_kl", "{}", 4, 3, 2, dt);
  for (int i = 0; i < 2; ++i) first.step(make_logits(kStepsA[i].logits, dt), kStepsA[i].labels, kStepsA[i].indices);
  StateDict saved;
  for (const auto& [name, t] : first.handle().state_dict()) saved[name] = t.clone();
  expect_state_near(saved, kStateA[1], state_tol());

  MethodSession resumed("aldr_kl", "{}", 4, 3, 2, dt);
  resumed.handle().load_state_dict(saved);
  const Step& s = kStepsA[2];
  const StepResult a = first.step(make_logits(s.logits, dt), s.labels, s.indices, 1);
  const StepResult b = resumed.step(make_logits(s.logits, dt), s.labels, s.indices, 1);
  EXPECT_EQ(a.loss.item<double>(), b.loss.item<double>());
  EXPECT_TRUE(torch::equal(a.grad, b.grad));
  EXPECT_NEAR(b.loss.item<double>(), kLossA[2], tol());
  expect_rows_near(b.grad, kGradA[2], tol());
  EXPECT_TRUE(torch::equal(first.handle().state_dict().at("lambda"), resumed.handle().state_dict().at("lambda")));
  expect_state_near(resumed.handle().state_dict(), kStateA[2], state_tol());

  // A float64 checkpoint loads into a float32 run (cast on copy).
  MethodSession other("aldr_kl", "{}", 4, 3, 2, torch::kFloat);
  other.handle().load_state_dict({{"lambda", saved.at("lambda").to(torch::kDouble)}});
  expect_state_near(other.handle().state_dict(), kStateA[1], 4e-6);
}

INSTANTIATE_TEST_SUITE_P(Dtypes, AldrKlDtype, ::testing::Values(torch::kDouble, torch::kFloat),
                         [](const auto& info) { return info.param == torch::kDouble ? "Float64" : "Float32"; });

TEST(AldrKl, RejectsBadParameters) {
  const auto error = [](const char* params) {
    return error_of([&] { MethodSession("aldr_kl", params, 1, 2, 1, torch::kDouble); });
  };
  for (const char* bad : {R"({"lambda0": 0})", R"({"lambda0": -10})"})
    EXPECT_NE(error(bad).find("method 'aldr_kl' parameter 'lambda0': expected a value >= 1e-06"), std::string::npos)
        << bad;
  for (const char* bad : {R"({"alpha": 0})", R"({"alpha": -2})", R"({"alpha": 0.5})"})
    EXPECT_NE(error(bad).find("method 'aldr_kl' parameter 'alpha': expected a value >= 1"), std::string::npos) << bad;
  EXPECT_NE(error(R"({"c": -0.1})").find("method 'aldr_kl' parameter 'c': expected a value >= 0"), std::string::npos);
  EXPECT_NE(error(R"({"softplus": 1})").find("method 'aldr_kl' parameter 'softplus': expected a bool"),
            std::string::npos);
  EXPECT_NE(error(R"({"lambda": 1})").find("has no parameter 'lambda' (did you mean 'lambda0'?)"), std::string::npos);
  EXPECT_EQ(error(R"({"c": 0, "lambda0": 1e-6, "alpha": 1})"), "(no exception)");
}

TEST(AldrKl, RejectsBadShapesIndicesAndState) {
  MethodSession s("aldr_kl", "{}", 4, 3, 1, torch::kDouble);
  const torch::Tensor z = make_logits({{0.0, 1.0, 2.0}, {1.0, 0.0, 0.0}}, torch::kDouble);
  EXPECT_NE(error_of([&] { s.step(make_logits({{0.0, 1.0}}, torch::kDouble), {0}, {0}); })
                .find("aldr_kl: logits must be [B, K] with K = 3 (num_classes), got [1, 2]"),
            std::string::npos);
  EXPECT_NE(error_of([&] { s.step(z, {0, 1}, {0}); }).find("aldr_kl: indices must be int64 [B] with B = 2"),
            std::string::npos);
  EXPECT_NE(error_of([&] { s.step(z, {0}, {0, 1}); }).find("aldr_kl: targets must be int64 [B] with B = 2"),
            std::string::npos);
  EXPECT_NE(error_of([&] { s.step(z, {0, 1}, {0, 4}); })
                .find("aldr_kl: indices must be in [0, 4) (num_train_samples), got values in [0, 4]"),
            std::string::npos);
  // The failed steps left Λ untouched.
  expect_state_near(s.handle().state_dict(), {10.0, 10.0, 10.0, 10.0}, 0.0);

  EXPECT_NE(error_of([&] { s.handle().load_state_dict({}); })
                .find("aldr_kl: load_state_dict: the state has no 'lambda' tensor"),
            std::string::npos);
  // The official layout, N×1, is refused with the shape expected.
  EXPECT_NE(error_of([&] { s.handle().load_state_dict({{"lambda", torch::full({4, 1}, 5.0)}}); })
                .find("'lambda' must be a floating tensor of shape [4] (num_train_samples), got [4, 1]"),
            std::string::npos);
  EXPECT_NE(error_of([&] { s.handle().load_state_dict({{"lambda", torch::zeros({3})}}); }).find("got [3] Float"),
            std::string::npos);
  EXPECT_NE(error_of([&] { s.handle().load_state_dict({{"lambda", torch::ones({4}, torch::kLong)}}); })
                .find("got [4] Long"),
            std::string::npos);
  expect_state_near(s.handle().state_dict(), {10.0, 10.0, 10.0, 10.0}, 0.0);
  // Through the probe: a wrong state shape is a request error.
  EXPECT_THROW(probe::run_probe({{"method", "aldr_kl"},
                                 {"num_samples", 2},
                                 {"state", {{"lambda", {1.0, 2.0, 3.0}}}},
                                 {"logits", {{0.0, 1.0}}},
                                 {"labels", {0}}}),
               std::invalid_argument);
}

}  // namespace
}  // namespace reglab::testing
