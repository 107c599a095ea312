// Metrics against values worked out by hand (each case's arithmetic is in
// its comment; the same numbers were cross-checked with PyTorch's own ops).
#include "metrics/metrics.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <limits>
#include <stdexcept>
#include <vector>

namespace {

using reglab::metrics::accuracy;
using reglab::metrics::aurc;
using reglab::metrics::ece;
using reglab::metrics::mean_entropy;
using reglab::metrics::nll;

constexpr double kInf = std::numeric_limits<double>::infinity();

// logits = log(p), so softmax(logits) = p (rows of p sum to 1).
torch::Tensor logits_from_probs(const std::vector<std::vector<double>>& probs) {
  std::vector<torch::Tensor> rows;
  for (const auto& row : probs) rows.push_back(torch::tensor(row, torch::kFloat64));
  return torch::stack(rows).log();
}

torch::Tensor labels(const std::vector<std::int64_t>& y) { return torch::tensor(y, torch::kInt64); }

// Four samples, three classes:
//   s1 p = [.70 .20 .10] y=0  correct  conf .70
//   s2 p = [.10 .72 .18] y=2  wrong    conf .72
//   s3 p = [.05 .05 .90] y=2  correct  conf .90
//   s4 p = [.42 .33 .25] y=1  wrong    conf .42
struct FourSamples : ::testing::Test {
  torch::Tensor z = logits_from_probs(
      {{0.70, 0.20, 0.10}, {0.10, 0.72, 0.18}, {0.05, 0.05, 0.90}, {0.42, 0.33, 0.25}});
  torch::Tensor y = labels({0, 2, 2, 1});
};

TEST_F(FourSamples, Accuracy) {
  // 2 of 4 correct.
  EXPECT_DOUBLE_EQ(accuracy(z, y), 0.5);
}

TEST_F(FourSamples, Nll) {
  // −(ln .70 + ln .18 + ln .90 + ln .33)/4
  //   = (0.356675 + 1.714798 + 0.105361 + 1.108663)/4 = 0.821374
  EXPECT_NEAR(nll(z, y), 0.821374, 1e-6);
}

TEST_F(FourSamples, EceFifteenBins) {
  // Bins of width 1/15: .70 and .72 share (10/15, 11/15] = (.6667, .7333]:
  //   acc 1/2, mean conf .71 -> (2/4)·|.5 − .71| = 0.105
  // .90 in (13/15, 14/15]: (1/4)·|1 − .90| = 0.025
  // .42 in (6/15, 7/15] = (.40, .4667]: (1/4)·|0 − .42| = 0.105
  // ECE = 0.235
  EXPECT_NEAR(ece(z, y), 0.235, 1e-12);
  EXPECT_NEAR(ece(z.to(torch::kFloat32), y), 0.235, 1e-6);  // any float dtype
}

TEST_F(FourSamples, Aurc) {
  // Descending confidence: .90 ok, .72 wrong, .70 ok, .42 wrong.
  // Risks at i = 1..4: 0, 1/2, 1/3, 2/4; mean = (4/3)/4 = 1/3.
  EXPECT_NEAR(aurc(z, y), 1.0 / 3.0, 1e-12);
}

TEST_F(FourSamples, MeanEntropy) {
  // H1 = .7·0.356675 + .2·1.609438 + .1·2.302585 = 0.801819
  // H2 = .1·2.302585 + .72·0.328504 + .18·1.714798 = 0.775445
  // H3 = 2·.05·2.995732 + .9·0.105361 = 0.394398
  // H4 = .42·0.867501 + .33·1.108663 + .25·1.386294 = 1.076783
  // mean = 3.048445/4 = 0.762111
  EXPECT_NEAR(mean_entropy(z), 0.762111, 1e-6);
}

TEST(Ece, ConfidenceOnABinBoundaryGoesToTheLowerBin) {
  // Ten bins. a: logits [0, 0, −inf] -> p = [.5 .5 0], conf exactly 0.5,
  // label 2 -> wrong whichever of the tied classes argmax picks.
  // b: p = [.55 .25 .20], y=0, correct, conf .55 in (.5, .6].
  // c: logits [0, −inf, −inf] -> conf exactly 1, y=0, correct: last bin.
  // With 0.5 in (.4, .5]: (|0 − .5| + |1 − .55| + |1 − 1|)/3 = .95/3 = 0.316667.
  // (Had 0.5 joined b's bin: (|1 − 1.05| + 0)/3 = 0.016667.)
  torch::Tensor z = torch::stack({torch::tensor({0.0, 0.0, -kInf}, torch::kFloat64),
                                  torch::tensor({0.55, 0.25, 0.20}, torch::kFloat64).log(),
                                  torch::tensor({0.0, -kInf, -kInf}, torch::kFloat64)});
  EXPECT_NEAR(ece(z, labels({2, 0, 0}), 10), 0.95 / 3.0, 1e-12);
}

TEST(Ece, FifteenBinBoundaryAtOneFifth) {
  // Five equal logits: conf = 1/5 exactly = 3/15, the top of bin (2/15, 3/15].
  // Label 4, argmax picks class 0 (or another): wrong either way.
  // Second sample p = [.24 .19 .19 .19 .19], y=0: correct, conf .24 in (3/15, 4/15].
  // Separate bins: (|0 − .2| + |1 − .24|)/2 = 0.48. (Together: |1 − .44|/2 = 0.28.)
  torch::Tensor z = torch::stack({torch::zeros({5}, torch::kFloat64),
                                  torch::tensor({0.24, 0.19, 0.19, 0.19, 0.19}, torch::kFloat64).log()});
  EXPECT_NEAR(ece(z, labels({4, 0})), 0.48, 1e-12);
}

TEST(Ece, PerfectlyCalibratedBinIsZero) {
  // Four samples at conf .75, three right and one wrong: acc .75 = conf.
  torch::Tensor z = logits_from_probs({{0.75, 0.25}, {0.75, 0.25}, {0.75, 0.25}, {0.75, 0.25}});
  EXPECT_NEAR(ece(z, labels({0, 0, 0, 1})), 0.0, 1e-12);
}

TEST(Aurc, TiesKeepInputOrder) {
  // t1 logits [2, 0], y=1: wrong, conf σ(2) = 0.8808
  // t2 logits [2, 0], y=0: right, same conf
  // t3 logits [0, 3], y=1: right, conf σ(3) = 0.9526
  // Stable descending order t3, t1, t2: risks 0, 1/2, 1/3 -> 5/18.
  torch::Tensor z = torch::tensor({2.0, 0.0, 2.0, 0.0, 0.0, 3.0}, torch::kFloat64).view({3, 2});
  EXPECT_NEAR(aurc(z, labels({1, 0, 1})), 5.0 / 18.0, 1e-12);
  // Swap t1 and t2: order t3, t2, t1: risks 0, 0, 1/3 -> 1/9.
  EXPECT_NEAR(aurc(z, labels({0, 1, 1})), 1.0 / 9.0, 1e-12);
}

TEST(Aurc, AllRightIsZeroAllWrongIsOne) {
  torch::Tensor z = logits_from_probs({{0.9, 0.1}, {0.3, 0.7}, {0.6, 0.4}});
  EXPECT_DOUBLE_EQ(aurc(z, labels({0, 1, 0})), 0.0);
  EXPECT_DOUBLE_EQ(aurc(z, labels({1, 0, 1})), 1.0);
}

TEST(MeanEntropy, ZeroProbabilitiesContributeNothing) {
  // [0, 0, −inf]: ln 2 = 0.693147; [.55 .25 .20]: .55·0.597837 + .25·1.386294
  // + .20·1.609438 = 0.997272; [0, −inf, −inf]: 0. Mean = 1.690419/3 = 0.563473.
  torch::Tensor z = torch::stack({torch::tensor({0.0, 0.0, -kInf}, torch::kFloat64),
                                  torch::tensor({0.55, 0.25, 0.20}, torch::kFloat64).log(),
                                  torch::tensor({0.0, -kInf, -kInf}, torch::kFloat64)});
  EXPECT_NEAR(mean_entropy(z), 0.563473, 1e-6);
}

TEST(Metrics, UniformLogitsGiveLogK) {
  // softmax of equal logits is uniform: NLL = entropy = ln K.
  torch::Tensor z = torch::full({6, 4}, 1.5, torch::kFloat32);
  EXPECT_NEAR(nll(z, labels({0, 1, 2, 3, 0, 1})), std::log(4.0), 1e-6);
  EXPECT_NEAR(mean_entropy(z), std::log(4.0), 1e-6);
}

TEST(Metrics, EmptyInputIsNaN) {
  torch::Tensor z = torch::zeros({0, 3});
  torch::Tensor y = torch::zeros({0}, torch::kInt64);
  EXPECT_TRUE(std::isnan(accuracy(z, y)));
  EXPECT_TRUE(std::isnan(nll(z, y)));
  EXPECT_TRUE(std::isnan(ece(z, y)));
  EXPECT_TRUE(std::isnan(aurc(z, y)));
  EXPECT_TRUE(std::isnan(mean_entropy(z)));
}

TEST(Metrics, RejectsMismatchedShapesAndLabels) {
  torch::Tensor z = torch::zeros({3, 2});
  EXPECT_THROW(accuracy(z, labels({0, 1})), std::invalid_argument);
  EXPECT_THROW(nll(z, labels({0, 1, 2})), std::invalid_argument);  // label 2 with K = 2
  EXPECT_THROW(ece(torch::zeros({3}), labels({0, 1, 0})), std::invalid_argument);
  EXPECT_THROW(ece(z, labels({0, 1, 0}), 0), std::invalid_argument);
}

}  // namespace
