// data/noise.cpp — seeded label noise for the training split.
//
// Both kinds draw from their own generator seeded by `seed`, so the global
// generator (model initialisation, dropout) is untouched and the same seed
// always corrupts the same labels. Every label gets one uniform draw (flip or
// not) and, for symmetric noise, one offset draw, whether or not it flips:
// the noise of sample i then does not depend on what happened to the others.
#include "data/dataset.h"

#include <ATen/CPUGeneratorImpl.h>
#include <torch/types.h>

#include <cmath>
#include <stdexcept>
#include <string>

namespace reglab::data {
namespace {

// Default asymmetric map for Fashion-MNIST: each class flips to the class it
// is most often confused with, in pairs:
//   T-shirt/top (0) <-> Shirt (6), Pullover (2) <-> Coat (4),
//   Sandal (5) <-> Sneaker (7);
// Trouser (1), Dress (3), Bag (8) and Ankle boot (9) never flip.
const std::vector<std::int64_t> kFashionMnistMap = {6, 1, 4, 3, 2, 7, 0, 5, 8, 9};

std::vector<std::int64_t> resolve_class_map(const NoiseOptions& noise, std::int64_t num_classes) {
  if (noise.class_map.empty()) {
    if (num_classes != static_cast<std::int64_t>(kFashionMnistMap.size())) {
      throw std::invalid_argument(
          "asymmetric label noise: the default class map is Fashion-MNIST's (10 classes) but the "
          "dataset has " + std::to_string(num_classes) + "; set data.noise.class_map");
    }
    return kFashionMnistMap;
  }
  if (static_cast<std::int64_t>(noise.class_map.size()) != num_classes) {
    throw std::invalid_argument("data.noise.class_map has " +
                                std::to_string(noise.class_map.size()) + " entries, expected one "
                                "per class (" + std::to_string(num_classes) + ")");
  }
  for (std::size_t i = 0; i < noise.class_map.size(); ++i) {
    const std::int64_t target = noise.class_map[i];
    if (target < 0 || target >= num_classes) {
      throw std::invalid_argument("data.noise.class_map[" + std::to_string(i) + "] = " +
                                  std::to_string(target) + " is not a class (0.." +
                                  std::to_string(num_classes - 1) + ")");
    }
  }
  return noise.class_map;
}

}  // namespace

torch::Tensor apply_label_noise(const torch::Tensor& clean_y, std::int64_t num_classes,
                                const NoiseOptions& noise, std::uint64_t seed,
                                torch::Tensor& flipped) {
  if (noise.kind != "none" && noise.kind != "symmetric" && noise.kind != "asymmetric") {
    throw std::invalid_argument("data.noise.kind must be none, symmetric or asymmetric, got '" +
                                noise.kind + "'");
  }
  if (!(noise.rate >= 0.0 && noise.rate <= 1.0)) {  // also rejects NaN
    throw std::invalid_argument("data.noise.rate must be in [0, 1], got " +
                                std::to_string(noise.rate));
  }
  if (clean_y.dim() != 1) {
    throw std::invalid_argument("apply_label_noise: labels must be 1-D");
  }
  if (num_classes < 1) {
    throw std::invalid_argument("apply_label_noise: num_classes must be positive");
  }
  const torch::Tensor y = clean_y.to(torch::kCPU, torch::kInt64);
  if (y.numel() > 0 && (y.min().item<std::int64_t>() < 0 ||
                        y.max().item<std::int64_t>() >= num_classes)) {
    throw std::invalid_argument("apply_label_noise: a label is outside 0.." +
                                std::to_string(num_classes - 1));
  }

  // The map is checked even at rate 0, so a bad map fails the first run
  // instead of the first noisy one.
  std::vector<std::int64_t> map;
  if (noise.kind == "asymmetric") map = resolve_class_map(noise, num_classes);

  torch::Tensor noisy;
  if (noise.kind == "none" || noise.rate == 0.0) {
    noisy = y.clone();
  } else if (noise.kind == "symmetric") {
    if (num_classes < 2) {
      throw std::invalid_argument("symmetric label noise needs at least 2 classes");
    }
    at::Generator gen = at::make_generator<at::CPUGeneratorImpl>(seed);
    const torch::Tensor flip = torch::rand({y.size(0)}, gen, torch::kFloat64) < noise.rate;
    // An offset in 1..K-1 added modulo K is a uniform draw among the other
    // K-1 classes, and can never give back the clean label.
    const torch::Tensor offset = torch::randint(1, num_classes, {y.size(0)}, gen, torch::kInt64);
    noisy = torch::where(flip, (y + offset).remainder(num_classes), y);
  } else {
    at::Generator gen = at::make_generator<at::CPUGeneratorImpl>(seed);
    const torch::Tensor flip = torch::rand({y.size(0)}, gen, torch::kFloat64) < noise.rate;
    const torch::Tensor targets =
        torch::tensor(map, torch::kInt64).index_select(0, y);
    noisy = torch::where(flip, targets, y);
  }
  flipped = noisy.ne(y);
  return noisy;
}

}  // namespace reglab::data
