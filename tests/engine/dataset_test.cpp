// load_dataset: the real Fashion-MNIST files, the split, limits, noise
// placement, normalisation, and the synthetic mixture.
#include "data/dataset.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <chrono>
#include <ctime>
#include <cmath>
#include <filesystem>
#include <iostream>
#include <stdexcept>
#include <string>

namespace {

using reglab::data::DataOptions;
using reglab::data::Dataset;
using reglab::data::load_dataset;
using reglab::data::read_idx_gz;

const std::string kRoot = "/usr/share/datasets/fashion-mnist";

DataOptions raw_fashion() {
  DataOptions o;
  o.dataset = "fashion-mnist";
  o.root = kRoot;
  o.normalize = false;
  return o;
}

DataOptions synthetic() {
  DataOptions o;
  o.dataset = "synthetic";
  o.normalize = false;
  return o;
}

// One int64 per image: the raw 0..255 pixels dotted with fixed pseudo-random
// weights (integer arithmetic, so identical images give identical values).
torch::Tensor fingerprints(const torch::Tensor& images_01) {
  const torch::Tensor pixels = images_01.reshape({images_01.size(0), -1}).mul(255).round().to(torch::kInt64);
  const torch::Tensor weights =
      torch::arange(pixels.size(1), torch::kInt64).mul(std::int64_t{2654435761}).remainder(std::int64_t{1000003}).add(std::int64_t{1});
  return (pixels * weights).sum(1);
}

// Wall and process CPU seconds of one load (CPU time counts every thread).
struct LoadTiming {
  double wall;
  double cpu;
};

LoadTiming timed_load(const DataOptions& o, Dataset& out) {
  const auto start = std::chrono::steady_clock::now();
  const std::clock_t cpu_start = std::clock();
  out = load_dataset(o, 1);
  return {std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count(),
          static_cast<double>(std::clock() - cpu_start) / CLOCKS_PER_SEC};
}

bool same_multiset(const torch::Tensor& a, const torch::Tensor& b) {
  return a.numel() == b.numel() && torch::equal(std::get<0>(a.sort()), std::get<0>(b.sort()));
}

TEST(FashionMnist, LoadsAllSeventyThousand) {
  DataOptions o = raw_fashion();
  o.val_fraction = 0.0;
  Dataset ds;
  const LoadTiming t = timed_load(o, ds);
  std::cout << "[ info ] Fashion-MNIST load (70000 images, no normalisation): wall " << t.wall
            << " s, cpu " << t.cpu << " s\n";

  EXPECT_EQ(ds.num_classes, 10);
  EXPECT_EQ(ds.input_shape, (std::vector<std::int64_t>{1, 28, 28}));
  EXPECT_EQ(ds.train.x.sizes(), (std::vector<std::int64_t>{60000, 1, 28, 28}));
  EXPECT_EQ(ds.test.x.sizes(), (std::vector<std::int64_t>{10000, 1, 28, 28}));
  EXPECT_EQ(ds.val.size(), 0);
  EXPECT_EQ(ds.train.x.scalar_type(), torch::kFloat32);
  EXPECT_EQ(ds.train.y.scalar_type(), torch::kInt64);
  // Pixels were bytes: in [0, 1], and both ends occur.
  EXPECT_EQ(ds.train.x.min().item<float>(), 0.0f);
  EXPECT_EQ(ds.train.x.max().item<float>(), 1.0f);
  // Fashion-MNIST is balanced: 6000 per class in train, 1000 in test.
  EXPECT_TRUE(torch::equal(torch::bincount(ds.train.y, c10::nullopt, 10),
                           torch::full({10}, 6000, torch::kInt64)));
  EXPECT_TRUE(torch::equal(torch::bincount(ds.test.y, c10::nullopt, 10),
                           torch::full({10}, 1000, torch::kInt64)));
  EXPECT_FALSE(ds.train_flipped.any().item<bool>());
  EXPECT_TRUE(torch::equal(ds.train.y, ds.train_clean_y));
}

TEST(FashionMnist, RawFilesHaveTheDocumentedShapes) {
  const torch::Tensor images = read_idx_gz(kRoot + "/t10k-images-idx3-ubyte.gz");
  const torch::Tensor labels = read_idx_gz(kRoot + "/t10k-labels-idx1-ubyte.gz");
  EXPECT_EQ(images.sizes(), (std::vector<std::int64_t>{10000, 28, 28}));
  EXPECT_EQ(labels.sizes(), (std::vector<std::int64_t>{10000}));
  EXPECT_EQ(labels.max().item<int>(), 9);
}

TEST(FashionMnist, MissingFilesNameThePathAndThePackage) {
  DataOptions o = raw_fashion();
  o.root = std::string(REGLAB_TEST_BINARY_DIR) + "/no-such-fashion-mnist";
  try {
    load_dataset(o, 1);
    FAIL() << "no exception";
  } catch (const std::runtime_error& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("Fashion-MNIST file not found: " + o.root), std::string::npos) << msg;
    EXPECT_NE(msg.find("dataset-fashion-mnist"), std::string::npos) << msg;
    EXPECT_NE(msg.find("data.root"), std::string::npos) << msg;
  }
}

TEST(FashionMnist, SplitIsAPartitionOfTheTrainingSet) {
  DataOptions o = raw_fashion();
  o.val_fraction = 0.1;
  const Dataset ds = load_dataset(o, 7);
  EXPECT_EQ(ds.train.size(), 54000);
  EXPECT_EQ(ds.val.size(), 6000);
  EXPECT_EQ(ds.test.size(), 10000);
  // Train ∪ val is exactly the original training set (as a multiset of
  // images, so the few duplicate images Fashion-MNIST has don't matter)...
  const torch::Tensor original =
      read_idx_gz(kRoot + "/train-images-idx3-ubyte.gz").to(torch::kFloat32).div(255);
  EXPECT_TRUE(same_multiset(torch::cat({fingerprints(ds.train.x), fingerprints(ds.val.x)}),
                            fingerprints(original)));
  // ... with labels to match: together still 6000 per class.
  EXPECT_TRUE(torch::equal(torch::bincount(torch::cat({ds.train.y, ds.val.y}), c10::nullopt, 10),
                           torch::full({10}, 6000, torch::kInt64)));
  // The permutation mixes classes: the 6000 val labels are not one block.
  const torch::Tensor val_counts = torch::bincount(ds.val.y, c10::nullopt, 10);
  EXPECT_GT(val_counts.min().item<std::int64_t>(), 450);
  EXPECT_LT(val_counts.max().item<std::int64_t>(), 750);
  // The test split is the file's order, untouched.
  EXPECT_TRUE(torch::equal(ds.test.y, read_idx_gz(kRoot + "/t10k-labels-idx1-ubyte.gz").to(torch::kInt64)));
}

TEST(FashionMnist, SplitIsDeterministicPerSeed) {
  DataOptions o = raw_fashion();
  o.limit = 2000;
  o.test_limit = 10;
  const Dataset a = load_dataset(o, 3);
  const Dataset b = load_dataset(o, 3);
  const Dataset c = load_dataset(o, 4);
  EXPECT_TRUE(torch::equal(a.train.x, b.train.x));
  EXPECT_TRUE(torch::equal(a.train.y, b.train.y));
  EXPECT_TRUE(torch::equal(a.val.x, b.val.x));
  EXPECT_FALSE(torch::equal(a.train.y, c.train.y));
  EXPECT_FALSE(torch::equal(a.val.y, c.val.y));
  // The test split does not depend on the seed.
  EXPECT_TRUE(torch::equal(a.test.x, c.test.x));
}

TEST(FashionMnist, LimitsKeepTheFirstSamplesAfterTheSplit) {
  DataOptions o = raw_fashion();
  o.noise.kind = "symmetric";
  o.noise.rate = 0.5;
  const Dataset full = load_dataset(o, 11);
  o.limit = 1500;
  o.test_limit = 300;
  const Dataset small = load_dataset(o, 11);
  EXPECT_EQ(small.train.size(), 1500);
  EXPECT_EQ(small.test.size(), 300);
  EXPECT_EQ(small.val.size(), 6000);  // val is carved before the limit
  EXPECT_TRUE(torch::equal(small.train.x, full.train.x.narrow(0, 0, 1500)));
  EXPECT_TRUE(torch::equal(small.train_clean_y, full.train_clean_y.narrow(0, 0, 1500)));
  // A sample's noisy label does not depend on the limit.
  EXPECT_TRUE(torch::equal(small.train.y, full.train.y.narrow(0, 0, 1500)));
  EXPECT_TRUE(torch::equal(small.val.y, full.val.y));
  EXPECT_TRUE(torch::equal(small.test.x, full.test.x.narrow(0, 0, 300)));
}

TEST(FashionMnist, NoiseOnlyTouchesTraining) {
  DataOptions o = raw_fashion();
  o.noise.kind = "asymmetric";
  o.noise.rate = 0.3;
  const Dataset ds = load_dataset(o, 5);
  // Clean train + val labels still have 6000 of each class; the noisy ones don't.
  EXPECT_TRUE(torch::equal(torch::bincount(torch::cat({ds.train_clean_y, ds.val.y}), c10::nullopt, 10),
                           torch::full({10}, 6000, torch::kInt64)));
  EXPECT_TRUE(torch::equal(ds.train_flipped, ds.train.y.ne(ds.train_clean_y)));
  // Six of ten classes can flip, at rate 0.3: ~18% of all training labels.
  const double rate = ds.train_flipped.to(torch::kFloat64).mean().item<double>();
  EXPECT_NEAR(rate, 0.18, 0.01);
  EXPECT_TRUE(torch::equal(ds.test.y, read_idx_gz(kRoot + "/t10k-labels-idx1-ubyte.gz").to(torch::kInt64)));
}

TEST(FashionMnist, NormalisesWithTrainingStatistics) {
  DataOptions o = raw_fashion();
  o.limit = 5000;
  const Dataset raw = load_dataset(o, 2);
  o.normalize = true;
  const Dataset norm = load_dataset(o, 2);
  // Statistics of the kept training images, in float64 here.
  const torch::Tensor train64 = raw.train.x.to(torch::kFloat64);
  const double mean = train64.mean().item<double>();
  const double std = (train64 - mean).pow(2).mean().sqrt().item<double>();
  EXPECT_GT(mean, 0.2);  // Fashion-MNIST's mean pixel is ~0.286
  EXPECT_LT(mean, 0.4);
  EXPECT_TRUE(torch::allclose(norm.train.x.to(torch::kFloat64), (train64 - mean) / std, 1e-5, 1e-5));
  EXPECT_TRUE(torch::allclose(norm.val.x.to(torch::kFloat64),
                              (raw.val.x.to(torch::kFloat64) - mean) / std, 1e-5, 1e-5));
  EXPECT_TRUE(torch::allclose(norm.test.x.to(torch::kFloat64),
                              (raw.test.x.to(torch::kFloat64) - mean) / std, 1e-5, 1e-5));
  EXPECT_NEAR(norm.train.x.to(torch::kFloat64).mean().item<double>(), 0.0, 1e-5);
}

TEST(FashionMnist, NormalisedLoadTime) {
  DataOptions o;  // the defaults: val 0.1, normalize
  Dataset ds;
  const LoadTiming t = timed_load(o, ds);
  std::cout << "[ info ] Fashion-MNIST load (defaults, normalised): wall " << t.wall << " s, cpu "
            << t.cpu << " s\n";
  EXPECT_EQ(ds.train.size() + ds.val.size() + ds.test.size(), 70000);
}

TEST(Dataset, RejectsBadOptions) {
  DataOptions o = synthetic();
  o.dataset = "cifar";
  EXPECT_THROW(load_dataset(o, 1), std::runtime_error);
  o = synthetic();
  o.val_fraction = 1.0;
  EXPECT_THROW(load_dataset(o, 1), std::runtime_error);
  o = synthetic();
  o.limit = -1;
  EXPECT_THROW(load_dataset(o, 1), std::runtime_error);
  o = synthetic();
  o.synthetic_classes = 1;
  EXPECT_THROW(load_dataset(o, 1), std::runtime_error);
  o = synthetic();
  o.noise.kind = "asymmetric";  // default map needs 10 classes; synthetic has 4
  o.noise.rate = 0.2;
  try {
    load_dataset(o, 1);
    FAIL() << "no exception";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("class_map"), std::string::npos) << e.what();
  }
}

TEST(Synthetic, ShapesSplitAndBalance) {
  DataOptions o = synthetic();
  o.synthetic_samples = 1000;
  o.synthetic_test_samples = 200;
  o.synthetic_features = 12;
  o.synthetic_classes = 5;
  o.val_fraction = 0.2;
  const Dataset ds = load_dataset(o, 1);
  EXPECT_EQ(ds.input_shape, (std::vector<std::int64_t>{12}));
  EXPECT_EQ(ds.num_classes, 5);
  EXPECT_EQ(ds.train.x.sizes(), (std::vector<std::int64_t>{800, 12}));
  EXPECT_EQ(ds.val.x.sizes(), (std::vector<std::int64_t>{200, 12}));
  EXPECT_EQ(ds.test.x.sizes(), (std::vector<std::int64_t>{200, 12}));
  EXPECT_EQ(ds.train.x.scalar_type(), torch::kFloat32);
  EXPECT_TRUE(torch::equal(torch::bincount(torch::cat({ds.train.y, ds.val.y}), c10::nullopt, 5),
                           torch::full({5}, 200, torch::kInt64)));
  EXPECT_TRUE(torch::equal(torch::bincount(ds.test.y, c10::nullopt, 5), torch::full({5}, 40, torch::kInt64)));
}

// Nearest-class-mean accuracy on the test split, means from the training split.
double nearest_mean_accuracy(const Dataset& ds) {
  std::vector<torch::Tensor> means;
  for (std::int64_t c = 0; c < ds.num_classes; ++c) {
    means.push_back(ds.train.x.index({ds.train.y.eq(c)}).mean(0));
  }
  const torch::Tensor d = torch::cdist(ds.test.x, torch::stack(means));
  return d.argmin(1).eq(ds.test.y).to(torch::kFloat64).mean().item<double>();
}

TEST(Synthetic, SeparationControlsDifficulty) {
  DataOptions o = synthetic();
  o.synthetic_samples = 4000;
  o.synthetic_test_samples = 2000;
  o.synthetic_separation = 6.0;
  const double easy = nearest_mean_accuracy(load_dataset(o, 1));
  o.synthetic_separation = 0.0;
  const double chance = nearest_mean_accuracy(load_dataset(o, 1));
  o.synthetic_separation = 1.5;
  const double medium = nearest_mean_accuracy(load_dataset(o, 1));
  EXPECT_GT(easy, 0.97);
  EXPECT_NEAR(chance, 0.25, 0.05);  // 4 classes, nothing to learn
  EXPECT_GT(medium, chance + 0.1);
  EXPECT_LT(medium, easy);
}

TEST(Synthetic, DeterministicAndLeavesGlobalGeneratorAlone) {
  DataOptions o = synthetic();
  o.noise.kind = "symmetric";
  o.noise.rate = 0.3;
  torch::manual_seed(5);
  const torch::Tensor expected = torch::rand({3});
  torch::manual_seed(5);
  const Dataset a = load_dataset(o, 21);
  EXPECT_TRUE(torch::equal(torch::rand({3}), expected));
  const Dataset b = load_dataset(o, 21);
  const Dataset c = load_dataset(o, 22);
  EXPECT_TRUE(torch::equal(a.train.x, b.train.x));
  EXPECT_TRUE(torch::equal(a.train.y, b.train.y));
  EXPECT_TRUE(torch::equal(a.test.x, b.test.x));
  EXPECT_FALSE(torch::equal(a.train.x, c.train.x));
  EXPECT_FALSE(torch::equal(a.train_flipped, c.train_flipped));
}

TEST(Synthetic, NormalisesPerFeature) {
  DataOptions o = synthetic();
  o.normalize = true;
  o.synthetic_separation = 5.0;
  const Dataset ds = load_dataset(o, 8);
  const torch::Tensor x = ds.train.x.to(torch::kFloat64);
  EXPECT_LT(x.mean(0).abs().max().item<double>(), 1e-5);
  EXPECT_LT((x.std(0, /*unbiased=*/false) - 1).abs().max().item<double>(), 1e-5);
}

}  // namespace
