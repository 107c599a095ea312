// Golden tests for the `sfda_kl` plugin, run as the tta paradigm runs it
// (TtaSession). The expected numbers come from the official
// losses.py::EntKLProp of mathilde-b/SFDA @ fdcd141 (with utils.py's
// norm_soft_size; its image-only imports stubbed out), run in Debian's
// python3-torch 1.13 with power 1, curi True, ivd False, lamb_se =
// lamb_consprior = 1 and the class weights named in each test. The batch's
// softmax [B, K] is passed as one image [1, K, B, 1] (the samples take the
// place of the pixels) with bounds = prior·B, so that the loss's size prior
// is the class-ratio prior; the step is main_sfda.py's: zero_grad, forward
// in train mode, loss_se + loss_cons_prior, backward, Adam(betas (0.9,
// 0.999), weight_decay) over net.parameters() — or over the BatchNorm affine
// parameters with batch statistics only for adapt = "bn_affine". Printed:
// the outputs, every parameter and the BatchNorm buffers after each step.
// The Python model is the one make_tiny_bn_model builds, with the BatchNorm
// as BatchNorm2d on [B, H, 1, 1] (the same statistics and running updates as
// BatchNorm1d on [B, H]).
//
// Not compared: the first Linear's bias (and the running mean it shifts
// after its first change). The BatchNorm after it removes it, so its
// gradient is zero up to rounding, and Adam's normalised step turns that
// rounding into a step of up to lr.
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

// The running statistics after one train-mode forward of kX1 (momentum 0.1, unbiased variance).
const std::vector<double> kRunningMean1 = {0.0682500005, -0.0155000007, -0.0074999989, 0.0667500049};
const std::vector<double> kRunningVar1 = {1.00552249, 1.01393664, 0.986436665, 0.96758914};

constexpr double kTol = 2e-5;
// A value the step must leave alone: the float32 nearest the decimal constant.
constexpr double kUnchanged = 1e-7;

torch::Tensor x(const Rows& rows) { return make_logits(rows, torch::kFloat); }

torch::nn::BatchNorm1dImpl& bn(TtaSession& s) { return *s.model()->ptr(1)->as<torch::nn::BatchNorm1dImpl>(); }
torch::nn::LinearImpl& fc(TtaSession& s, std::size_t i) { return *s.model()->ptr(i)->as<torch::nn::LinearImpl>(); }

void expect_vec_near(const torch::Tensor& actual, const std::vector<double>& expected, double tol) {
  expect_rows_near(actual.detach().reshape({1, -1}), Rows{expected}, tol);
}

struct Expected {
  Rows w1;
  std::vector<double> gamma, beta;
  Rows w2;
  std::vector<double> b2;
};

void expect_params(TtaSession& s, const Expected& p) {
  expect_rows_near(fc(s, 0).weight, p.w1, kTol);
  expect_vec_near(bn(s).weight, p.gamma, kTol);
  expect_vec_near(bn(s).bias, p.beta, kTol);
  expect_rows_near(fc(s, 3).weight, p.w2, kTol);
  expect_vec_near(fc(s, 3).bias, p.b2, kTol);
}

// Uniform weights and prior, lr 0.01, weight decay 1e-5 (the default).
const Expected kUniformStep1 = {
    {{0.49000001, -0.309999943, 0.810000002}, {-0.610000014, 0.889999986, 0.209999993},
     {0.310000002, 0.390000015, -0.709999979}, {0.790000021, 0.0900000036, 0.50999999}},
    {1.00999999, 0.810000002, 1.21000004, 0.909999967},
    {0.109999999, -0.0900000036, 0.189999998, 0.00999999791},
    {{1.50999999, -1.00999999, 0.49000001, 2.00999999}, {-1.21000004, 1.80999994, 0.689999998, -0.50999999},
     {0.390000015, -0.610000014, 2.50999999, 0.99000001}},
    {0.109999999, 0.00999999512, -0.109999999}};

TEST(SfdaKlTest, TwoStepsAdaptEveryParameterInTrainMode) {
  TtaSession s("sfda_kl", R"({"lr": 0.01})", tiny(), 3);
  TtaStepResult r = s.step(x(kX1));
  expect_rows_near(r.logits, kSourceLogitsX1, kTol);  // the forward before the update
  EXPECT_EQ(r.num_used, 4);
  expect_params(s, kUniformStep1);
  const auto buffers = s.model()->named_buffers();
  expect_vec_near(buffers["1.running_mean"], kRunningMean1, 1e-6);
  expect_vec_near(buffers["1.running_var"], kRunningVar1, 1e-6);

  r = s.step(x(kX2));
  expect_rows_near(r.logits, {{0.431156456, -0.16552797, -0.055600863},
                              {1.13755667, 1.45696735, 5.15360594},
                              {4.65863276, -1.89346576, 2.32657051},
                              {0.560306966, 0.908418953, -0.187524319}},
                   kTol);
  expect_params(s, {{{0.496440113, -0.317497164, 0.803205252}, {-0.606926382, 0.883555233, 0.21914506},
                     {0.303714246, 0.387666464, -0.718346536}, {0.794716716, 0.0805152655, 0.506555915}},
                    {1.01682138, 0.819784701, 1.21999669, 0.918924809},
                    {0.112425387, -0.0799890384, 0.181145802, 0.012935333},
                    {{1.51861906, -1.01998818, 0.480436951, 2.01974845},
                     {-1.20728707, 1.81974053, 0.680352986, -0.506421268},
                     {0.380287975, -0.619431734, 2.52001286, 0.980010152}},
                    {0.116843358, 0.019433016, -0.119500786}});
  expect_vec_near(s.model()->named_buffers()["1.running_var"], {0.963510811, 0.986793816, 0.993637145, 0.907037735},
                  1e-5);
}

TEST(SfdaKlTest, ClassWeightsAndPrior) {
  TtaSession s("sfda_kl",
               R"({"lr": 0.01, "weight_decay": 0, "class_weights": [0.2, 0.5, 0.3], "prior": [0.5, 0.3, 0.2]})",
               tiny(), 3);
  s.step(x(kX1));
  expect_params(s, {{{0.49000001, -0.290000051, 0.810000002}, {-0.610000014, 0.889999986, 0.209999993},
                     {0.309999973, 0.390000015, -0.709999979}, {0.790000021, 0.0900000036, 0.50999999}},
                    {1.00999999, 0.810000002, 1.21000004, 0.909999967},
                    {0.109999999, -0.0900000036, 0.189999998, 0.00999999885},
                    {{1.50999999, -1.00999999, 0.50999999, 2.00999999},
                     {-1.21000004, 1.80999994, 0.689999998, -0.50999999},
                     {0.390000015, -0.610000014, 2.50999999, 0.99000001}},
                    {0.109999999, 0.00999998953, -0.109999999}});
  const TtaStepResult r = s.step(x(kX2));
  expect_rows_near(r.logits, {{0.401462495, -0.141733468, -0.0632701665},
                              {1.17949748, 1.45696723, 5.15360546},
                              {4.65578127, -1.886868, 2.32444382},
                              {0.596376181, 0.879515827, -0.178208441}},
                   kTol);
  expect_params(s, {{{0.49089244, -0.296540231, 0.806366265}, {-0.620009601, 0.880051732, 0.219824865},
                     {0.302994639, 0.38721326, -0.717971206}, {0.784611046, 0.0804578513, 0.516263604}},
                    {1.01862979, 0.818492115, 1.21971583, 0.919414937},
                    {0.119196482, -0.0804678798, 0.181983843, 0.0184112359},
                    {{1.51952982, -1.00461984, 0.513299167, 2.01971459},
                     {-1.20871222, 1.81887269, 0.680732429, -0.510168791},
                     {0.380109042, -0.620013416, 2.5184114, 0.980133951}},
                    {0.120009296, 0.0199137665, -0.120001167}});
}

TEST(SfdaKlTest, BatchNormAffineOnlyWithBatchStatistics) {
  TtaSession s("sfda_kl", R"({"lr": 0.01, "adapt": "bn_affine"})", tiny(), 3);
  TtaStepResult r = s.step(x(kX1));
  expect_rows_near(r.logits, kSourceLogitsX1, kTol);
  r = s.step(x(kX2));
  expect_rows_near(r.logits, {{0.393635184, -0.177545696, -0.0408181101},
                              {1.15109217, 1.47152901, 5.15546083},
                              {4.63706732, -1.91523278, 2.3091011},
                              {0.521447301, 0.905225277, -0.173828185}},
                   kTol);
  expect_params(s, {kW1, {1.01688373, 0.819777846, 1.22000074, 0.91894877},
                    {0.112315662, -0.0799885243, 0.18115066, 0.0129265478}, kW2, kB2});
  expect_vec_near(fc(s, 0).bias, kB1, kUnchanged);
  EXPECT_FALSE(fc(s, 0).weight.requires_grad());
  const auto buffers = s.model()->named_buffers();
  expect_vec_near(buffers["1.running_mean"], {0, 0, 0, 0}, kUnchanged);
  expect_vec_near(buffers["1.running_var"], {1, 1, 1, 1}, kUnchanged);
}

TEST(SfdaKlTest, ResetRestoresTheSourceAndAFreshAdam) {
  TtaSession s("sfda_kl", R"({"lr": 0.01})", tiny(), 3);
  s.step(x(kX1));
  s.step(x(kX2));
  s.reset();
  expect_rows_near(fc(s, 3).weight, kW2, kUnchanged);
  const TtaStepResult r = s.step(x(kX1));
  expect_rows_near(r.logits, kSourceLogitsX1, kTol);
  expect_params(s, kUniformStep1);
  expect_vec_near(s.model()->named_buffers()["1.running_mean"], kRunningMean1, 1e-6);
}

TEST(SfdaKlTest, RejectsBadParameters) {
  const auto& info = *build_plugin("sfda_kl").info;
  for (const char* bad : {R"({"lr": -1})", R"({"weight_decay": -1})", R"({"lambda_ent": -1})", R"({"lambda_kl": -0.5})",
                          R"({"class_weights": [1, -1, 1]})", R"({"prior": [0.5, 1.5, -1]})", R"({"adapt": "bn"})",
                          R"({"prior": 0.3})"}) {
    EXPECT_THROW(plugins::resolve_params(info, bad), std::invalid_argument) << bad;
  }
  // Known only with K: the lengths, and a prior that is not a distribution.
  for (const char* bad : {R"({"prior": [0.5, 0.5]})", R"({"class_weights": [1, 1]})", R"({"prior": [0.5, 0.3, 0.1]})"}) {
    try {
      TtaSession s("sfda_kl", bad, tiny(), 3);
      ADD_FAILURE() << bad << " was accepted";
    } catch (const std::exception& e) {
      EXPECT_NE(std::string(e.what()).find("sfda_kl"), std::string::npos) << e.what();
    }
  }
  torch::nn::Sequential plain(torch::nn::Linear(3, 3));
  EXPECT_THROW(TtaSession("sfda_kl", R"({"adapt": "bn_affine"})", plain, 3), std::exception);
  EXPECT_NO_THROW(TtaSession("sfda_kl", "{}", torch::nn::Sequential(torch::nn::Linear(3, 3)), 3));
}

}  // namespace
}  // namespace reglab::testing
