// Golden tests for the `abmil` plugin: cross-entropy on the bag labels,
// through the probe's mil steps. The shared 4×5 case of golden_cases.h
// (torch's F.cross_entropy in python3-torch 1.13) read as four bags with five
// classes, and z = (0, ln 3) by hand.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <cmath>
#include <string>

#include "methods/golden_cases.h"
#include "methods/method_harness.h"
#include "probe/probe.h"

namespace reglab::testing {
namespace {

using nlohmann::json;

json probe(const json& request) { return probe::run_probe(request, build_plugin("abmil")); }

TEST(Abmil, DeclaresNoParametersAndTheMilParadigm) {
  const PluginInfo& info = *build_plugin("abmil").info;
  EXPECT_STREQ(info.name, "abmil");
  EXPECT_EQ(info.paradigms, static_cast<std::uint32_t>(kMil));
  EXPECT_EQ(info.num_params, 0u);
}

// p = softmax(0, ln 3) = (¼, ¾): CE = −ln ¾, gradient (¼, −¼); the attention
// gets none.
TEST(Abmil, HandCase) {
  const json out = probe({{"method", "abmil"},
                          {"logits", {{0.0, std::log(3.0)}}},
                          {"labels", {1}},
                          {"attention_logits", {{{0.3, -1.0, 2.0}}}}});
  const json& s = out["steps"][0];
  EXPECT_NEAR(s["loss"].get<double>(), -std::log(0.75), 1e-15);
  expect_json_rows_near(s["grad_logits"], {{0.25, -0.25}}, 1e-15);
  EXPECT_EQ(s["grad_attention_logits"], json({{{0.0, 0.0, 0.0}}}));
}

class AbmilDtype : public ::testing::TestWithParam<torch::ScalarType> {};

TEST_P(AbmilDtype, IsTheBatchMeanCrossEntropyOverBags) {
  const bool f64 = GetParam() == torch::kDouble;
  json attention = json::array();
  for (int b = 0; b < 4; ++b) attention.push_back({{0.1 * b, 0.0}});
  const json out = probe({{"dtype", f64 ? "float64" : "float32"},
                          {"logits", golden::kLogits},
                          {"labels", golden::kLabels},
                          {"attention_logits", attention},
                          {"attention_mask", {{1, 1}, {1, 0}, {1, 1}, {1, 1}}}});
  const double tol = f64 ? golden::kTol64 : golden::kTol32;
  EXPECT_NEAR(out["steps"][0]["loss"].get<double>(), golden::kCeLoss, tol);
  expect_json_rows_near(out["steps"][0]["grad_logits"], golden::kCeGrad, tol);
}

INSTANTIATE_TEST_SUITE_P(Dtypes, AbmilDtype, ::testing::Values(torch::kDouble, torch::kFloat),
                         [](const auto& info) { return info.param == torch::kDouble ? "float64" : "float32"; });

TEST(Abmil, RefusesLabelsOutsideTheClassesAndBadShapes) {
  // The probe checks labels; a direct call gets the hook's own checks.
  MethodSession session("abmil", "{}", 2, 2, 1, torch::kDouble);
  EXPECT_THROW(session.step(torch::zeros({2, 2}, torch::kDouble), {0}, {0, 1}), std::exception);
  EXPECT_THROW(session.step(torch::zeros({2, 2}, torch::kDouble), {0, 2}, {0, 1}), std::exception);
  const StepResult ok = session.step(torch::zeros({2, 2}, torch::kDouble), {0, 1}, {0, 1});
  EXPECT_NEAR(ok.loss.item<double>(), std::log(2.0), 1e-15);
}

}  // namespace
}  // namespace reglab::testing
