// Golden tests for the `confidence_penalty` plugin: hand-worked values and the
// torch composition CE − β·mean H(softmax) (golden_cases.h).
#include <gtest/gtest.h>

#include <cmath>
#include <stdexcept>

#include "methods/golden_cases.h"
#include "methods/method_harness.h"
#include "plugins/method_handle.h"

namespace reglab::testing {
namespace {

const double kLn3 = std::log(3.0);

class CpDtype : public ::testing::TestWithParam<torch::ScalarType> {
 protected:
  double tol() const { return GetParam() == torch::kDouble ? golden::kTol64 : golden::kTol32; }
};

TEST(ConfidencePenalty, DeclaresBeta) {
  const PluginInfo& info = *build_plugin("confidence_penalty").info;
  EXPECT_STREQ(info.name, "confidence_penalty");
  EXPECT_TRUE(info.paradigms & kClassify);
  ASSERT_EQ(info.num_params, 1u);
  const ParamSpec& beta = info.params[0];
  EXPECT_STREQ(beta.name, "beta");
  EXPECT_EQ(beta.type, ParamType::kFloat);
  EXPECT_STREQ(beta.default_value, "0.1");
  EXPECT_TRUE(beta.has_min && beta.has_max);
  EXPECT_EQ(beta.min, 0.0);
  EXPECT_EQ(beta.max, 10.0);
}

// K = 2, z = (0, ln 3), p = (1/4, 3/4), y = 1.
//   H = −(1/4)ln(1/4) − (3/4)ln(3/4) = ln 4 − (3/4) ln 3.
//   dH/dz_j = −p_j (ln p_j + H):
//     j = 0: −(1/4)(−ln 4 + ln 4 − (3/4)ln 3) = +(3/16) ln 3
//     j = 1: −(3/4)(ln 3 − ln 4 + ln 4 − (3/4)ln 3) = −(3/16) ln 3
//   loss = ln(4/3) − β·H;  d/dz = (1/4, −1/4) − β·(3/16)ln 3·(1, −1).
double hand_loss(double beta) { return std::log(4.0 / 3.0) - beta * (std::log(4.0) - 0.75 * kLn3); }
double hand_grad0(double beta) { return 0.25 - beta * (3.0 / 16.0) * kLn3; }

TEST_P(CpDtype, TwoClassesByHand) {
  const StepResult r =
      run_step("confidence_penalty", R"({"beta": 0.5})", make_logits({{0.0, kLn3}}, GetParam()), {1});
  EXPECT_NEAR(r.loss.item<double>(), hand_loss(0.5), tol());
  expect_rows_near(r.grad, {{hand_grad0(0.5), -hand_grad0(0.5)}}, tol());
}

TEST_P(CpDtype, MatchesTorchComposition) {
  const torch::Tensor z = make_logits(golden::kLogits, GetParam());
  StepResult r = run_step("confidence_penalty", "{}", z, golden::kLabels);  // β = 0.1
  EXPECT_EQ(r.loss.scalar_type(), GetParam());
  EXPECT_EQ(r.grad.scalar_type(), GetParam());
  EXPECT_NEAR(r.loss.item<double>(), golden::kCp01Loss, tol());
  expect_rows_near(r.grad, golden::kCp01Grad, tol());

  r = run_step("confidence_penalty", R"({"beta": 0.5})", z, golden::kLabels);
  EXPECT_NEAR(r.loss.item<double>(), golden::kCp05Loss, tol());
  expect_rows_near(r.grad, golden::kCp05Grad, tol());
}

// β = 0 is plain cross-entropy.
TEST_P(CpDtype, ZeroBetaIsCrossEntropy) {
  const torch::Tensor z = make_logits(golden::kLogits, GetParam());
  const StepResult cp = run_step("confidence_penalty", R"({"beta": 0})", z, golden::kLabels);
  const StepResult ce = run_step("ce", "{}", z, golden::kLabels);
  EXPECT_NEAR(cp.loss.item<double>(), ce.loss.item<double>(), 1e-15);
  EXPECT_TRUE(torch::allclose(cp.grad, ce.grad, 0.0, 1e-15));
  EXPECT_NEAR(cp.loss.item<double>(), golden::kCeLoss, tol());
}

// Batch mean: three identical rows give the single-row loss and 1/3 of its gradient.
TEST_P(CpDtype, BatchMeanScalesGradientByOneOverB) {
  const Rows three(3, {0.0, kLn3});
  const StepResult r = run_step("confidence_penalty", R"({"beta": 2})", make_logits(three, GetParam()), {1, 1, 1});
  EXPECT_NEAR(r.loss.item<double>(), hand_loss(2.0), tol());
  expect_rows_near(r.grad, Rows(3, {hand_grad0(2.0) / 3, -hand_grad0(2.0) / 3}), tol());
}

// K = 1: p = 1, H = 0: loss 0, gradient 0 (not NaN).
TEST_P(CpDtype, SingleClassIsZero) {
  const StepResult r = run_step("confidence_penalty", R"({"beta": 1})", make_logits({{3.7}, {-2.0}}, GetParam()), {0, 0});
  EXPECT_EQ(r.loss.item<double>(), 0.0);
  expect_rows_near(r.grad, {{0.0}, {0.0}}, 0.0);
}

INSTANTIATE_TEST_SUITE_P(Dtypes, CpDtype, ::testing::Values(torch::kDouble, torch::kFloat));

// Probabilities that underflow to 0 in float32 (e^−120 ≈ 8e−53 < 1e−45):
// log(softmax) would give 0·(−inf) = NaN in the entropy; from log_softmax the
// term is 0·(−120) = 0. The true loss and gradient are below 1e−40, i.e. 0.
TEST(ConfidencePenalty, EntropyIsStableWhenProbabilitiesUnderflow) {
  const StepResult r = run_step("confidence_penalty", R"({"beta": 1})",
                                make_logits({{0.0, 120.0}, {-50.0, 60.0}}, torch::kFloat), {1, 1});
  EXPECT_TRUE(std::isfinite(r.loss.item<double>()));
  EXPECT_NEAR(r.loss.item<double>(), 0.0, 1e-30);
  EXPECT_TRUE(torch::isfinite(r.grad).all().item<bool>());
  expect_rows_near(r.grad, {{0.0, 0.0}, {0.0, 0.0}}, 1e-30);
}

TEST(ConfidencePenalty, BetaOutsideRangeIsRejected) {
  const PluginInfo& info = *build_plugin("confidence_penalty").info;
  EXPECT_THROW(plugins::resolve_params(info, R"({"beta": -0.1})"), std::invalid_argument);
  EXPECT_THROW(plugins::resolve_params(info, R"({"beta": 10.5})"), std::invalid_argument);
  EXPECT_NO_THROW(plugins::resolve_params(info, R"({"beta": 10})"));
}

}  // namespace
}  // namespace reglab::testing
