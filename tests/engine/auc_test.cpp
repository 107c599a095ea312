// ROC AUC and the attention summaries of the mil paradigm, on cases small
// enough to count by hand.
#include <gtest/gtest.h>

#include <torch/torch.h>

#include <cmath>
#include <vector>

#include "metrics/auc.h"

namespace reglab::metrics {
namespace {

double auc(const std::vector<double>& scores, const std::vector<std::int64_t>& labels) {
  return roc_auc(torch::tensor(scores, torch::kFloat64), torch::tensor(labels, torch::kInt64));
}

TEST(RocAuc, CountsOrderedPairs) {
  // Positives 0.35 and 0.8 against negatives 0.1 and 0.4: 0.35 beats 0.1
  // only, 0.8 beats both: 3 of 4 pairs.
  EXPECT_DOUBLE_EQ(auc({0.1, 0.4, 0.35, 0.8}, {0, 0, 1, 1}), 0.75);
  EXPECT_DOUBLE_EQ(auc({0.1, 0.2, 0.3, 0.4}, {0, 0, 1, 1}), 1.0);
  EXPECT_DOUBLE_EQ(auc({0.1, 0.2, 0.3, 0.4}, {1, 1, 0, 0}), 0.0);
  // Order of the input does not matter.
  EXPECT_DOUBLE_EQ(auc({0.8, 0.35, 0.4, 0.1}, {1, 1, 0, 0}), 0.75);
}

TEST(RocAuc, TiesCountOneHalf) {
  // Positives {0.5, 0.5}, negatives {0.5, 0.2}: the two 0.5–0.5 pairs count
  // ½ each, the two pairs against 0.2 count 1: (1 + 2) / 4.
  EXPECT_DOUBLE_EQ(auc({0.5, 0.5, 0.5, 0.2}, {1, 0, 1, 0}), 0.75);
  // All scores equal: every pair is a tie.
  EXPECT_DOUBLE_EQ(auc({1.0, 1.0, 1.0, 1.0, 1.0}, {1, 0, 0, 1, 0}), 0.5);
  // 3 positives, 2 negatives; positive 0.9 ties negative 0.9: pairs
  // (0.9 vs 0.9) ½, (0.9 vs 0.1) 1, (0.7 vs 0.9) 0, (0.7 vs 0.1) 1,
  // (0.1 vs 0.9) 0, (0.1 vs 0.1) ½ → 3 / 6.
  EXPECT_DOUBLE_EQ(auc({0.9, 0.7, 0.1, 0.9, 0.1}, {1, 1, 1, 0, 0}), 0.5);
}

TEST(RocAuc, OneClassIsNaNAndBadInputThrows) {
  EXPECT_TRUE(std::isnan(auc({0.1, 0.2}, {1, 1})));
  EXPECT_TRUE(std::isnan(auc({0.1, 0.2}, {0, 0})));
  EXPECT_TRUE(std::isnan(auc({}, {})));
  EXPECT_DOUBLE_EQ(roc_auc(torch::tensor({0.2f, 0.7f}), torch::tensor({false, true})), 1.0);
  EXPECT_THROW(auc({0.1, 0.2}, {0, 2}), std::invalid_argument);
  EXPECT_THROW(auc({0.1, std::nan("")}, {0, 1}), std::invalid_argument);
  EXPECT_THROW(roc_auc(torch::zeros({3}), torch::zeros({2}, torch::kLong)), std::invalid_argument);
}

TEST(SummarizeAttention, EntropyAndLargestWeightOverBagsAndHeads) {
  // One bag, two heads: (½, ½) has entropy ln 2 and max ½; (1, 0) has 0 and 1.
  const torch::Tensor a = torch::tensor({0.5, 0.5, 1.0, 0.0}, torch::kFloat64).view({1, 2, 2});
  const AttentionSummary s = summarize_attention(a, torch::Tensor());
  EXPECT_NEAR(s.mean_entropy, 0.5 * std::log(2.0), 1e-15);
  EXPECT_NEAR(s.mean_max_weight, 0.75, 1e-15);
}

TEST(SummarizeAttention, PaddingIsLeftOut) {
  // Bag 0: (¼, ¼, ½), entropy ½ ln 4 + ½ ln 2 = 1.5 ln 2; bag 1: one
  // instance (1) and two padded entries, entropy 0.
  const torch::Tensor a = torch::tensor({0.25, 0.25, 0.5, 1.0, 0.0, 0.0}, torch::kFloat64).view({2, 1, 3});
  const torch::Tensor mask = torch::tensor({true, true, true, true, false, false}).view({2, 3});
  const AttentionSummary s = summarize_attention(a, mask);
  EXPECT_NEAR(s.mean_entropy, 0.75 * std::log(2.0), 1e-15);
  EXPECT_NEAR(s.mean_max_weight, 0.75, 1e-15);
  EXPECT_THROW(summarize_attention(a, torch::ones({2, 2}, torch::kBool)), std::invalid_argument);
  EXPECT_THROW(summarize_attention(torch::ones({2, 3}), torch::Tensor()), std::invalid_argument);
}

}  // namespace
}  // namespace reglab::metrics
