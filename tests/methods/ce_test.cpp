// Golden tests for the `ce` plugin: loss and gradient against hand-worked
// values and against torch.nn.functional.cross_entropy (golden_cases.h).
#include <gtest/gtest.h>

#include <cmath>
#include <stdexcept>

#include "methods/golden_cases.h"
#include "methods/method_harness.h"
#include "plugins/method_handle.h"

namespace reglab::testing {
namespace {

const double kLn3 = std::log(3.0);

class CeDtype : public ::testing::TestWithParam<torch::ScalarType> {
 protected:
  double tol() const { return GetParam() == torch::kDouble ? golden::kTol64 : golden::kTol32; }
};

TEST(Ce, DeclaresItself) {
  const PluginInfo& info = *build_plugin("ce").info;
  EXPECT_STREQ(info.name, "ce");
  EXPECT_NE(std::string(info.version), "");
  EXPECT_TRUE(info.paradigms & kClassify);
  EXPECT_EQ(info.num_params, 0u);
}

// z = (0, ln 3): softmax = (1, 3)/4 = (1/4, 3/4).
// y = 1: loss = −ln(3/4) = ln(4/3); d/dz = p − onehot = (1/4, −1/4).
// y = 0: loss = −ln(1/4) = ln 4;   d/dz = (1/4 − 1, 3/4) = (−3/4, 3/4).
TEST_P(CeDtype, TwoClassesByHand) {
  StepResult r = run_step("ce", "{}", make_logits({{0.0, kLn3}}, GetParam()), {1});
  EXPECT_NEAR(r.loss.item<double>(), std::log(4.0 / 3.0), tol());
  expect_rows_near(r.grad, {{0.25, -0.25}}, tol());

  r = run_step("ce", "{}", make_logits({{0.0, kLn3}}, GetParam()), {0});
  EXPECT_NEAR(r.loss.item<double>(), std::log(4.0), tol());
  expect_rows_near(r.grad, {{-0.75, 0.75}}, tol());
}

// Batch mean: the two rows above together give the mean of their losses, and
// each row's gradient is its single-row gradient divided by B = 2.
TEST_P(CeDtype, BatchMeanScalesGradientByOneOverB) {
  const StepResult r = run_step("ce", "{}", make_logits({{0.0, kLn3}, {0.0, kLn3}}, GetParam()), {1, 0});
  EXPECT_NEAR(r.loss.item<double>(), (std::log(4.0 / 3.0) + std::log(4.0)) / 2, tol());
  expect_rows_near(r.grad, {{0.125, -0.125}, {-0.375, 0.375}}, tol());
}

TEST_P(CeDtype, MatchesTorchCrossEntropy) {
  const StepResult r = run_step("ce", "{}", make_logits(golden::kLogits, GetParam()), golden::kLabels);
  EXPECT_EQ(r.loss.scalar_type(), GetParam());
  EXPECT_EQ(r.loss.dim(), 0);
  EXPECT_EQ(r.grad.scalar_type(), GetParam());
  EXPECT_NEAR(r.loss.item<double>(), golden::kCeLoss, tol());
  expect_rows_near(r.grad, golden::kCeGrad, tol());
}

// One class: p = 1 whatever the logit, so loss 0 and gradient 0 (not NaN).
TEST_P(CeDtype, SingleClassIsZero) {
  const StepResult r = run_step("ce", "{}", make_logits({{3.7}, {-2.0}}, GetParam()), {0, 0});
  EXPECT_EQ(r.loss.item<double>(), 0.0);
  expect_rows_near(r.grad, {{0.0}, {0.0}}, 0.0);
}

INSTANTIATE_TEST_SUITE_P(Dtypes, CeDtype, ::testing::Values(torch::kDouble, torch::kFloat));

// Labels outside [0, K) are errors, including −100 (which nll_loss would
// silently skip as its default ignore_index).
TEST(Ce, RejectsLabelsOutsideTheClasses) {
  const torch::Tensor z = make_logits({{0.0, 1.0}}, torch::kDouble);
  EXPECT_THROW(run_step("ce", "{}", z, {2}), std::runtime_error);
  EXPECT_THROW(run_step("ce", "{}", z, {-1}), std::runtime_error);
  EXPECT_THROW(run_step("ce", "{}", z, {-100}), std::runtime_error);
}

TEST(Ce, RejectsParameters) {
  EXPECT_THROW(plugins::resolve_params(*build_plugin("ce").info, R"({"epsilon": 0.1})"), std::invalid_argument);
}

}  // namespace
}  // namespace reglab::testing
