// Golden tests of the owtta plugin (open-set TTA with the wisdom of crowds).
//
// Reference values: gaozhengqing/UniEnt @ af7faa8 `cifar/ostta.py`
// (configure_model, collect_params, the OSTTA class with criterion "ent" and
// its forward_and_adapt, unmodified), with Adam(lr) as `cifar/main.py`'s
// setup_optimizer builds it, run with python3-torch 1.13 on the tiny model of
// make_tiny_bn_model and the inputs below. The model's BatchNorm1d was a
// BatchNorm2d on [B, H, 1, 1] there, because that code's configure_model and
// collect_params recognise BatchNorm2d; both normalise over the batch alike.
// The empty-selection case has no reference output (the re-implementation
// steps on a NaN loss there): its expectations are the model's logits before
// the step, from the same python run, and parameters left as they were.
#include <gtest/gtest.h>
#include <torch/nn/modules/activation.h>
#include <torch/nn/modules/container/sequential.h>
#include <torch/nn/modules/linear.h>
#include <torch/types.h>
#include <torch/utils.h>

#include <string>
#include <vector>

#include "methods/method_harness.h"
#include "methods/tta_harness.h"

namespace reglab::testing {
namespace {

using Vec = std::vector<double>;

const Rows kW1 = {{0.5, -0.3, 0.2}, {-0.4, 0.6, 0.1}, {0.3, 0.2, -0.5}, {0.1, -0.2, 0.4}};
const Vec kB1 = {0.1, -0.1, 0.05, 0.0};
const Vec kGamma = {1.0, 0.8, 1.2, 0.9};
const Vec kBeta = {0.1, -0.2, 0.0, 0.3};
const Rows kW2 = {{0.7, -0.5, 0.3, 0.2}, {-0.3, 0.8, -0.6, 0.4}, {0.2, 0.1, 0.9, -0.7}};
const Vec kB2 = {0.05, -0.05, 0.0};

// After a step on xa, the adapted model's probability of the source class on
// xb rises for rows 1, 2 (+0.0094, +0.0151) and falls for rows 0, 3
// (−0.0185, −0.0134): S = {1, 2}.
const Rows kXa = {{0.3, 0.6, 1.4}, {-0.4, -0.1, 0.2}, {0.1, 1.4, -0.1}, {0.0, -0.2, -0.4}};
const Rows kXb = {{-0.1, 1.4, 0.9}, {1.0, 0.6, 0.0}, {0.7, -0.4, -0.2}, {0.0, 1.1, 1.1}};

constexpr double kTol = 2e-5;

torch::nn::Sequential tiny() { return make_tiny_bn_model(kW1, kB1, kGamma, kBeta, kW2, kB2); }
torch::Tensor mat(const Rows& r) { return make_logits(r, torch::kFloat); }
torch::Tensor param(TtaSession& s, const std::string& name) { return s.model()->named_parameters()[name].detach(); }

void expect_bn(TtaSession& s, const Vec& gamma, const Vec& beta) {
  SCOPED_TRACE("BatchNorm affine parameters");
  expect_rows_near(param(s, "1.weight").unsqueeze(0), {gamma}, kTol);
  expect_rows_near(param(s, "1.bias").unsqueeze(0), {beta}, kTol);
}

void expect_frozen_layers(TtaSession& s) {
  SCOPED_TRACE("the Linear layers never adapt");
  EXPECT_TRUE(torch::equal(param(s, "0.weight"), mat(kW1)));
  EXPECT_TRUE(torch::equal(param(s, "0.bias"), mat({kB1})[0]));
  EXPECT_TRUE(torch::equal(param(s, "3.weight"), mat(kW2)));
  EXPECT_TRUE(torch::equal(param(s, "3.bias"), mat({kB2})[0]));
}

// Step 0: the adapted model equals the frozen copy, so every v_i = v⁰_i and
// all four samples are kept. The logits returned are the ones the update
// started from (the re-implementation returns its forward's outputs).
const Rows kPred0 = {{1.4294132, 0.192686483, -0.879127562},
                     {0.13184987, 0.113699734, -0.286474526},
                     {0.016367346, -0.17489703, 1.43640077},
                     {0.510197759, -0.608901143, 0.756193817}};

TEST(Owtta, MixedSelectionMatchesReimplementation) {
  TtaSession s("owtta", R"({"lr": 0.05})", tiny(), 3);
  const TtaStepResult r0 = s.step(mat(kXa));
  EXPECT_EQ(r0.num_used, 4);
  expect_rows_near(r0.logits, kPred0, kTol);
  expect_bn(s, {1.04999995, 0.75000006, 1.25, 0.949999928}, {0.149999991, -0.249999985, 0.0499999933, 0.349999994});
  const TtaStepResult r1 = s.step(mat(kXb));
  EXPECT_EQ(r1.num_used, 2);
  expect_rows_near(r1.logits,
                   {{-0.205771104, 0.49224478, -0.0707725585},
                    {1.22319412, -1.32732308, 1.67301524},
                    {1.29952013, -0.904455185, 0.923028231},
                    {0.247612298, 0.956721485, -1.25218177}},
                   kTol);
  expect_bn(s, {1.10006499, 0.757757306, 1.30005813, 0.98466152}, {0.200055316, -0.273882091, 0.100067884, 0.387105495});
  expect_frozen_layers(s);
}

// α = 0: entropy of the kept samples only; the second step's parameters differ
// from the α = 0.5 run (e.g. gamma[1] 0.7165 against 0.7578).
TEST(Owtta, WithoutDiversityTermMatchesReimplementation) {
  TtaSession s("owtta", R"({"lr": 0.05, "alpha": 0.0})", tiny(), 3);
  EXPECT_EQ(s.step(mat(kXa)).num_used, 4);
  expect_bn(s, {1.04999995, 0.75, 1.25, 0.949999928}, {0.150000006, -0.25, 0.0499999896, 0.349999994});
  const TtaStepResult r1 = s.step(mat(kXb));
  EXPECT_EQ(r1.num_used, 2);
  expect_rows_near(r1.logits,
                   {{-0.205771044, 0.49224472, -0.0707725734},
                    {1.22319412, -1.32732308, 1.67301524},
                    {1.29952013, -0.904455185, 0.923028231},
                    {0.247612342, 0.956721365, -1.25218177}},
                   kTol);
  expect_bn(s, {1.0998503, 0.716497123, 1.2999562, 0.982612491}, {0.199822947, -0.283502907, 0.0998619497, 0.387702167});
}

// α = 3 after a step on xe1: on xe2 every sample's source-class probability
// falls (by 0.0017, 0.0189, 0.0065), S is empty, and no step is taken.
TEST(Owtta, EmptySelectionTakesNoStep) {
  const Rows xe1 = {{1.1, 1.1, 0.1}, {1.1, -0.3, 0.2}, {1.3, 0.0, 0.5}, {1.4, 0.6, 0.5}};
  const Rows xe2 = {{0.7, -0.2, -0.5}, {1.0, 0.4, 1.0}, {0.4, 1.2, -0.2}};
  TtaSession s("owtta", R"({"lr": 0.05, "alpha": 3.0})", tiny(), 3);
  const TtaStepResult r0 = s.step(mat(xe1));
  EXPECT_EQ(r0.num_used, 4);
  expect_rows_near(r0.logits,
                   {{0.12662673, -0.401505202, 1.81589389},
                    {0.641474009, 0.0373046882, -0.362244457},
                    {0.984864533, 0.121342182, -0.624540389},
                    {0.409569532, 0.0153667741, -0.179297119}},
                   kTol);
  const Vec gamma = {0.949999988, 0.850000024, 1.25, 0.949999988};
  const Vec beta = {0.0500000082, -0.150000006, -0.049999956, 0.349999994};
  expect_bn(s, gamma, beta);
  const torch::Tensor gamma_before = param(s, "1.weight").clone(), beta_before = param(s, "1.bias").clone();
  const TtaStepResult r1 = s.step(mat(xe2));
  EXPECT_EQ(r1.num_used, 0);
  expect_rows_near(r1.logits,
                   {{0.47220394, -0.575198472, 0.715836465},
                    {1.13388681, 0.285126001, -0.936829627},
                    {-0.15017648, 0.159084558, 0.929617882}},
                   kTol);
  EXPECT_TRUE(torch::equal(param(s, "1.weight"), gamma_before));
  EXPECT_TRUE(torch::equal(param(s, "1.bias"), beta_before));
  EXPECT_FALSE(torch::isnan(r1.logits).any().item<bool>());
  // The skipped step left Adam's moments alone: the next step on xe1 is the
  // same whether or not the empty batch came in between.
  TtaSession t("owtta", R"({"lr": 0.05, "alpha": 3.0})", tiny(), 3);
  t.step(mat(xe1));
  EXPECT_TRUE(torch::equal(s.step(mat(xe1)).logits, t.step(mat(xe1)).logits));
  EXPECT_TRUE(torch::equal(param(s, "1.weight"), param(t, "1.weight")));
  EXPECT_TRUE(torch::equal(param(s, "1.bias"), param(t, "1.bias")));
}

TEST(Owtta, ResetRestoresTheSourceModel) {
  TtaSession s("owtta", R"({"lr": 0.05})", tiny(), 3);
  s.step(mat(kXa));
  s.step(mat(kXb));
  s.reset();
  expect_bn(s, kGamma, kBeta);
  expect_frozen_layers(s);
  // From the source again, with a fresh optimizer and a fresh frozen copy.
  const TtaStepResult r0 = s.step(mat(kXa));
  EXPECT_EQ(r0.num_used, 4);
  expect_rows_near(r0.logits, kPred0, kTol);
  expect_bn(s, {1.04999995, 0.75000006, 1.25, 0.949999928}, {0.149999991, -0.249999985, 0.0499999933, 0.349999994});
  EXPECT_EQ(s.step(mat(kXb)).num_used, 2);
}

// BatchNorm runs on batch statistics in eval mode too, as with the official
// running_mean = None: the logits do not depend on the mode.
TEST(Owtta, BatchNormUsesBatchStatisticsInEitherMode) {
  TtaSession s("owtta", R"({"lr": 0.05})", tiny(), 3);
  torch::NoGradGuard no_grad;
  s.model()->eval();
  expect_rows_near(s.model()->forward(mat(kXa)), kPred0, kTol);
}

TEST(Owtta, RejectsModelWithoutBatchNormAndBadParameters) {
  torch::nn::Sequential no_bn(torch::nn::Linear(3, 4), torch::nn::ReLU(), torch::nn::Linear(4, 3));
  try {
    TtaSession("owtta", "{}", no_bn, 3);
    ADD_FAILURE() << "a model without BatchNorm was accepted";
  } catch (const std::exception& e) {
    EXPECT_NE(std::string(e.what()).find("no BatchNorm"), std::string::npos) << e.what();
  }
  EXPECT_THROW(TtaSession("owtta", R"({"alpha": -0.5})", tiny(), 3), std::invalid_argument);
  EXPECT_THROW(TtaSession("owtta", R"({"lr": -1})", tiny(), 3), std::invalid_argument);
}

}  // namespace
}  // namespace reglab::testing
