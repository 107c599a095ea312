// Bags for multiple-instance learning (data/bags.h): sizes, labels,
// reproducibility, gathering, and the options that are refused.
#include <gtest/gtest.h>

#include <torch/torch.h>

#include <set>
#include <stdexcept>
#include <string>

#include "data/bags.h"

namespace reglab::data {
namespace {

// A pool of 40 instances, instance i of class i % 10, whose features record i.
Split pool_of(std::int64_t n = 40) {
  Split s;
  s.x = torch::arange(n, torch::kFloat32).view({n, 1}).repeat({1, 3});
  s.y = torch::arange(n, torch::kInt64).remainder(10);
  return s;
}

BagOptions options(double mean, double std, std::int64_t min_size = 1, std::vector<std::int64_t> targets = {9}) {
  BagOptions o;
  o.size_mean = mean;
  o.size_std = std;
  o.min_size = min_size;
  o.targets = std::move(targets);
  return o;
}

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const std::exception& e) {
    return e.what();
  }
  return "(no exception)";
}

TEST(Bags, SizesAreTruncatedNormalDrawsRaisedToTheMinimum) {
  const Split pool = pool_of();
  // With no spread every draw is the mean, truncated toward zero.
  const BagSet fixed = make_bags(pool, 10, options(3.7, 0.0), 25, 1);
  ASSERT_EQ(fixed.size(), 25);
  for (std::int64_t b = 0; b < 25; ++b) EXPECT_EQ(fixed.bag_size(b), 3);
  EXPECT_EQ(fixed.members.size(0), 75);
  EXPECT_EQ(fixed.offsets[25].item<std::int64_t>(), 75);
  // Draws below min_size become min_size.
  const BagSet raised = make_bags(pool, 10, options(1.0, 0.0, 2), 10, 1);
  for (std::int64_t b = 0; b < 10; ++b) EXPECT_EQ(raised.bag_size(b), 2);
  // A wide spread around 1: never empty, sometimes larger.
  const BagSet wide = make_bags(pool, 10, options(1.0, 5.0), 400, 3);
  std::int64_t largest = 0;
  for (std::int64_t b = 0; b < 400; ++b) {
    EXPECT_GE(wide.bag_size(b), 1);
    largest = std::max(largest, wide.bag_size(b));
  }
  EXPECT_GT(largest, 5);
}

TEST(Bags, SizeDistributionMatchesTheMnistBagsDefaults) {
  // int(N(10, 2)) has mean ≈ 9.5 (truncation takes half an instance on
  // average) and a standard deviation close to 2.
  const BagSet bags = make_bags(pool_of(), 10, options(10.0, 2.0), 4000, 7);
  const torch::Tensor sizes = (bags.offsets.slice(0, 1) - bags.offsets.slice(0, 0, -1)).to(torch::kFloat64);
  EXPECT_NEAR(sizes.mean().item<double>(), 9.5, 0.1);
  EXPECT_NEAR(sizes.std().item<double>(), 2.05, 0.15);
}

TEST(Bags, LabelsComeFromTheTargetClasses) {
  const Split pool = pool_of();
  const BagSet bags = make_bags(pool, 10, options(4.0, 2.0, 1, {3, 7}), 200, 11);
  const auto* members = bags.members.data_ptr<std::int64_t>();
  const auto* inst = bags.instance_labels.data_ptr<std::int64_t>();
  const auto* offsets = bags.offsets.data_ptr<std::int64_t>();
  std::int64_t positives = 0;
  for (std::int64_t b = 0; b < bags.size(); ++b) {
    bool any = false;
    for (std::int64_t j = offsets[b]; j < offsets[b + 1]; ++j) {
      ASSERT_GE(members[j], 0);
      ASSERT_LT(members[j], 40);
      const std::int64_t cls = members[j] % 10;
      const bool target = cls == 3 || cls == 7;
      EXPECT_EQ(inst[j], target ? 1 : 0) << "bag " << b << " instance " << j;
      any = any || target;
    }
    EXPECT_EQ(bags.labels[b].item<std::int64_t>(), any ? 1 : 0) << "bag " << b;
    positives += any ? 1 : 0;
  }
  // Both kinds occur (P(positive) ≈ 1 − 0.8^3.5 ≈ 0.54 per bag).
  EXPECT_GT(positives, 60);
  EXPECT_LT(positives, 160);
}

TEST(Bags, SameSeedSameBagsOtherSeedOtherBags) {
  const Split pool = pool_of();
  const BagSet a = make_bags(pool, 10, options(10.0, 2.0), 30, 5);
  const BagSet b = make_bags(pool, 10, options(10.0, 2.0), 30, 5);
  const BagSet c = make_bags(pool, 10, options(10.0, 2.0), 30, 6);
  EXPECT_TRUE(a.offsets.equal(b.offsets));
  EXPECT_TRUE(a.members.equal(b.members));
  EXPECT_TRUE(a.labels.equal(b.labels));
  EXPECT_FALSE(a.offsets.equal(c.offsets) && a.members.equal(c.members));
  // The global generator is not touched.
  torch::manual_seed(123);
  const torch::Tensor expected = torch::rand({4});
  torch::manual_seed(123);
  make_bags(pool, 10, options(10.0, 2.0), 30, 5);
  EXPECT_TRUE(torch::rand({4}).equal(expected));
}

TEST(Bags, GatherConcatenatesTheAskedBagsInOrder) {
  const Split pool = pool_of();
  const BagSet bags = make_bags(pool, 10, options(3.0, 1.5), 12, 2);
  const BagBatch batch = gather_bags(bags, torch::tensor({5, 0, 5}, torch::kInt64));
  ASSERT_EQ(batch.sizes.size(), 3u);
  EXPECT_EQ(batch.sizes[0], bags.bag_size(5));
  EXPECT_EQ(batch.sizes[1], bags.bag_size(0));
  EXPECT_EQ(batch.sizes[2], bags.bag_size(5));
  const std::int64_t total = batch.sizes[0] + batch.sizes[1] + batch.sizes[2];
  ASSERT_EQ(batch.instances.size(0), total);
  ASSERT_EQ(batch.instance_labels.size(0), total);
  EXPECT_TRUE(batch.labels.equal(torch::tensor({bags.labels[5].item<std::int64_t>(), bags.labels[0].item<std::int64_t>(),
                                                bags.labels[5].item<std::int64_t>()})));
  // Row r of the batch is pool instance members[...] (features = its index).
  const std::int64_t o5 = bags.offsets[5].item<std::int64_t>(), o0 = bags.offsets[0].item<std::int64_t>();
  for (std::int64_t j = 0; j < batch.sizes[1]; ++j) {
    const std::int64_t member = bags.members[o0 + j].item<std::int64_t>();
    EXPECT_EQ(batch.instances[batch.sizes[0] + j][0].item<float>(), static_cast<float>(member));
    EXPECT_EQ(batch.instance_labels[batch.sizes[0] + j].item<std::int64_t>(), member % 10 == 9 ? 1 : 0);
  }
  for (std::int64_t j = 0; j < batch.sizes[0]; ++j)
    EXPECT_TRUE(batch.instances[j].equal(batch.instances[batch.sizes[0] + batch.sizes[1] + j]));
  EXPECT_EQ(batch.instances[0][0].item<float>(), static_cast<float>(bags.members[o5].item<std::int64_t>()));
  EXPECT_THROW(gather_bags(bags, torch::tensor({12}, torch::kInt64)), std::out_of_range);
  EXPECT_THROW(gather_bags(bags, torch::empty({0}, torch::kInt64)), std::invalid_argument);
}

TEST(Bags, RefusesOptionsThatMakeEmptyOrMeaninglessBags) {
  const Split pool = pool_of();
  EXPECT_NE(error_of([&] { make_bags(pool, 10, options(10.0, 2.0, 0), 5, 1); }).find("data.bags.min_size"),
            std::string::npos);
  EXPECT_NE(error_of([&] { make_bags(pool, 10, options(10.0, 2.0, 1, {10}), 5, 1); })
                .find("class 10 is outside [0, 10)"),
            std::string::npos);
  EXPECT_NE(error_of([&] { make_bags(pool, 10, options(10.0, 2.0, 1, {}), 5, 1); }).find("data.bags.targets"),
            std::string::npos);
  EXPECT_NE(error_of([&] { make_bags(pool, 10, options(0.5, 2.0), 5, 1); }).find("data.bags.size_mean"),
            std::string::npos);
  EXPECT_NE(error_of([&] { make_bags(pool, 10, options(10.0, -1.0), 5, 1); }).find("data.bags.size_std"),
            std::string::npos);
  EXPECT_NE(error_of([&] { make_bags(pool, 10, options(10.0, 2.0), 0, 1); }).find("at least 1"), std::string::npos);
  EXPECT_NE(error_of([&] { make_bags(pool_of(0), 10, options(10.0, 2.0), 5, 1); }).find("pool is empty"),
            std::string::npos);
}

}  // namespace
}  // namespace reglab::data
