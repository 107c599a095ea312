// Label noise: rates, which classes labels may move to, and seeding.
#include "data/dataset.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <stdexcept>
#include <vector>

namespace {

using reglab::data::apply_label_noise;
using reglab::data::NoiseOptions;

// 60000 labels, 6000 of each of 10 classes.
torch::Tensor balanced_labels(std::int64_t n = 60000, std::int64_t k = 10) {
  return torch::arange(n, torch::kInt64).remainder(k);
}

NoiseOptions noise(const std::string& kind, double rate, std::vector<std::int64_t> map = {}) {
  NoiseOptions o;
  o.kind = kind;
  o.rate = rate;
  o.class_map = std::move(map);
  return o;
}

double fraction(const torch::Tensor& mask) { return mask.to(torch::kFloat64).mean().item<double>(); }

TEST(SymmetricNoise, FlipRateNearRate) {
  const torch::Tensor y = balanced_labels();
  for (double rate : {0.2, 0.4, 0.8}) {
    torch::Tensor flipped;
    const torch::Tensor noisy = apply_label_noise(y, 10, noise("symmetric", rate), 1, flipped);
    // Binomial sd = sqrt(r(1−r)/60000) <= 0.0021; 0.01 is ~5 sd.
    EXPECT_NEAR(fraction(flipped), rate, 0.01) << "rate " << rate;
    EXPECT_TRUE(torch::equal(flipped, noisy.ne(y)));
    EXPECT_EQ(noisy.scalar_type(), torch::kInt64);
    EXPECT_GE(noisy.min().item<std::int64_t>(), 0);
    EXPECT_LE(noisy.max().item<std::int64_t>(), 9);
  }
}

TEST(SymmetricNoise, RateOneChangesEveryLabelUniformlyAmongOthers) {
  const torch::Tensor y = balanced_labels();
  torch::Tensor flipped;
  const torch::Tensor noisy = apply_label_noise(y, 10, noise("symmetric", 1.0), 3, flipped);
  EXPECT_TRUE(flipped.all().item<bool>());  // never mapped to its own class
  // Each clean class (6000 labels) spreads over the 9 others: ~666.7 each,
  // binomial sd ~24.8; allow 120 (~5 sd).
  for (std::int64_t c = 0; c < 10; ++c) {
    const torch::Tensor targets = noisy.masked_select(y.eq(c));
    const torch::Tensor counts = torch::bincount(targets, c10::nullopt, 10);
    EXPECT_EQ(counts[c].item<std::int64_t>(), 0);
    for (std::int64_t t = 0; t < 10; ++t) {
      if (t == c) continue;
      EXPECT_NEAR(counts[t].item<double>(), 6000.0 / 9.0, 120.0) << c << " -> " << t;
    }
  }
}

TEST(AsymmetricNoise, DefaultFashionMnistMap) {
  const torch::Tensor y = balanced_labels();
  torch::Tensor flipped;
  const torch::Tensor noisy = apply_label_noise(y, 10, noise("asymmetric", 0.4), 5, flipped);
  // Allowed moves, written out independently of the implementation's table.
  const std::vector<std::int64_t> expected_map = {6, 1, 4, 3, 2, 7, 0, 5, 8, 9};
  const auto yc = y.accessor<std::int64_t, 1>();
  const torch::Tensor noisy_c = noisy.contiguous();
  const auto nc = noisy_c.accessor<std::int64_t, 1>();
  for (std::int64_t i = 0; i < y.size(0); ++i) {
    ASSERT_TRUE(nc[i] == yc[i] || nc[i] == expected_map[yc[i]]) << "sample " << i;
  }
  // Trouser, Dress, Bag, Ankle boot never flip.
  for (std::int64_t c : {1, 3, 8, 9}) {
    EXPECT_FALSE(flipped.masked_select(y.eq(c)).any().item<bool>()) << "class " << c;
  }
  // The six paired classes (36000 labels) flip at ~rate: sd 0.0026, allow 0.013.
  const torch::Tensor movable = y.eq(0) | y.eq(2) | y.eq(4) | y.eq(5) | y.eq(6) | y.eq(7);
  EXPECT_NEAR(fraction(flipped.masked_select(movable)), 0.4, 0.013);
  EXPECT_TRUE(torch::equal(flipped, noisy.ne(y)));
}

TEST(AsymmetricNoise, CustomMap) {
  const torch::Tensor y = balanced_labels(30000, 3);
  torch::Tensor flipped;
  // 0 -> 1, 1 -> 2, 2 stays.
  const torch::Tensor noisy =
      apply_label_noise(y, 3, noise("asymmetric", 1.0, {1, 2, 2}), 9, flipped);
  EXPECT_TRUE(torch::equal(noisy.masked_select(y.eq(0)), torch::ones({10000}, torch::kInt64)));
  EXPECT_TRUE(torch::equal(noisy.masked_select(y.eq(1)), torch::full({10000}, 2, torch::kInt64)));
  EXPECT_TRUE(torch::equal(noisy.masked_select(y.eq(2)), torch::full({10000}, 2, torch::kInt64)));
  EXPECT_NEAR(fraction(flipped), 2.0 / 3.0, 1e-12);
}

TEST(AsymmetricNoise, RejectsBadMaps) {
  const torch::Tensor y = balanced_labels(100, 4);
  torch::Tensor flipped;
  EXPECT_THROW(apply_label_noise(y, 4, noise("asymmetric", 0.3, {1, 2, 3}), 1, flipped),
               std::invalid_argument);  // wrong length
  EXPECT_THROW(apply_label_noise(y, 4, noise("asymmetric", 0.3, {1, 2, 3, 4}), 1, flipped),
               std::invalid_argument);  // 4 is not a class
  EXPECT_THROW(apply_label_noise(y, 4, noise("asymmetric", 0.3, {1, -1, 3, 0}), 1, flipped),
               std::invalid_argument);
  // The default map is Fashion-MNIST's: it does not fit 4 classes.
  EXPECT_THROW(apply_label_noise(y, 4, noise("asymmetric", 0.3), 1, flipped),
               std::invalid_argument);
}

TEST(LabelNoise, RejectsBadKindRateAndLabels) {
  const torch::Tensor y = balanced_labels(100, 10);
  torch::Tensor flipped;
  EXPECT_THROW(apply_label_noise(y, 10, noise("pairflip", 0.2), 1, flipped), std::invalid_argument);
  EXPECT_THROW(apply_label_noise(y, 10, noise("symmetric", 1.5), 1, flipped), std::invalid_argument);
  EXPECT_THROW(apply_label_noise(y, 10, noise("symmetric", -0.1), 1, flipped), std::invalid_argument);
  EXPECT_THROW(apply_label_noise(y, 10, noise("symmetric", std::nan("")), 1, flipped),
               std::invalid_argument);
  EXPECT_THROW(apply_label_noise(y, 5, noise("symmetric", 0.2), 1, flipped), std::invalid_argument);
}

TEST(LabelNoise, NoneOrZeroRateKeepsLabels) {
  const torch::Tensor y = balanced_labels(1000);
  for (const auto& o : {noise("none", 0.7), noise("symmetric", 0.0), noise("asymmetric", 0.0)}) {
    torch::Tensor flipped;
    EXPECT_TRUE(torch::equal(apply_label_noise(y, 10, o, 1, flipped), y)) << o.kind;
    EXPECT_FALSE(flipped.any().item<bool>());
    EXPECT_EQ(flipped.scalar_type(), torch::kBool);
  }
}

TEST(LabelNoise, SeededAndIndependentOfGlobalGenerator) {
  const torch::Tensor y = balanced_labels();
  for (const auto& o : {noise("symmetric", 0.3), noise("asymmetric", 0.3)}) {
    torch::Tensor f1, f2, f3;
    torch::manual_seed(1);
    const torch::Tensor expected_draw = torch::rand({4});
    torch::manual_seed(1);
    const torch::Tensor a = apply_label_noise(y, 10, o, 42, f1);
    // The global generator was not advanced by the noise.
    EXPECT_TRUE(torch::equal(torch::rand({4}), expected_draw)) << o.kind;
    torch::manual_seed(999);  // a different global state changes nothing
    const torch::Tensor b = apply_label_noise(y, 10, o, 42, f2);
    EXPECT_TRUE(torch::equal(a, b)) << o.kind;
    EXPECT_TRUE(torch::equal(f1, f2)) << o.kind;
    const torch::Tensor c = apply_label_noise(y, 10, o, 43, f3);
    EXPECT_FALSE(torch::equal(a, c)) << o.kind;
  }
}

}  // namespace
