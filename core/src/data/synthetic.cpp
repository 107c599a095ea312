// data/synthetic.cpp — a seeded Gaussian mixture for fast tests and sweeps.
//
// Class k has mean separation * u_k, u_k a random unit vector; samples add
// unit-variance isotropic noise. Two means are about separation * sqrt(2)
// apart (random directions are nearly orthogonal in many dimensions), so the
// pairwise Bayes error is roughly Phi(-separation / sqrt(2)): separation 3
// gives ~2%, 1 gives ~24%, 0 makes the classes indistinguishable. Labels go
// round-robin (balanced classes); load_dataset's split shuffles the order.
#include "data/sources.h"

#include <ATen/CPUGeneratorImpl.h>
#include <torch/types.h>

#include <cmath>
#include <stdexcept>
#include <string>

namespace reglab::data::detail {
namespace {

void require_positive(std::int64_t value, std::int64_t minimum, const char* key) {
  if (value < minimum) {
    throw std::runtime_error(std::string("data.") + key + " must be at least " +
                             std::to_string(minimum) + ", got " + std::to_string(value));
  }
}

torch::Tensor draw_samples(const torch::Tensor& means, std::int64_t n, at::Generator& gen,
                           torch::Tensor& labels) {
  const std::int64_t classes = means.size(0);
  labels = torch::arange(n, torch::kInt64).remainder(classes);
  torch::Tensor noise = torch::randn({n, means.size(1)}, gen, torch::kFloat32);
  return means.index_select(0, labels) + noise;
}

}  // namespace

RawData make_synthetic(const DataOptions& options, std::uint64_t seed) {
  require_positive(options.synthetic_samples, 1, "synthetic_samples");
  require_positive(options.synthetic_test_samples, 1, "synthetic_test_samples");
  require_positive(options.synthetic_features, 1, "synthetic_features");
  require_positive(options.synthetic_classes, 2, "synthetic_classes");
  if (!std::isfinite(options.synthetic_separation) || options.synthetic_separation < 0) {
    throw std::runtime_error("data.synthetic_separation must be a finite number >= 0, got " +
                             std::to_string(options.synthetic_separation));
  }

  // Own generator: the global one (model initialisation) stays untouched.
  at::Generator gen = at::make_generator<at::CPUGeneratorImpl>(seed);
  const std::int64_t k = options.synthetic_classes;
  const std::int64_t f = options.synthetic_features;
  torch::Tensor directions = torch::randn({k, f}, gen, torch::kFloat64);
  // A zero draw is impossible in practice; the clamp only guards the division.
  directions = directions / directions.norm(2, {1}, /*keepdim=*/true).clamp_min(1e-12);
  const torch::Tensor means =
      (directions * options.synthetic_separation).to(torch::kFloat32);

  RawData raw;
  raw.train_x = draw_samples(means, options.synthetic_samples, gen, raw.train_y);
  raw.test_x = draw_samples(means, options.synthetic_test_samples, gen, raw.test_y);
  raw.num_classes = k;
  raw.input_shape = {f};
  return raw;
}

}  // namespace reglab::data::detail
