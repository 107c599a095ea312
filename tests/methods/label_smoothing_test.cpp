// Golden tests for the `label_smoothing` plugin: hand-worked values and
// torch's F.cross_entropy(..., label_smoothing=ε) (golden_cases.h).
#include <gtest/gtest.h>

#include <cmath>
#include <stdexcept>
#include <string>

#include "methods/golden_cases.h"
#include "methods/method_harness.h"
#include "plugins/method_handle.h"

namespace reglab::testing {
namespace {

const double kLn3 = std::log(3.0);

class LsDtype : public ::testing::TestWithParam<torch::ScalarType> {
 protected:
  double tol() const { return GetParam() == torch::kDouble ? golden::kTol64 : golden::kTol32; }
};

TEST(LabelSmoothing, DeclaresEpsilon) {
  const PluginInfo& info = *build_plugin("label_smoothing").info;
  EXPECT_STREQ(info.name, "label_smoothing");
  EXPECT_TRUE(info.paradigms & kClassify);
  ASSERT_EQ(info.num_params, 1u);
  const ParamSpec& eps = info.params[0];
  EXPECT_STREQ(eps.name, "epsilon");
  EXPECT_EQ(eps.type, ParamType::kFloat);
  EXPECT_STREQ(eps.default_value, "0.1");
  EXPECT_TRUE(eps.has_min && eps.has_max);
  EXPECT_EQ(eps.min, 0.0);
  EXPECT_EQ(eps.max, 1.0);
}

// K = 2, ε = 0.2, z = (0, ln 3) so p = (1/4, 3/4), y = 1:
// target t = 0.8·(0, 1) + 0.2/2 = (0.1, 0.9);
// loss = −0.1·ln(1/4) − 0.9·ln(3/4) = 0.1·ln 4 + 0.9·ln(4/3);
// d/dz = p − t = (0.15, −0.15).
TEST_P(LsDtype, TwoClassesByHand) {
  const StepResult r = run_step("label_smoothing", R"({"epsilon": 0.2})", make_logits({{0.0, kLn3}}, GetParam()), {1});
  EXPECT_NEAR(r.loss.item<double>(), 0.1 * std::log(4.0) + 0.9 * std::log(4.0 / 3.0), tol());
  expect_rows_near(r.grad, {{0.15, -0.15}}, tol());
}

TEST_P(LsDtype, DefaultEpsilonMatchesTorch) {
  const StepResult r = run_step("label_smoothing", "{}", make_logits(golden::kLogits, GetParam()), golden::kLabels);
  EXPECT_EQ(r.loss.scalar_type(), GetParam());
  EXPECT_EQ(r.grad.scalar_type(), GetParam());
  EXPECT_NEAR(r.loss.item<double>(), golden::kLs01Loss, tol());
  expect_rows_near(r.grad, golden::kLs01Grad, tol());
}

TEST_P(LsDtype, OtherEpsilonsMatchTorch) {
  StepResult r = run_step("label_smoothing", R"({"epsilon": 0.25})", make_logits(golden::kLogits, GetParam()),
                          golden::kLabels);
  EXPECT_NEAR(r.loss.item<double>(), golden::kLs025Loss, tol());
  expect_rows_near(r.grad, golden::kLs025Grad, tol());
  // ε = 1: the target is uniform and ignores the label.
  r = run_step("label_smoothing", R"({"epsilon": 1})", make_logits(golden::kLogits, GetParam()), golden::kLabels);
  EXPECT_NEAR(r.loss.item<double>(), golden::kLs1Loss, tol());
  expect_rows_near(r.grad, golden::kLs1Grad, tol());
}

// ε = 0 is plain cross-entropy: same numbers as the ce plugin and as torch.
TEST_P(LsDtype, ZeroEpsilonIsCrossEntropy) {
  const torch::Tensor z = make_logits(golden::kLogits, GetParam());
  const StepResult ls = run_step("label_smoothing", R"({"epsilon": 0.0})", z, golden::kLabels);
  const StepResult ce = run_step("ce", "{}", z, golden::kLabels);
  EXPECT_NEAR(ls.loss.item<double>(), ce.loss.item<double>(), 1e-15);
  EXPECT_TRUE(torch::allclose(ls.grad, ce.grad, 0.0, 1e-15));
  EXPECT_NEAR(ls.loss.item<double>(), golden::kCeLoss, tol());
}

// Batch mean: B identical rows give the single-row loss and 1/B of its gradient.
TEST_P(LsDtype, BatchMeanScalesGradientByOneOverB) {
  const Rows four = {{0.0, kLn3}, {0.0, kLn3}, {0.0, kLn3}, {0.0, kLn3}};
  const StepResult r = run_step("label_smoothing", R"({"epsilon": 0.2})", make_logits(four, GetParam()), {1, 1, 1, 1});
  EXPECT_NEAR(r.loss.item<double>(), 0.1 * std::log(4.0) + 0.9 * std::log(4.0 / 3.0), tol());
  expect_rows_near(r.grad, Rows(4, {0.15 / 4, -0.15 / 4}), tol());
}

// K = 1: the smoothed target is still (1), so loss 0 and gradient 0.
TEST_P(LsDtype, SingleClassIsZero) {
  const StepResult r = run_step("label_smoothing", R"({"epsilon": 0.3})", make_logits({{3.7}, {-2.0}}, GetParam()), {0, 0});
  EXPECT_EQ(r.loss.item<double>(), 0.0);
  expect_rows_near(r.grad, {{0.0}, {0.0}}, 0.0);
}

INSTANTIATE_TEST_SUITE_P(Dtypes, LsDtype, ::testing::Values(torch::kDouble, torch::kFloat));

TEST(LabelSmoothing, EpsilonOutsideZeroOneIsRejected) {
  const PluginInfo& info = *build_plugin("label_smoothing").info;
  EXPECT_THROW(plugins::resolve_params(info, R"({"epsilon": 1.5})"), std::invalid_argument);
  EXPECT_THROW(plugins::resolve_params(info, R"({"epsilon": -0.1})"), std::invalid_argument);
  EXPECT_NO_THROW(plugins::resolve_params(info, R"({"epsilon": 1})"));
}

// Params that bypass the schema check are still refused, by setup().
TEST(LabelSmoothing, SetupRejectsEpsilonOutOfRange) {
  const Params params({{"epsilon", 1.5}});
  struct : Logger { void log(LogLevel, std::string_view) override {} } log;
  struct : MetricSink {
    void record(std::string_view, double, std::int64_t) override {}
    void declare(std::string_view, MetricDirection) override {}
  } sink;
  const MethodContext ctx{params, log, sink, kClassify, 1, 2, 1, torch::Device(torch::kCPU), torch::kDouble};
  plugins::MethodHandle handle(build_plugin("label_smoothing"));
  try {
    handle.setup(ctx);
    FAIL() << "setup accepted epsilon 1.5";
  } catch (const plugins::PluginError& e) {
    EXPECT_NE(std::string(e.what()).find("epsilon must be in [0, 1]"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace reglab::testing
