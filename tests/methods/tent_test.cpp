// Golden tests for the `tent` plugin, run as the tta paradigm runs it
// (TtaSession). The expected numbers come from the official tent.py of
// DequanWang/tent @ e9e926a, run unmodified in Debian's python3-torch 1.13:
// configure_model, collect_params, the optimizer of cifar10c.py's
// setup_optimizer with the options named in each test, then Tent(model,
// optimizer, steps, episodic) called on the batches below, printing the
// returned outputs and the BatchNorm weight and bias after each call. The
// Python model is the one make_tiny_bn_model builds (the same weights), with
// the BatchNorm as BatchNorm2d on [B, H, 1, 1] (the layer the official code
// looks for; the statistics over B×1×1 are those of BatchNorm1d over [B, H]).
#include <gtest/gtest.h>

#include <torch/nn/modules/batchnorm.h>
#include <torch/nn/modules/container/sequential.h>
#include <torch/nn/modules/linear.h>
#include <torch/types.h>

#include <stdexcept>
#include <string>
#include <vector>

#include "methods/method_harness.h"
#include "methods/tta_fixture.h"
#include "methods/tta_harness.h"
#include "plugins/method_handle.h"

namespace reglab::testing {
namespace {

using namespace tta_fixture;

constexpr double kTol = 2e-5;
// A value the step must leave alone: the float32 nearest the decimal constant.
constexpr double kUnchanged = 1e-7;

torch::Tensor x(const Rows& rows) { return make_logits(rows, torch::kFloat); }

torch::nn::BatchNorm1dImpl& bn(TtaSession& s) { return *s.model()->ptr(1)->as<torch::nn::BatchNorm1dImpl>(); }
torch::nn::LinearImpl& fc(TtaSession& s, std::size_t i) { return *s.model()->ptr(i)->as<torch::nn::LinearImpl>(); }

void expect_vec_near(const torch::Tensor& actual, const std::vector<double>& expected, double tol) {
  expect_rows_near(actual.detach().reshape({1, -1}), Rows{expected}, tol);
}

void expect_bn(TtaSession& s, const std::vector<double>& gamma, const std::vector<double>& beta, double tol = kTol) {
  expect_vec_near(bn(s).weight, gamma, tol);
  expect_vec_near(bn(s).bias, beta, tol);
}

TEST(TentTest, OneStepReturnsPreUpdateLogitsAndAdaptsOnlyBatchNormAffine) {
  TtaSession s("tent", "{}", tiny(), 3);
  const TtaStepResult r = s.step(x(kX1));
  expect_rows_near(r.logits, kSourceLogitsX1, kTol);
  EXPECT_EQ(r.num_used, 4);
  EXPECT_FALSE(r.logits.requires_grad());
  // Adam's first step moves each parameter by lr against its gradient's sign.
  expect_bn(s, kTentGamma1, kTentBeta1);
  expect_rows_near(fc(s, 0).weight, kW1, kUnchanged);
  expect_vec_near(fc(s, 0).bias, kB1, 1e-7);
  expect_rows_near(fc(s, 3).weight, kW2, kUnchanged);
  expect_vec_near(fc(s, 3).bias, kB2, 1e-7);
  EXPECT_TRUE(bn(s).weight.requires_grad());
  EXPECT_TRUE(bn(s).bias.requires_grad());
  EXPECT_FALSE(fc(s, 0).weight.requires_grad());
  EXPECT_FALSE(fc(s, 3).bias.requires_grad());
  EXPECT_TRUE(s.model()->is_training());
  // Batch statistics only: the source running statistics are neither used nor updated.
  EXPECT_FALSE(bn(s).options.track_running_stats());
  const auto buffers = s.model()->named_buffers();
  expect_vec_near(buffers["1.running_mean"], {0, 0, 0, 0}, kUnchanged);
  expect_vec_near(buffers["1.running_var"], {1, 1, 1, 1}, kUnchanged);
}

TEST(TentTest, SecondStepCarriesTheAdamMomentsAndEvalModeUsesBatchStatistics) {
  TtaSession s("tent", "{}", tiny(), 3);
  s.step(x(kX1));
  const TtaStepResult r = s.step(x(kX2));
  expect_rows_near(r.logits, kTentLogitsX2, kTol);
  expect_bn(s, kTentGamma2, kTentBeta2);
  // As the official model after configure_model: eval mode still normalises with the batch.
  s.model()->eval();
  torch::NoGradGuard no_grad;
  expect_rows_near(s.model()->forward(x(kX1)), {{0.926832914, 1.15756607, 4.03416443},
                                                {-0.953324199, 2.58320522, 0.212935299},
                                                {2.33581257, -1.58830297, 0.581212521},
                                                {4.10642481, -1.4225235, 2.48398876}},
                   kTol);
}

TEST(TentTest, AdamLearningRateAndBeta) {
  TtaSession s("tent", R"({"lr": 0.1, "beta": 0.5})", tiny(), 3);
  s.step(x(kX1));
  expect_bn(s, {1.10000002, 0.899999976, 1.30000007, 0.99999994}, {0.199999988, -2.23517418e-08, 0.100000016, 0.099999994});
  const TtaStepResult r = s.step(x(kX2));
  expect_rows_near(r.logits, {{0.438835621, -0.107332453, -0.0642225295},
                              {1.11049938, 1.62816191, 5.2460084},
                              {5.31144381, -2.3085084, 2.38821745},
                              {0.7419613, 1.06109536, -0.129068226}},
                   kTol);
  expect_bn(s, {1.16093159, 0.975668728, 1.39979541, 1.07550526}, {0.269486308, 0.0385365896, 0.052550409, 0.135445967});
}

TEST(TentTest, SgdWithNesterovMomentum) {
  TtaSession s("tent", R"({"optimizer": "sgd", "lr": 0.5})", tiny(), 3);
  s.step(x(kX1));
  expect_bn(s, {1.16182899, 1.06524372, 1.30401158, 1.00174797}, {0.261746943, 0.0556788221, 0.135990337, 0.14788349});
  const TtaStepResult r = s.step(x(kX2));
  expect_rows_near(r.logits, {{0.457100749, -0.0362031087, -0.087932311},
                              {1.06373763, 1.78006065, 5.31107664},
                              {5.62254763, -2.46216989, 2.58032465},
                              {0.70509541, 1.40993392, -0.205023021}},
                   kTol);
  expect_bn(s, {1.22811079, 1.3468523, 1.45133758, 1.06163883}, {0.310384452, 0.169309527, 0.112915881, 0.139039502});
}

TEST(TentTest, SgdWithDampeningAndWeightDecay) {
  TtaSession s("tent",
               R"({"optimizer": "sgd", "lr": 0.5, "momentum": 0.5, "dampening": 0.1, "weight_decay": 0.01, "nesterov": false})",
               tiny(), 3);
  s.step(x(kX1));
  expect_bn(s, {1.08017313, 0.935602009, 1.24874294, 0.949051559}, {0.184629977, -0.0175637752, 0.165310711, 0.0778334141});
  s.step(x(kX2));
  expect_bn(s, {1.12330914, 1.06500757, 1.31636548, 0.985547841}, {0.232148588, 0.0351229943, 0.142721027, 0.095711492});
}

TEST(TentTest, SeveralStepsReturnTheLastForward) {
  TtaSession s("tent", R"({"lr": 0.1, "steps": 3})", tiny(), 3);
  const TtaStepResult r = s.step(x(kX1));
  expect_rows_near(r.logits, {{1.14209545, 1.14350438, 4.25021553},
                              {-1.55804026, 3.42603755, -0.48767212},
                              {3.44420052, -2.21373916, 0.987626195},
                              {5.48925543, -2.19249868, 2.69434643}},
                   kTol);
  expect_bn(s, {1.29527223, 1.08878875, 1.5002408, 1.19489622}, {0.395288587, 0.188788787, -0.0626841038, 0.297565222});
}

TEST(TentTest, EpisodicStartsEveryBatchFromTheSource) {
  TtaSession s("tent", R"({"lr": 0.1, "episodic": true})", tiny(), 3);
  s.step(x(kX1));
  const TtaStepResult r = s.step(x(kX2));
  expect_rows_near(r.logits, {{0.388612926, -0.185347185, -0.0382176153},
                              {1.14819062, 1.46746683, 5.14095306},
                              {4.56213665, -1.87153554, 2.30031013},
                              {0.49694559, 0.887906432, -0.178801596}},
                   kTol);
  expect_bn(s, {1.10000002, 0.899999976, 1.30000007, 0.99999994}, {0.199999988, -4.47034836e-08, 0.100000054, -0.0999999046});
}

TEST(TentTest, ResetRestoresTheSourceModelAndAFreshOptimizer) {
  TtaSession s("tent", R"({"lr": 0.1})", tiny(), 3);
  s.step(x(kX1));
  s.step(x(kX2));
  s.reset();
  expect_bn(s, kGamma, kBeta, 1e-7);
  const TtaStepResult r = s.step(x(kX1));
  expect_rows_near(r.logits, kSourceLogitsX1, kTol);
  // A fresh Adam: the first step is again ±lr.
  expect_bn(s, {1.10000002, 0.899999976, 1.30000007, 0.99999994}, {0.199999988, 0.0, 0.100000016, 0.099999994});
}

TEST(TentTest, RejectsBadParameters) {
  const auto& info = *build_plugin("tent").info;
  for (const char* bad : {R"({"lr": -0.1})", R"({"optimizer": "rmsprop"})", R"({"steps": 0})", R"({"beta": 1.5})",
                          R"({"momentum": -0.1})", R"({"weight_decay": -1})", R"({"episodic": 1})", R"({"lr_": 1})"}) {
    EXPECT_THROW(plugins::resolve_params(info, bad), std::invalid_argument) << bad;
  }
  EXPECT_NO_THROW(plugins::resolve_params(info, R"({"optimizer": "sgd", "lr": 0.00025, "momentum": 0.9})"));
  // torch's SGD refuses Nesterov without momentum or with dampening.
  EXPECT_THROW(TtaSession("tent", R"({"optimizer": "sgd", "momentum": 0.0})", tiny(), 3), std::exception);
  EXPECT_THROW(TtaSession("tent", R"({"optimizer": "sgd", "dampening": 0.5})", tiny(), 3), std::exception);
}

TEST(TentTest, RejectsAModelWithoutBatchNorm) {
  torch::nn::Sequential plain(torch::nn::Linear(3, 3));
  try {
    TtaSession s("tent", "{}", plain, 3);
    FAIL() << "a model without BatchNorm was accepted";
  } catch (const std::exception& e) {
    EXPECT_NE(std::string(e.what()).find("BatchNorm"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace reglab::testing
