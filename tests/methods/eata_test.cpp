// Golden tests for the `eata` plugin, run as the tta paradigm runs it
// (TtaSession). The expected numbers come from the official code of
// mr-eggplant/EATA @ f739b36, run unmodified in Debian's python3-torch 1.13:
// eata.py (configure_model, collect_params, EATA(model, SGD(params, lr,
// momentum=0.9), fishers, fisher_alpha, e_margin = ratio·ln 3, d_margin)
// called on the batches below, printing the returned outputs, the counters
// num_samples_update_1/2, the BatchNorm weight and bias and
// current_model_probs after each call) and the Fisher loop of main.py
// (lines 150-171, executed as they stand on a list of (inputs, dummy labels)
// batches of the held-out rows below, batch size 4 unless a test says
// otherwise). The Python model is the one make_tiny_bn_model builds, with the
// BatchNorm as BatchNorm2d on [B, H, 1, 1] (the layer the official code looks
// for; the statistics over B×1×1 are those of BatchNorm1d over [B, H]).
#include <gtest/gtest.h>

#include <torch/nn/modules/batchnorm.h>
#include <torch/nn/modules/container/sequential.h>
#include <torch/nn/modules/linear.h>
#include <torch/types.h>

#include <cmath>
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

// Entropies of kSourceLogitsX1's rows: 0.370, 0.408, 0.498, 0.471; E0 = 0.4·ln 3 = 0.439
// keeps rows 0 and 1.

// The reference run: lr 0.05, fisher_alpha 2000 (default), d_margin 0.4 (the CIFAR value).
const char* kMain = R"({"lr": 0.05, "d_margin": 0.4, "fisher_size": 6})";
const std::vector<double> kGamma1 = {1.0, 0.82880044, 1.21378672, 0.899999976};
const std::vector<double> kBeta1 = {0.100000001, -0.0830962583, 0.204954967, 0.0};
const std::vector<double> kAverage1 = {0.0334554315, 0.470294327, 0.496250242};
const Rows kLogitsX2 = {{0.366469562, -0.145489112, -0.0515036397},
                        {1.16156185, 1.4861865, 5.20780897},
                        {4.56494665, -1.86760163, 2.31436014},
                        {0.443364471, 0.984352469, -0.210950255}};

constexpr double kTol = 2e-5;
// A value the step must leave alone: the float32 nearest the decimal constant.
constexpr double kUnchanged = 1e-7;

torch::Tensor x(const Rows& rows) { return make_logits(rows, torch::kFloat); }
torch::Tensor held(std::size_t n) { return x(Rows(kHeldOut.begin(), kHeldOut.begin() + static_cast<long>(n))); }

torch::nn::BatchNorm1dImpl& bn(TtaSession& s) { return *s.model()->ptr(1)->as<torch::nn::BatchNorm1dImpl>(); }

void expect_vec_near(const torch::Tensor& actual, const std::vector<double>& expected, double tol) {
  expect_rows_near(actual.detach().reshape({1, -1}), Rows{expected}, tol);
}

// |a − e| ≤ rel·|e| + 1e-9 element-wise: the Fisher values span four decades.
void expect_vec_rel(const torch::Tensor& actual, const std::vector<double>& expected, double rel) {
  ASSERT_TRUE(actual.defined());
  const torch::Tensor a = actual.detach().to(torch::kDouble).reshape({-1});
  ASSERT_EQ(a.size(0), static_cast<std::int64_t>(expected.size()));
  for (std::size_t i = 0; i < expected.size(); ++i)
    EXPECT_NEAR(a[static_cast<std::int64_t>(i)].item<double>(), expected[i], rel * std::abs(expected[i]) + 1e-9)
        << "at [" << i << "]";
}

void expect_bn(TtaSession& s, const std::vector<double>& gamma, const std::vector<double>& beta, double tol = kTol) {
  expect_vec_near(bn(s).weight, gamma, tol);
  expect_vec_near(bn(s).bias, beta, tol);
}

TEST(EataTest, FisherIsTheBatchAverageOfSquaredPseudoLabelGradients) {
  TtaSession s("eata", R"({"fisher_size": 6})", tiny(), 3, held(6), 4);
  const StateDict state = s.handle().state_dict();
  expect_vec_rel(state.at("fisher.0"), kEataFisherWeight, 1e-5);
  expect_vec_rel(state.at("fisher.1"), kEataFisherBias, 1e-5);
  expect_vec_near(state.at("anchor.0"), kGamma, kUnchanged);
  expect_vec_near(state.at("anchor.1"), kBeta, kUnchanged);
  EXPECT_EQ(state.count("average"), 0u);
  // Estimating F takes no step and leaves no gradient behind.
  expect_bn(s, kGamma, kBeta, kUnchanged);
  EXPECT_FALSE(bn(s).weight.grad().defined() && bn(s).weight.grad().abs().sum().item<double>() > 0);
}

TEST(EataTest, FisherUsesTheFirstFisherSizeHeldOutRowsInStreamSizedBatches) {
  {
    TtaSession s("eata", R"({"fisher_size": 4})", tiny(), 3, held(6), 4);  // one batch of 4
    const StateDict state = s.handle().state_dict();
    expect_vec_rel(state.at("fisher.0"), {0.000611589057, 0.0133577613, 0.0213106573, 2.03520722e-05}, 1e-4);
    expect_vec_rel(state.at("fisher.1"), {2.73117203e-05, 0.00672972761, 0.0300114173, 2.57471675e-05}, 1e-4);
  }
  {
    TtaSession s("eata", R"({"fisher_size": 6})", tiny(), 3, held(6), 2);  // three batches of 2
    const StateDict state = s.handle().state_dict();
    expect_vec_rel(state.at("fisher.0"), {0.0105938977, 0.0900512412, 0.102036573, 0.00873067044}, 1e-4);
    expect_vec_rel(state.at("fisher.1"), {0.0105942674, 0.0900525823, 0.10205657, 0.00873077568}, 1e-4);
  }
  {
    // More asked for than held out: all of them are used.
    TtaSession s("eata", R"({"fisher_size": 50})", tiny(), 3, held(6), 4);
    expect_vec_rel(s.handle().state_dict().at("fisher.0"), kEataFisherWeight, 1e-5);
  }
}

TEST(EataTest, TwoStepsWithBothFiltersTheMovingAverageAndTheFisherTerm) {
  TtaSession s("eata", kMain, tiny(), 3, held(6), 4);
  TtaStepResult r = s.step(x(kX1));
  expect_rows_near(r.logits, kSourceLogitsX1, kTol);  // the forward before the update
  EXPECT_EQ(r.num_used, 2);
  expect_bn(s, kGamma1, kBeta1);
  expect_vec_near(s.handle().state_dict().at("average"), kAverage1, 1e-6);

  // Rows 1 and 2 are reliable; row 1 points like the average (|cos| ≥ 0.4) and is dropped.
  r = s.step(x(kX2));
  expect_rows_near(r.logits, kLogitsX2, kTol);
  EXPECT_EQ(r.num_used, 1);
  expect_bn(s, {1.0142442, 0.430244088, 1.05751133, 0.917255938}, {0.113259748, -0.305819631, 0.123124748, 0.0120772971});
  expect_vec_near(s.handle().state_dict().at("average"), {0.12044856, 0.423410177, 0.456141233}, 1e-6);
}

TEST(EataTest, WithoutTheFisherTermTheSecondStepDiffers) {
  for (const char* params : {R"({"lr": 0.05, "d_margin": 0.4, "fisher_alpha": 0, "fisher_size": 6})",
                             R"({"lr": 0.05, "d_margin": 0.4, "fisher_size": 0})"}) {
    TtaSession s("eata", params, tiny(), 3, held(6), 4);
    s.step(x(kX1));
    expect_bn(s, kGamma1, kBeta1);
    s.step(x(kX2));
    expect_bn(s, {1.0142442, 0.854720831, 1.22514677, 0.917255938}, {0.113259748, -0.067882888, 0.187687218, 0.0120772971});
  }
}

TEST(EataTest, NoReliableSampleTakesNoStepAndStartsNoAverage) {
  // E0 = 0.1·ln 3 = 0.11 keeps nothing of kX1.
  TtaSession s("eata", R"({"lr": 0.05, "d_margin": 0.4, "fisher_size": 6, "e_margin_ratio": 0.1})", tiny(), 3,
               held(6), 4);
  for (int i = 0; i < 2; ++i) {
    const TtaStepResult r = s.step(x(kX1));
    expect_rows_near(r.logits, kSourceLogitsX1, kTol);
    EXPECT_EQ(r.num_used, 0);
    expect_bn(s, kGamma, kBeta, kUnchanged);
    EXPECT_EQ(s.handle().state_dict().count("average"), 0u);
  }
}

TEST(EataTest, TheRedundancyFilterCanEmptyTheBatch) {
  // d_margin 0.05 (the default): both reliable rows of kX2 are too similar to the average.
  TtaSession s("eata", R"({"lr": 0.05, "fisher_size": 6})", tiny(), 3, held(6), 4);
  s.step(x(kX1));
  const TtaStepResult r = s.step(x(kX2));
  expect_rows_near(r.logits, kLogitsX2, kTol);
  EXPECT_EQ(r.num_used, 0);
  expect_bn(s, kGamma1, kBeta1);
  expect_vec_near(s.handle().state_dict().at("average"), kAverage1, 1e-6);
}

TEST(EataTest, ResetRestoresTheSourceAndForgetsTheAverage) {
  TtaSession s("eata", kMain, tiny(), 3, held(6), 4);
  s.step(x(kX1));
  s.step(x(kX2));
  s.reset();
  expect_bn(s, kGamma, kBeta, kUnchanged);
  StateDict state = s.handle().state_dict();
  EXPECT_EQ(state.count("average"), 0u);
  expect_vec_rel(state.at("fisher.0"), kEataFisherWeight, 1e-5);
  const TtaStepResult r = s.step(x(kX1));
  expect_rows_near(r.logits, kSourceLogitsX1, kTol);
  EXPECT_EQ(r.num_used, 2);
  expect_bn(s, kGamma1, kBeta1);  // and a fresh SGD momentum
}

TEST(EataTest, EpisodicRestoresTheSourceBeforeEveryBatchButKeepsTheAverage) {
  // As eata.py's reset(): the model and the optimizer only, not the average.
  TtaSession s("eata", R"({"lr": 0.05, "d_margin": 0.4, "fisher_size": 6, "episodic": true})", tiny(), 3, held(6), 4);
  s.step(x(kX1));
  expect_bn(s, kGamma1, kBeta1);
  TtaStepResult r = s.step(x(kX2));
  expect_rows_near(r.logits, {{0.388612926, -0.185347185, -0.0382176153},
                              {1.14819062, 1.46746683, 5.14095306},
                              {4.56213665, -1.87153554, 2.30031013},
                              {0.49694559, 0.887906432, -0.178801596}},
                   kTol);
  EXPECT_EQ(r.num_used, 1);
  expect_bn(s, {1.01422322, 0.800000012, 1.19895411, 0.917230725}, {0.113240235, -0.100000001, 0.178314194, 0.0120596243});
  const std::vector<double> average2 = {0.120544881, 0.423410177, 0.456044912};
  expect_vec_near(s.handle().state_dict().at("average"), average2, 1e-6);
  // kX1 again, from the source: its two reliable rows now face that average and are dropped.
  r = s.step(x(kX1));
  expect_rows_near(r.logits, kSourceLogitsX1, kTol);
  EXPECT_EQ(r.num_used, 0);
  expect_bn(s, kGamma, kBeta, 1e-7);
  expect_vec_near(s.handle().state_dict().at("average"), average2, 1e-6);
}

TEST(EataTest, RejectsBadParametersAndAMissingHeldOutSet) {
  const auto& info = *build_plugin("eata").info;
  for (const char* bad : {R"({"e_margin_ratio": -0.1})", R"({"e_margin_ratio": 1.5})", R"({"d_margin": -0.01})",
                          R"({"d_margin": 2})", R"({"fisher_alpha": -1})", R"({"fisher_size": -1})", R"({"lr": -1})",
                          R"({"momentum": 1.5})", R"({"steps": 0})", R"({"fisher_size": 1.5})"}) {
    EXPECT_THROW(plugins::resolve_params(info, bad), std::invalid_argument) << bad;
  }
  try {
    TtaSession s("eata", "{}", tiny(), 3);
    FAIL() << "a Fisher estimate without held-out samples was accepted";
  } catch (const std::exception& e) {
    EXPECT_NE(std::string(e.what()).find("held-out"), std::string::npos) << e.what();
  }
  EXPECT_NO_THROW(TtaSession("eata", R"({"fisher_size": 0})", tiny(), 3));
}

}  // namespace
}  // namespace reglab::testing
