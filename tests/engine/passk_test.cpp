// pass@k and maj@k against hand values. The pass@k references are exact
// ratios of binomials, 1 − C(n−c, k)/C(n, k), evaluated with Python's
// math.comb and fractions.Fraction (not with the product form under test).
#include "metrics/passk.h"

#include <gtest/gtest.h>

#include <optional>
#include <stdexcept>
#include <vector>

namespace {

using reglab::metrics::maj_at_k;
using reglab::metrics::majority_answer;
using reglab::metrics::pass_at_k;

TEST(PassAtK, HandValues) {
  EXPECT_DOUBLE_EQ(pass_at_k(4, 1, 2), 0.5);    // 1 − C(3,2)/C(4,2) = 1 − 3/6
  EXPECT_DOUBLE_EQ(pass_at_k(5, 2, 2), 0.7);    // 1 − C(3,2)/C(5,2) = 1 − 3/10
  EXPECT_DOUBLE_EQ(pass_at_k(16, 5, 1), 5.0 / 16.0);  // k = 1 is c/n
  EXPECT_DOUBLE_EQ(pass_at_k(64, 1, 16), 0.25);       // c = 1 is k/n
  EXPECT_NEAR(pass_at_k(64, 2, 16), 1.0 - (48.0 * 47.0) / (64.0 * 63.0), 1e-15);
  EXPECT_DOUBLE_EQ(pass_at_k(10, 0, 3), 0.0);
  EXPECT_DOUBLE_EQ(pass_at_k(10, 8, 3), 1.0);   // n − c = 2 < k: every 3-subset has a correct one
  EXPECT_DOUBLE_EQ(pass_at_k(10, 10, 10), 1.0);
  EXPECT_DOUBLE_EQ(pass_at_k(10, 0, 10), 0.0);
}

TEST(PassAtK, LargeNStaysAccurate) {
  // C(1000, 100) ≈ 6e139: the product form keeps full precision.
  EXPECT_NEAR(pass_at_k(1000, 10, 100), 0.653072285207994, 1e-12);
  EXPECT_NEAR(pass_at_k(200, 37, 16), 0.9672106937575041, 1e-12);
}

TEST(PassAtK, RejectsOutOfRange) {
  EXPECT_THROW(pass_at_k(4, 5, 2), std::invalid_argument);
  EXPECT_THROW(pass_at_k(4, -1, 2), std::invalid_argument);
  EXPECT_THROW(pass_at_k(4, 1, 0), std::invalid_argument);
  EXPECT_THROW(pass_at_k(4, 1, 5), std::invalid_argument);
  EXPECT_THROW(pass_at_k(0, 0, 1), std::invalid_argument);
}

TEST(PassAtKMajority, VoteTiesAndInvalidAnswers) {
  const std::vector<std::optional<std::int64_t>> answers{3, 5, 5, std::nullopt, 3};
  EXPECT_EQ(majority_answer(answers, 5), 3);  // 3 and 5 twice each: 3 was seen first
  EXPECT_EQ(maj_at_k(answers, 3, 5), 1.0);
  EXPECT_EQ(maj_at_k(answers, 5, 5), 0.0);
  EXPECT_EQ(majority_answer(answers, 3), 5);  // first three: 3, 5, 5
  EXPECT_EQ(maj_at_k(answers, 5, 3), 1.0);
  EXPECT_EQ(majority_answer(answers, 1), 3);
  EXPECT_EQ(majority_answer(answers, 100), 3);  // k beyond the list: all of it

  // "No answer" can win, and is never correct.
  const std::vector<std::optional<std::int64_t>> mostly_invalid{std::nullopt, 4, std::nullopt};
  EXPECT_EQ(majority_answer(mostly_invalid, 3), std::nullopt);
  EXPECT_EQ(maj_at_k(mostly_invalid, 4, 3), 0.0);
  const std::vector<std::optional<std::int64_t>> tie_invalid_first{std::nullopt, 4, 4, std::nullopt};
  EXPECT_EQ(maj_at_k(tie_invalid_first, 4, 4), 0.0);  // tie, the invalid one came first
  EXPECT_THROW(majority_answer({}, 3), std::invalid_argument);
  EXPECT_THROW(majority_answer(answers, 0), std::invalid_argument);
}

}  // namespace
