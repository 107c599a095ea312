// Golden tests for the `ldr_kl` plugin (LDR-KL loss): hand cases, and the
// official code, Optimization-AI/ICML2023_LDR @ 732fc85, loss.py::LDRLoss_V1,
// run in Debian's python3-torch 1.13 on the CPU (its `.cuda()` calls made
// no-ops). Each case builds z = torch.tensor(Z, dtype, requires_grad=True),
// calls LDRLoss_V1(threshold=c, Lambda=λ)(z, F.one_hot(y, K)), runs
// backward() and prints the loss and z.grad. The float64 numbers come from a
// run with torch.set_default_dtype(torch.float64), so that the official
// `threshold*(1 - y_true)` (made in the default dtype) is not rounded to
// float32; the float32 runs agree with them to 1e-7.
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

// golden::kLogits / kLabels with the defaults (c 0.1, λ 10).
const double kDefaultLoss = -0.20541080655194044;
const Rows kDefaultGrad = {
    {0.07314228331831568, 0.036110647679347754, 0.04717298651553401, -0.11823338303600844, 0.022576348860474302},
    {0.03779925222571882, -0.14672134037075701, 0.007146537418633999, 0.04618846474770171, 0.06049870157808983},
    {-0.07664364567281085, 0.020403638267822, 0.010109760093757735, 0.0021008933074981436, 0.007363708544436399},
    {0.05428810585580862, 0.028465646439767643, 0.016504310462404786, 0.035522078386671235, -0.11280050666966535}};

// golden::kLogits / kLabels with c 0.5, λ 1.
const double kC05L1Loss = 0.3255768110351824;
const Rows kC05L1Grad = {
    {0.08454342711009864, 0.023967116339180427, 0.034488547581633965, -0.10988676911015267, 0.013775375836422465},
    {0.027451881168165392, -0.162488568242452, 0.0030153210522277647, 0.04164788035324885, 0.0884322296931522},
    {-0.1025146772424352, 0.07039179166533822, -0.02624519825719162, -0.010753943808961065, -0.026055307791249264},
    {0.08299709047060025, 0.015683266492073772, 0.007554591247150085, 0.022866084092293282, -0.12504111873767318}};

// Large logits (softplus is linear above 20) and λ = 0.002: the last row
// reaches max_k d_k/λ ≈ 1399, so exp(d/λ) overflows even in float64 without
// the detached shift.
const Rows kBigLogits = {{80.0, -50.0, 3.0, 0.0, 25.0}, {-40.0, 60.0, 59.5, -1.0, 0.2}, {5.0, -3.0, 0.0, 1.0, 2.0}};
const std::vector<std::int64_t> kBigLabels = {0, 2, 1};
const double kBigLoss = 0.9696791347381963;
const Rows kBigGrad = {
    {0.0, 0.0, 0.0, 0.0, 0.0},
    {-2.4336759853326863e-22, 0.013761198503439789, -0.013875768797680266, -1.540634888990614e-05,
     -3.149732142775395e-05},
    {0.08295121766924705, -0.013243990785851022, -0.04893662953700172, -0.0715510856645272, -0.0862064806045545}};

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const std::exception& e) {
    return e.what();
  }
  return "(no exception)";
}

class LdrKlDtype : public ::testing::TestWithParam<torch::ScalarType> {
 protected:
  double tol() const { return GetParam() == torch::kDouble ? golden::kTol64 : golden::kTol32; }
  const char* dtype_name() const { return GetParam() == torch::kDouble ? "float64" : "float32"; }
};

TEST(LdrKl, DeclaresMarginAndLambda) {
  const PluginInfo& info = *build_plugin("ldr_kl").info;
  EXPECT_STREQ(info.name, "ldr_kl");
  EXPECT_TRUE(info.paradigms & kClassify);
  ASSERT_EQ(info.num_params, 2u);
  EXPECT_STREQ(info.params[0].name, "c");
  EXPECT_EQ(info.params[0].type, ParamType::kFloat);
  EXPECT_STREQ(info.params[0].default_value, "0.1");
  EXPECT_TRUE(info.params[0].has_min);
  EXPECT_FALSE(info.params[0].has_max);
  EXPECT_EQ(info.params[0].min, 0.0);
  EXPECT_STREQ(info.params[1].name, "lambda");
  EXPECT_EQ(info.params[1].type, ParamType::kFloat);
  EXPECT_STREQ(info.params[1].default_value, "10.0");
  EXPECT_TRUE(info.params[1].has_min);
  EXPECT_GT(info.params[1].min, 0.0);
}

// K = 2, z = (0, 0), y = 0, c 0.1, λ 10: softplus gives (ln 2, ln 2), so s = (1, 1)
// and d = (0, c). With w = softmax(d/λ), w₁ = e^{0.01}/(1 + e^{0.01}):
//   loss = λ·ln((1 + e^{c/λ})/2);
//   ∂loss/∂s = (w₀ − 1, w₁) = (−w₁, w₁), and at z = 0
//   ∂s_k/∂z_j = σ(0)(δ_kj − 1/2)/ln 2, so the gradient is (−w₁, w₁)/(2 ln 2).
TEST_P(LdrKlDtype, TwoClassesByHand) {
  const StepResult r = run_step("ldr_kl", "{}", make_logits({{0.0, 0.0}}, GetParam()), {0});
  EXPECT_EQ(r.loss.scalar_type(), GetParam());
  EXPECT_EQ(r.grad.scalar_type(), GetParam());
  const double w1 = std::exp(0.01) / (1.0 + std::exp(0.01));
  EXPECT_NEAR(r.loss.item<double>(), 10.0 * std::log((1.0 + std::exp(0.01)) / 2.0), tol());
  const double g = w1 / (2.0 * std::log(2.0));
  expect_rows_near(r.grad, {{-g, g}}, tol());
}

TEST_P(LdrKlDtype, DefaultsMatchTheOfficialCode) {
  const StepResult r = run_step("ldr_kl", "{}", make_logits(golden::kLogits, GetParam()), golden::kLabels);
  EXPECT_NEAR(r.loss.item<double>(), kDefaultLoss, tol());
  expect_rows_near(r.grad, kDefaultGrad, tol());
}

TEST_P(LdrKlDtype, OtherParametersMatchTheOfficialCode) {
  const StepResult r =
      run_step("ldr_kl", R"({"c": 0.5, "lambda": 1})", make_logits(golden::kLogits, GetParam()), golden::kLabels);
  EXPECT_NEAR(r.loss.item<double>(), kC05L1Loss, tol());
  expect_rows_near(r.grad, kC05L1Grad, tol());
}

// Through the probe (the `reglab probe` path), with the stability shift in play.
TEST_P(LdrKlDtype, LargeLogitsAndSmallLambdaStayFinite) {
  const json out = probe::run_probe({{"method", "ldr_kl"},
                                     {"dtype", dtype_name()},
                                     {"params", {{"lambda", 0.002}}},
                                     {"logits", kBigLogits},
                                     {"labels", kBigLabels}});
  EXPECT_EQ(out["params"], json({{"c", 0.1}, {"lambda", 0.002}}));
  ASSERT_EQ(out["steps"].size(), 1u);
  const json& step = out["steps"][0];
  ASSERT_TRUE(step["loss"].is_number()) << step["loss"];
  EXPECT_NEAR(step["loss"].get<double>(), kBigLoss, tol());
  expect_json_rows_near(step["grad_logits"], kBigGrad, tol());
  EXPECT_EQ(step["state"], json::object());
}

// The batch mean: each row alone gives its own loss, and the batch gives
// their mean (rows of the default case).
TEST_P(LdrKlDtype, BatchLossIsTheMeanOfRowLosses) {
  double sum = 0.0;
  for (std::size_t i = 0; i < golden::kLogits.size(); ++i)
    sum += run_step("ldr_kl", "{}", make_logits({golden::kLogits[i]}, GetParam()), {golden::kLabels[i]})
               .loss.item<double>();
  EXPECT_NEAR(sum / 4.0, kDefaultLoss, tol());
}

INSTANTIATE_TEST_SUITE_P(Dtypes, LdrKlDtype, ::testing::Values(torch::kDouble, torch::kFloat),
                         [](const auto& info) { return info.param == torch::kDouble ? "Float64" : "Float32"; });

TEST(LdrKl, RejectsBadParametersAndShapes) {
  const torch::Tensor z = make_logits({{0.0, 1.0}}, torch::kDouble);
  for (const char* bad : {R"({"lambda": 0})", R"({"lambda": -1})", R"({"lambda": 1e-9})"}) {
    SCOPED_TRACE(bad);
    EXPECT_NE(error_of([&] { run_step("ldr_kl", bad, z, {0}); })
                  .find("method 'ldr_kl' parameter 'lambda': expected a value >= 1e-06"),
              std::string::npos);
  }
  EXPECT_NE(error_of([&] { run_step("ldr_kl", R"({"c": -0.1})", z, {0}); })
                .find("method 'ldr_kl' parameter 'c': expected a value >= 0"),
            std::string::npos);
  EXPECT_NE(error_of([&] { run_step("ldr_kl", R"({"lambda0": 1})", z, {0}); }).find("has no parameter 'lambda0'"),
            std::string::npos);
  // c = 0 is allowed (no margin): at z = (0, 0), y = 1, d = (0, 0), so the loss is
  // λ ln 1 = 0 and, as in the hand case, the gradient is (w₀, w₁ − 1)/(2 ln 2) = (1, −1)/(4 ln 2).
  const StepResult r = run_step("ldr_kl", R"({"c": 0})", make_logits({{0.0, 0.0}}, torch::kDouble), {1});
  EXPECT_NEAR(r.loss.item<double>(), 0.0, 1e-15);
  const double g = 1.0 / (4.0 * std::log(2.0));
  expect_rows_near(r.grad, {{g, -g}}, 1e-15);

  MethodSession s("ldr_kl", "{}", 2, 3, 1, torch::kDouble);
  EXPECT_NE(error_of([&] { s.step(make_logits({{0.0, 1.0}}, torch::kDouble), {0}, {0}); })
                .find("ldr_kl: logits must be [B, K] with K = 3 (num_classes), got [1, 2]"),
            std::string::npos);
  EXPECT_NE(error_of([&] { s.step(make_logits({{0.0, 1.0, 2.0}}, torch::kDouble), {0, 1}, {0}); })
                .find("ldr_kl: targets must be int64 [B] with B = 1"),
            std::string::npos);
}

}  // namespace
}  // namespace reglab::testing
