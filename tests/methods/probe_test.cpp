// probe: a method's hooks run from a JSON request, through the real plugins
// (found by name in the registry) and through an in-test stateful method.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <cmath>
#include <stdexcept>
#include <string>

#include "methods/golden_cases.h"
#include "probe/probe.h"
#include "reglab/method.h"

namespace reglab::probe {
namespace {

using nlohmann::json;
namespace golden = testing::golden;

const double kLn3 = std::log(3.0);

std::string error_of(const json& request) {
  try {
    run_probe(request);
  } catch (const std::invalid_argument& e) {
    return e.what();
  }
  return "(no invalid_argument)";
}

void expect_json_rows_near(const json& actual, const testing::Rows& expected, double tol) {
  ASSERT_TRUE(actual.is_array());
  ASSERT_EQ(actual.size(), expected.size());
  for (std::size_t i = 0; i < expected.size(); ++i) {
    ASSERT_EQ(actual[i].size(), expected[i].size());
    for (std::size_t j = 0; j < expected[i].size(); ++j)
      EXPECT_NEAR(actual[i][j].get<double>(), expected[i][j], tol) << "at [" << i << "][" << j << "]";
  }
}

// A single step at the top level; the hand case of label_smoothing_test
// (K = 2, ε = 0.2, p = (1/4, 3/4), y = 1): loss 0.1 ln 4 + 0.9 ln(4/3),
// gradient (0.15, −0.15).
TEST(Probe, SingleStepAtTopLevel) {
  const json request = {{"method", "label_smoothing"},
                        {"params", {{"epsilon", 0.2}}},
                        {"logits", {{0.0, kLn3}}},
                        {"labels", {1}}};
  const json out = run_probe(request);
  EXPECT_EQ(out["method"], "label_smoothing");
  EXPECT_EQ(out["version"], "1.0.0");
  EXPECT_EQ(out["dtype"], "float64");
  EXPECT_EQ(out["params"], json({{"epsilon", 0.2}}));
  EXPECT_EQ(out["num_samples"], 1);
  EXPECT_EQ(out["num_classes"], 2);
  EXPECT_EQ(out["total_epochs"], 1);
  ASSERT_EQ(out["steps"].size(), 1u);
  const json& step = out["steps"][0];
  EXPECT_NEAR(step["loss"].get<double>(), 0.1 * std::log(4.0) + 0.9 * std::log(4.0 / 3.0), 1e-12);
  expect_json_rows_near(step["grad_logits"], {{0.15, -0.15}}, 1e-12);
  EXPECT_EQ(step["state"], json::object());
}

// A list of steps, float32, defaults filled in: each step is independent for
// a stateless method and matches torch (golden_cases.h).
TEST(Probe, StepsInFloat32WithDefaults) {
  const json request = {{"method", "confidence_penalty"},
                        {"dtype", "float32"},
                        {"steps",
                         {{{"logits", golden::kLogits}, {"labels", golden::kLabels}, {"indices", {4, 2, 0, 1}}},
                          {{"logits", {{0.0, 0.0, 0.0, 0.0, 0.0}}}, {"labels", {2}}, {"indices", {7}}}}}};
  const json out = run_probe(request);
  EXPECT_EQ(out["dtype"], "float32");
  EXPECT_EQ(out["params"], json({{"beta", 0.1}}));
  EXPECT_EQ(out["num_samples"], 8);  // 1 + the largest index
  EXPECT_EQ(out["num_classes"], 5);
  ASSERT_EQ(out["steps"].size(), 2u);
  EXPECT_NEAR(out["steps"][0]["loss"].get<double>(), golden::kCp01Loss, golden::kTol32);
  expect_json_rows_near(out["steps"][0]["grad_logits"], golden::kCp01Grad, golden::kTol32);
  // Equal logits: p = 1/5 each, CE = ln 5, H = ln 5 (its maximum, so dH/dz = 0):
  // loss = (1 − 0.1)·ln 5, gradient p − onehot = 0.2 − onehot.
  EXPECT_NEAR(out["steps"][1]["loss"].get<double>(), 0.9 * std::log(5.0), golden::kTol32);
  expect_json_rows_near(out["steps"][1]["grad_logits"], {{0.2, 0.2, -0.8, 0.2, 0.2}}, golden::kTol32);
}

TEST(Probe, CeMatchesTorchInFloat64) {
  const json out = run_probe({{"method", "ce"}, {"logits", golden::kLogits}, {"labels", golden::kLabels}});
  EXPECT_NEAR(out["steps"][0]["loss"].get<double>(), golden::kCeLoss, golden::kTol64);
  expect_json_rows_near(out["steps"][0]["grad_logits"], golden::kCeGrad, golden::kTol64);
}

TEST(Probe, RejectsMalformedRequests) {
  const json z = {{0.0, 1.0}, {2.0, 3.0}};
  EXPECT_EQ(error_of({{"method", "ce"}, {"labels", {0, 1}}}),
            "probe request: logits is missing (give logits/labels at the top level, or steps)");
  EXPECT_EQ(error_of({{"method", "ce"}, {"steps", {{{"labels", {0}}}}}}), "probe request: steps[0].logits is missing");
  EXPECT_EQ(error_of({{"method", "ce"}, {"logits", z}}), "probe request: labels is missing");
  EXPECT_EQ(error_of({{"method", "ce"}, {"logits", z}, {"labels", {0, 2}}}),
            "probe request: labels[1] = 2 is outside [0, 2)");
  EXPECT_EQ(error_of({{"method", "ce"}, {"logits", z}, {"labels", {0, -1}}}),
            "probe request: labels[1] = -1 is outside [0, 2)");
  EXPECT_EQ(error_of({{"method", "ce"}, {"logits", {{0.0, 1.0}, {2.0}}}, {"labels", {0, 1}}}),
            "probe request: logits[1]: ragged list: expected 2 elements, found 1");
  EXPECT_EQ(error_of({{"method", "ce"}, {"logits", z}, {"labels", {0}}}),
            "probe request: labels must be a list of 2 integers (one per logits row), got shape [1]");
  EXPECT_EQ(error_of({{"method", "ce"}, {"logits", {0.0, 1.0}}, {"labels", {0}}}),
            "probe request: logits must be a list of B rows of K numbers, got shape [2]");
  EXPECT_EQ(error_of({{"method", "ce"}, {"logits", z}, {"labels", {0, 1}}, {"dtype", "half"}}),
            "probe request: dtype must be \"float32\" or \"float64\", got \"half\"");
  EXPECT_EQ(error_of({{"method", "ce"}, {"logits", z}, {"labels", {0, 1}}, {"epoch", 2}}),
            "probe request: epoch 2 is not below total_epochs 1 (set total_epochs)");
  EXPECT_EQ(error_of({{"method", "ce"}, {"logits", z}, {"labels", {0, 1}}, {"num_classes", 3}}),
            "probe request: logits has 2 columns, expected 3 (num_classes)");
  EXPECT_EQ(error_of({{"method", "ce"}, {"logits", z}, {"labels", {0, 1}}, {"indices", {0, 5}}, {"num_samples", 3}}),
            "probe request: indices contains 5, which is not below num_samples 3");
  EXPECT_EQ(error_of({{"method", "ce"},
                      {"steps", {{{"logits", z}, {"labels", {0, 1}}}, {{"logits", {{1.0, 2.0, 3.0}}}, {"labels", {0}}}}}}),
            "probe request: steps[1].logits has 3 columns, expected 2 (as the first step)");
}

TEST(Probe, RejectsUnknownKeysMethodsAndParameters) {
  const json z = {{0.0, 1.0}};
  // A parameter put at the top level instead of under "params".
  const std::string key = error_of({{"method", "label_smoothing"}, {"epsilon", 0.2}, {"logits", z}, {"labels", {0}}});
  EXPECT_EQ(key.rfind("probe request: unknown key 'epsilon' in the request (expected method, params,", 0), 0u) << key;
  EXPECT_EQ(error_of({{"method", "ce"}, {"steps", {{{"logits", z}, {"labels", {0}}, {"label", {0}}}}}}).rfind(
                "probe request: unknown key 'label' in steps[0]", 0),
            0u);
  EXPECT_EQ(error_of({{"method", "ce"}, {"logits", z}, {"labels", {0}}, {"steps", json::array()}}),
            "probe request: logits at the top level cannot be combined with steps");
  EXPECT_NE(error_of({{"method", "no_such_method"}, {"logits", z}, {"labels", {0}}}).find("no_such_method"),
            std::string::npos);
  EXPECT_EQ(error_of({{"logits", z}, {"labels", {0}}}), "probe request: method is missing (a method name string)");
  EXPECT_NE(error_of({{"method", "label_smoothing"}, {"params", {{"epsilon", 1.5}}}, {"logits", z}, {"labels", {0}}})
                .find("epsilon"),
            std::string::npos);
  EXPECT_NE(error_of({{"method", "ce"}, {"state", {{"P", {{0.5}}}}}, {"logits", z}, {"labels", {0}}})
                .find("state.P is not part of the state of method 'ce' (it keeps no state)"),
            std::string::npos);
}

// ---- an in-test stateful method, to check state, epochs and metrics ----

// loss = 0.5·Σ logits (gradient 0.5 everywhere); after each step, seen[i] += 1
// for every index of the batch; on_epoch_end counts epochs; each step records
// the batch size as a metric.
class Counter final : public Method {
 public:
  void setup(const MethodContext& ctx) override {
    seen_ = torch::zeros({ctx.num_train_samples}, ctx.dtype);
    epochs_ended_ = torch::zeros({}, torch::kLong);
    ctx.log.info("setup with " + std::to_string(ctx.num_train_samples) + " samples");
  }
  torch::Tensor training_loss(const Batch& batch, const Outputs& outputs, const StepContext& step) override {
    step.metrics.record("method.batch", static_cast<double>(batch.targets.size(0)), step.step);
    return 0.5 * outputs.at("logits").sum();
  }
  void after_optimizer_step(const Batch& batch, const Outputs&, const StepContext&) override {
    seen_.index_add_(0, batch.indices, torch::ones({batch.indices.size(0)}, seen_.scalar_type()));
  }
  void on_epoch_end(const StepContext&) override { epochs_ended_ += 1; }
  StateDict state_dict() const override { return {{"seen", seen_}, {"epochs_ended", epochs_ended_}}; }
  void load_state_dict(const StateDict& state) override {
    seen_.copy_(state.at("seen"));
    if (state.count("epochs_ended")) epochs_ended_.copy_(state.at("epochs_ended"));
  }

 private:
  torch::Tensor seen_, epochs_ended_;
};

// Returns a loss that does not depend on the logits: a broken method.
class Detached final : public Method {
 public:
  torch::Tensor training_loss(const Batch&, const Outputs& outputs, const StepContext&) override {
    return outputs.at("logits").detach().sum();
  }
};

template <class M>
plugins::LoadedPlugin in_test_plugin(const char* name) {
  static PluginInfo info;
  info.name = name;
  info.version = "0.0.1";
  info.paradigms = kClassify;
  info.create = []() -> Method* { return new M(); };
  info.destroy = [](Method* m) { delete m; };
  return plugins::LoadedPlugin{&info, "(in-test)"};
}

TEST(Probe, CarriesStateAcrossStepsAndEndsEpochs) {
  const plugins::LoadedPlugin counter = in_test_plugin<Counter>("counter");
  const json request = {{"num_samples", 3},
                        {"total_epochs", 3},
                        {"state", {{"seen", {1, 0, 0}}}},
                        {"steps",
                         {{{"logits", {{1.0, 2.0}, {3.0, 4.0}}}, {"labels", {0, 1}}, {"indices", {2, 2}}},
                          {{"logits", {{1.0, 2.0}}}, {"labels", {0}}, {"indices", {1}}, {"epoch", 0}},
                          {{"logits", {{1.0, 2.0}}}, {"labels", {1}}, {"indices", {2}}, {"epoch", 2}}}}};
  const json out = run_probe(request, counter);
  ASSERT_EQ(out["steps"].size(), 3u);
  EXPECT_EQ(out["steps"][0]["loss"].get<double>(), 5.0);
  EXPECT_EQ(out["steps"][0]["grad_logits"], json({{0.5, 0.5}, {0.5, 0.5}}));
  // The loaded state plus this step's indices (2 twice: index_add_ accumulates).
  EXPECT_EQ(out["steps"][0]["state"], json({{"seen", {1.0, 0.0, 2.0}}, {"epochs_ended", 0}}));
  EXPECT_EQ(out["steps"][1]["state"], json({{"seen", {1.0, 1.0, 2.0}}, {"epochs_ended", 0}}));
  // Epoch 0 -> 2: on_epoch_end runs once, before the step.
  EXPECT_EQ(out["steps"][2]["state"], json({{"seen", {1.0, 1.0, 3.0}}, {"epochs_ended", 1}}));
  EXPECT_EQ(out["steps"][1]["metrics"], json::parse(R"([{"key": "method.batch", "value": 1.0, "step": 1}])"));
  EXPECT_EQ(out["log"], json::parse(R"(["info: setup with 3 samples"])"));
  EXPECT_TRUE(out["steps"][2]["state"]["epochs_ended"].is_number_integer());
}

TEST(Probe, ChecksGivenStateAgainstTheMethods) {
  const plugins::LoadedPlugin counter = in_test_plugin<Counter>("counter");
  const json step = {{"logits", {{1.0, 2.0}}}, {"labels", {0}}};
  const auto error = [&](const json& state) {
    json request = {{"num_samples", 3}, {"state", state}, {"steps", {step}}};
    try {
      run_probe(request, counter);
    } catch (const std::invalid_argument& e) {
      return std::string(e.what());
    }
    return std::string("(no invalid_argument)");
  };
  EXPECT_EQ(error({{"seen", {1, 2}}}), "probe request: state.seen has shape [2], the method's is [3]");
  EXPECT_EQ(error({{"sen", {1, 2, 3}}}),
            "probe request: state.sen is not part of the state of method 'counter' (it has: epochs_ended, seen)");
  EXPECT_EQ(error({{"epochs_ended", 1.5}}), "probe request: state.epochs_ended: expected an integer, found the number 1.5");
  EXPECT_EQ(error({{"seen", {1, "x", 3}}}).rfind("probe request: state.seen[1]: expected a number", 0), 0u);
  // The method name, if given, must be the plugin's.
  EXPECT_THROW(run_probe({{"method", "ce"}, {"steps", {step}}}, counter), std::invalid_argument);
}

TEST(Probe, RefusesALossThatIgnoresTheLogits) {
  const json request = {{"logits", {{1.0, 2.0}}}, {"labels", {0}}};
  EXPECT_THROW(run_probe(request, in_test_plugin<Detached>("detached")), std::runtime_error);
}

}  // namespace
}  // namespace reglab::probe
