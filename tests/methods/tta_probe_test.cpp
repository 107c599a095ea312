// The probe for test-time adaptation methods: a model written as JSON layers,
// tta_setup and tta_step run as the tta paradigm runs them, and the request
// checked before any hook runs. Expected values: the official implementations'
// numbers of tta_fixture.h (tent, EATA), and forward passes worked out below
// with plain loops over the same weights.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>
#include <vector>

#include "methods/method_harness.h"
#include "methods/tta_fixture.h"
#include "plugins/loader.h"
#include "probe/probe.h"

namespace reglab::testing {
namespace {

using namespace tta_fixture;
using nlohmann::json;

constexpr double kTol = 2e-5;

json tiny_model_json(const json& batchnorm_extra = json::object()) {
  json bn = {{"weight", kGamma}, {"bias", kBeta}};
  bn.update(batchnorm_extra);
  return json::array({{{"linear", {{"weight", kW1}, {"bias", kB1}}}},
                      {{"batchnorm1d", bn}},
                      {{"relu", json::object()}},
                      {{"linear", {{"weight", kW2}, {"bias", kB2}}}}});
}

json tent_request(json steps) {
  return {{"method", "tent"}, {"paradigm", "tta"}, {"model", tiny_model_json()}, {"steps", std::move(steps)}};
}

void expect_json_near(const json& actual, const Rows& expected, double tol) {
  ASSERT_TRUE(actual.is_array()) << actual.dump();
  ASSERT_EQ(actual.size(), expected.size()) << actual.dump();
  for (std::size_t i = 0; i < expected.size(); ++i) {
    ASSERT_EQ(actual[i].size(), expected[i].size()) << actual.dump();
    for (std::size_t j = 0; j < expected[i].size(); ++j)
      EXPECT_NEAR(actual[i][j].get<double>(), expected[i][j], tol) << "at [" << i << "][" << j << "]";
  }
}

void expect_json_near(const json& actual, const std::vector<double>& expected, double tol) {
  expect_json_near(json::array({actual}), Rows{expected}, tol);
}

std::string error_of(const json& request) {
  try {
    probe::run_probe(request);
  } catch (const std::exception& e) {
    return e.what();
  }
  return "(no exception)";
}

TEST(TtaProbe, TentStepsMatchTheOfficialCode) {
  const json out = probe::run_probe(tent_request({{{"inputs", kX1}}, {{"inputs", kX2}}}));
  EXPECT_EQ(out["paradigm"], "tta");
  EXPECT_EQ(out["dtype"], "float32");
  EXPECT_EQ(out["num_classes"], 3);
  EXPECT_EQ(out["batch_size"], 4);
  EXPECT_EQ(out["held_out"], 0);
  EXPECT_EQ(out["params"]["lr"], 0.001);
  ASSERT_EQ(out["steps"].size(), 2u);
  const json& first = out["steps"][0];
  expect_json_near(first["logits"], kSourceLogitsX1, kTol);  // the prediction before the update
  EXPECT_EQ(first["num_used"], 4);
  expect_json_near(first["model"]["1.weight"], kTentGamma1, kTol);
  expect_json_near(first["model"]["1.bias"], kTentBeta1, kTol);
  expect_json_near(first["model"]["0.weight"], kW1, 1e-7);  // only the BatchNorm affine adapts
  expect_json_near(first["model"]["3.bias"], kB2, 1e-7);
  expect_json_near(first["model"]["1.running_mean"], {0, 0, 0, 0}, 0);
  const json& second = out["steps"][1];
  expect_json_near(second["logits"], kTentLogitsX2, kTol);
  expect_json_near(second["model"]["1.weight"], kTentGamma2, kTol);
  expect_json_near(second["model"]["1.bias"], kTentBeta2, kTol);
}

// A tta-only method needs no "paradigm"; float64 gives the same steps.
TEST(TtaProbe, ParadigmDefaultsToTtaAndFloat64Agrees) {
  json request = tent_request({{{"inputs", kX1}}, {{"inputs", kX2}}});
  request.erase("paradigm");
  request["dtype"] = "float64";
  const json out = probe::run_probe(request);
  EXPECT_EQ(out["paradigm"], "tta");
  EXPECT_EQ(out["dtype"], "float64");
  expect_json_near(out["steps"][0]["logits"], kSourceLogitsX1, kTol);
  expect_json_near(out["steps"][1]["logits"], kTentLogitsX2, kTol);
  expect_json_near(out["steps"][1]["model"]["1.weight"], kTentGamma2, kTol);
}

// "reset" restores the source weights and sets the method up afresh: the
// step repeats the first one exactly (a new Adam moves each weight by lr).
TEST(TtaProbe, ResetStartsTheMethodFromTheSourceAgain) {
  const json out =
      probe::run_probe(tent_request({{{"inputs", kX1}}, {{"inputs", kX2}}, {{"inputs", kX1}, {"reset", true}}}));
  const json& again = out["steps"][2];
  expect_json_near(again["logits"], kSourceLogitsX1, kTol);
  expect_json_near(again["model"]["1.weight"], kTentGamma1, kTol);
  expect_json_near(again["model"]["1.bias"], kTentBeta1, kTol);
}

// EATA's Fisher comes from the held-out samples in batches of batch_size.
TEST(TtaProbe, HeldOutSamplesReachTheMethod) {
  const json request = {{"method", "eata"},
                        {"params", {{"fisher_size", 6}, {"d_margin", 0.4}, {"lr", 0.05}}},
                        {"model", tiny_model_json()},
                        {"held_out", kHeldOut},
                        {"batch_size", 4},
                        {"steps", {{{"inputs", kX1}}}}};
  const json out = probe::run_probe(request);
  EXPECT_EQ(out["held_out"], 6);
  const json& state = out["steps"][0]["state"];
  const json& fisher = state["fisher.0"];
  ASSERT_EQ(fisher.size(), kEataFisherWeight.size());
  for (std::size_t i = 0; i < kEataFisherWeight.size(); ++i)
    EXPECT_NEAR(fisher[i].get<double>(), kEataFisherWeight[i], 1e-5 * kEataFisherWeight[i] + 1e-9) << i;
  EXPECT_EQ(out["steps"][0]["num_used"], 2);  // entropy below 0.4 ln 3: rows 0 and 1
}

// `source` predicts with the running statistics given in the request.
TEST(TtaProbe, RunningStatisticsAreTheOnesGiven) {
  const std::vector<double> mean = {0.1, -0.2, 0.0, 0.3}, var = {2.0, 0.5, 1.0, 1.5};
  const double eps = 1e-3;
  json request = {{"method", "source"},
                  {"paradigm", "tta"},
                  {"model", tiny_model_json({{"running_mean", mean}, {"running_var", var}, {"eps", eps}})},
                  {"steps", {{{"inputs", kX1}}}}};
  const json out = probe::run_probe(request);
  Rows expected;
  for (const auto& x : kX1) {
    std::vector<double> r(4), z(3);
    for (std::size_t j = 0; j < 4; ++j) {
      double h = kB1[j];
      for (std::size_t i = 0; i < 3; ++i) h += kW1[j][i] * x[i];
      r[j] = std::max(0.0, (h - mean[j]) / std::sqrt(var[j] + eps) * kGamma[j] + kBeta[j]);
    }
    for (std::size_t k = 0; k < 3; ++k) {
      z[k] = kB2[k];
      for (std::size_t j = 0; j < 4; ++j) z[k] += kW2[k][j] * r[j];
    }
    expected.push_back(z);
  }
  expect_json_near(out["steps"][0]["logits"], expected, kTol);
  EXPECT_EQ(out["steps"][0]["num_used"], 0);
  expect_json_near(out["steps"][0]["model"]["1.running_var"], var, 1e-7);
}

// A convolutional model: conv2d 1x1 -> batchnorm2d -> relu -> maxpool2d ->
// flatten -> linear, under bn_adapt (batch statistics over N, H, W; running
// statistics updated with momentum 0.1 and the unbiased variance).
TEST(TtaProbe, ConvolutionalLayersUnderBnAdapt) {
  const std::vector<std::vector<double>> images = {{1.0, -0.5, 0.25, 2.0}, {0.0, 1.5, -1.0, 0.5}};  // [2, 1, 2, 2]
  const double cw[2] = {2.0, -1.0}, cb[2] = {0.5, 0.0}, gamma[2] = {1.5, 0.5}, beta[2] = {0.0, 1.0};
  const double lw[2][2] = {{1.0, -1.0}, {0.5, 2.0}}, lb[2] = {0.0, 0.1};
  json inputs = json::array();
  for (const auto& im : images)
    inputs.push_back(json::array({json::array({json::array({im[0], im[1]}), json::array({im[2], im[3]})})}));
  const json request = {
      {"method", "bn_adapt"},
      {"model", json::array({{{"conv2d", {{"weight", json::parse("[[[[2.0]]], [[[-1.0]]]]")}, {"bias", {cb[0], cb[1]}}}}},
                             {{"batchnorm2d", {{"weight", {gamma[0], gamma[1]}}, {"bias", {beta[0], beta[1]}}}}},
                             {{"relu", json::object()}},
                             {{"maxpool2d", {{"kernel", 2}}}},
                             {{"flatten", json::object()}},
                             {{"linear", {{"weight", {{lw[0][0], lw[0][1]}, {lw[1][0], lw[1][1]}}}, {"bias", {lb[0], lb[1]}}}}}})},
      {"steps", {{{"inputs", inputs}}}}};
  const json out = probe::run_probe(request);

  double mean[2], var_biased[2], var_unbiased[2];
  for (int c = 0; c < 2; ++c) {
    double s = 0, ss = 0;
    for (const auto& im : images)
      for (double v : im) s += cw[c] * v + cb[c];
    mean[c] = s / 8;
    for (const auto& im : images)
      for (double v : im) ss += (cw[c] * v + cb[c] - mean[c]) * (cw[c] * v + cb[c] - mean[c]);
    var_biased[c] = ss / 8;
    var_unbiased[c] = ss / 7;
  }
  Rows expected;
  for (const auto& im : images) {
    double pooled[2];
    for (int c = 0; c < 2; ++c) {
      pooled[c] = 0;  // relu's floor
      for (double v : im)
        pooled[c] = std::max(pooled[c], (cw[c] * v + cb[c] - mean[c]) / std::sqrt(var_biased[c] + 1e-5) * gamma[c] + beta[c]);
    }
    expected.push_back({lw[0][0] * pooled[0] + lw[0][1] * pooled[1] + lb[0], lw[1][0] * pooled[0] + lw[1][1] * pooled[1] + lb[1]});
  }
  const json& step = out["steps"][0];
  EXPECT_EQ(out["num_classes"], 2);
  expect_json_near(step["logits"], expected, kTol);
  EXPECT_EQ(step["num_used"], 0);
  expect_json_near(step["model"]["1.running_mean"], {0.1 * mean[0], 0.1 * mean[1]}, kTol);
  expect_json_near(step["model"]["1.running_var"], {0.9 + 0.1 * var_unbiased[0], 0.9 + 0.1 * var_unbiased[1]}, kTol);
  EXPECT_EQ(step["model"]["0.weight"], json::parse("[[[[2.0]]], [[[-1.0]]]]"));  // no gradient step
}

TEST(TtaProbe, RejectsMalformedRequestsNamingTheKey) {
  const json steps = {{{"inputs", kX1}}};
  const auto with_model = [&](json model) {
    json r = tent_request(steps);
    r["model"] = std::move(model);
    return r;
  };
  const auto layer = [](json l) { return json::array({std::move(l)}); };
  struct Case {
    json request;
    std::string message;
  };
  json no_model = tent_request(steps);
  no_model.erase("model");
  json bad_step_key = tent_request({{{"inputs", kX1}, {"labels", {0, 1, 2, 0}}}});
  json bad_reset = tent_request({{{"inputs", kX1}}, {{"inputs", kX2}, {"reset", 1}}});
  json bad_shape = tent_request({{{"inputs", kX1}}, {{"inputs", {{1.0, 2.0}}}}});
  json bad_held_out = tent_request(steps);
  bad_held_out["held_out"] = {{1.0, 2.0}};
  json classify_key = tent_request(steps);
  classify_key["logits"] = {{0.0, 1.0}};
  json ce = tent_request(steps);
  ce["method"] = "ce";
  const std::vector<Case> cases = {
      {no_model, "model is missing"},
      {with_model(json::array()), "model must be a non-empty list"},
      {with_model(layer({{"dropout", json::object()}})), "model[0]: unknown layer 'dropout' (expected linear, conv2d"},
      {with_model(layer({{"linear", {{"bias", {0.0}}}}})), "model[0].linear.weight is missing"},
      {with_model(layer({{"linear", {{"weight", {{1.0, 2.0, 3.0}}}, {"bias", {0.0, 1.0}}}}})),
       "model[0].linear.bias has 2 entries, expected 1"},
      {with_model(layer({{"linear", {{"weight", {{1.0, 2.0, 3.0}}}, {"bais", {0.0}}}}})),
       "unknown key 'bais' in model[0].linear"},
      {with_model(layer({{"batchnorm1d", {{"momentum", 2.0}, {"num_features", 3}}}})),
       "model[0].batchnorm1d.momentum must be in [0"},
      {with_model(layer({{"batchnorm1d", json::object()}})), "needs num_features"},
      {with_model(layer({{"linear", {{"weight", {{1.0, 2.0}}}}}})), "model does not fit steps[0].inputs of shape [4, 3]"},
      {with_model(layer({{"relu", json::object()}, {"flatten", json::object()}})), "must be an object with one key"},
      {bad_step_key, "unknown key 'labels' in steps[0]"},
      {bad_reset, "steps[1].reset must be true or false"},
      {bad_shape, "steps[1].inputs has shape [1, 2]"},
      {bad_held_out, "held_out has shape [1, 2]"},
      {classify_key, "unknown key 'logits' in the request (tta)"},
      {ce, "method 'ce' does not support the tta paradigm"},
  };
  for (const Case& c : cases) {
    const std::string e = error_of(c.request);
    EXPECT_NE(e.find(c.message), std::string::npos) << "expected \"" << c.message << "\" in: " << e;
    EXPECT_EQ(e.rfind("probe request: ", 0), 0u) << e;
  }
  // A model whose output is not [B, K].
  json images = tent_request({{{"inputs", json::parse("[[[[1.0]]]]")}}});
  images["model"] = layer({{"conv2d", {{"weight", json::parse("[[[[1.0]]]]")}}}});
  EXPECT_NE(error_of(images).find("model must end in logits [B, K]"), std::string::npos) << error_of(images);
}

// What the method itself refuses surfaces as its error, naming the method.
TEST(TtaProbe, MethodErrorsNameTheMethod) {
  json request = tent_request({{{"inputs", kX1}}});
  request["model"] = json::array({{{"linear", {{"weight", kW2}}}}});  // 4 -> 3, no BatchNorm
  request["steps"] = {{{"inputs", {{1.0, 0.0, 0.0, 0.0}, {0.0, 1.0, 0.0, 0.0}}}}};
  try {
    probe::run_probe(request);
    FAIL() << "tent accepted a model without BatchNorm";
  } catch (const plugins::PluginError& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("tent"), std::string::npos) << what;
    EXPECT_NE(what.find("BatchNorm"), std::string::npos) << what;
  }
}

}  // namespace
}  // namespace reglab::testing
