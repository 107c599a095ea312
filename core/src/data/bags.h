// data/bags.h — bags of instances for multiple-instance learning.
//
// Bags are drawn from a pool of labelled instances (one split of a Dataset)
// the way the MNIST-bags benchmark of attention-based MIL draws them (Ilse et
// al. 2018, AMLab-Amsterdam/AttentionDeepMIL `dataloader.py`): for each bag a
// size s ~ Normal(size_mean, size_std), truncated toward zero and raised to
// min_size (≥ 1, so no bag is ever empty), then s instances drawn uniformly
// with replacement from the pool. A bag is positive (label 1) when at least
// one of its instances has a class listed in `targets`, else negative (0).
// The instance labels (is this instance of a target class) are kept for
// evaluation only; training sees the bag labels.
//
// Draws use their own generator seeded from `seed`, never the global one, so
// the bags depend on (pool, options, count, seed) only. The pool's images are
// not copied: a BagSet holds the pool tensor and, per bag, the positions of
// its instances in it.
//
// Errors (std::invalid_argument, naming the option): count < 1, min_size < 1,
// size_mean < 1 or size_std < 0 (or not finite), no targets, a target
// outside [0, num_classes), an empty pool.
#pragma once

#include <torch/types.h>

#include <cstdint>
#include <vector>

#include "data/dataset.h"

namespace reglab::data {

struct BagOptions {
  std::vector<std::int64_t> targets = {9};  // instance classes that make a bag positive
  double size_mean = 10.0;
  double size_std = 2.0;
  std::int64_t min_size = 1;
  std::int64_t train_bags = 200;
  std::int64_t test_bags = 50;
};

struct BagSet {
  torch::Tensor pool;             // float32 [M, ...], the instances bags index into
  torch::Tensor members;          // int64 [T], pool positions of every bag's instances, bag after bag
  torch::Tensor offsets;          // int64 [num_bags + 1], bag b is members[offsets[b] : offsets[b+1]]
  torch::Tensor labels;           // int64 [num_bags], 1 = positive bag
  torch::Tensor instance_labels;  // int64 [T], 1 = instance of a target class (evaluation only)

  std::int64_t size() const { return labels.defined() ? labels.size(0) : 0; }
  std::int64_t bag_size(std::int64_t bag) const;
};

// Instances of several bags, gathered for one forward pass: the bags'
// instances one after the other, and how many each bag has.
struct BagBatch {
  torch::Tensor instances;             // float32 [Σ sizes, ...]
  std::vector<std::int64_t> sizes;     // instances per bag, in the order asked
  torch::Tensor labels;                // int64 [B]
  torch::Tensor instance_labels;       // int64 [Σ sizes]
};

// `count` bags from `pool` (pool.y holds instance classes in [0, num_classes)).
BagSet make_bags(const Split& pool, std::int64_t num_classes, const BagOptions& options, std::int64_t count,
                 std::uint64_t seed);

// The bags with the given indices (int64 [B], each in [0, bags.size())).
BagBatch gather_bags(const BagSet& bags, const torch::Tensor& bag_indices);

}  // namespace reglab::data
