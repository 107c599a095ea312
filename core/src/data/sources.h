// data/sources.h — private: the raw datasets load_dataset() splits, noises
// and normalises. Each source returns its full training and test sets; x is
// uint8 (images, scaled to [0, 1] later, after the split, so the copy made by
// the split is a quarter of the size) or float32 (already real-valued).
#pragma once

#include "data/dataset.h"

#include <torch/types.h>

#include <cstdint>
#include <string>
#include <vector>

namespace reglab::data::detail {

struct RawData {
  torch::Tensor train_x;  // [N, ...] uint8 or float32
  torch::Tensor train_y;  // int64 [N]
  torch::Tensor test_x;
  torch::Tensor test_y;
  std::int64_t num_classes = 0;
  std::vector<std::int64_t> input_shape;
};

// The four IDX files under `root`; throws std::runtime_error naming the
// missing or broken file.
RawData load_fashion_mnist(const std::string& root);

// Seeded Gaussian mixture from the synthetic_* options; throws
// std::runtime_error on invalid sizes.
RawData make_synthetic(const DataOptions& options, std::uint64_t seed);

}  // namespace reglab::data::detail
