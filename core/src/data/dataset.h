// data/dataset.h — classification datasets held in memory as tensors.
//
// `fashion-mnist` reads the four gzip IDX files (train/t10k images/labels)
// from `root` (Debian's dataset-fashion-mnist installs them under
// /usr/share/datasets/fashion-mnist); a missing file is an error naming the
// path and the package. `synthetic` draws a seeded Gaussian mixture.
// Images are float32 in [0, 1], shape [N, 1, 28, 28]; with `normalize` they
// are standardised with the training split's mean and std. The validation
// split is carved out of the training set (seeded permutation). Label noise
// is applied to the training split only (after the split), seeded, and the
// clean labels and the flipped mask are kept for memorisation metrics.
#pragma once

#include <torch/types.h>

#include <cstdint>
#include <string>
#include <vector>

namespace reglab::data {

struct NoiseOptions {
  std::string kind = "none";          // none | symmetric | asymmetric
  double rate = 0.0;                  // in [0, 1]
  // asymmetric: class i flips to class_map[i] with probability `rate`
  // (class_map[i] == i: never flips). Empty = the Fashion-MNIST default map
  // documented in noise.cpp.
  std::vector<std::int64_t> class_map;
};

struct DataOptions {
  std::string dataset = "fashion-mnist";  // fashion-mnist | synthetic
  std::string root = "/usr/share/datasets/fashion-mnist";
  std::int64_t limit = 0;        // keep the first `limit` training samples (0 = all)
  std::int64_t test_limit = 0;   // keep the first `test_limit` test samples (0 = all)
  double val_fraction = 0.1;
  bool normalize = true;
  NoiseOptions noise;
  // Keep only the samples of these classes (every split), relabelled
  // 0..k-1 in the listed order; empty = all classes. Applied to the source's
  // data before the validation split, so noise, limits and normalisation see
  // only the kept classes.
  std::vector<std::int64_t> classes;
  // synthetic only
  std::int64_t synthetic_samples = 2000;
  std::int64_t synthetic_test_samples = 500;
  std::int64_t synthetic_features = 20;
  std::int64_t synthetic_classes = 4;
  double synthetic_separation = 3.0;
};

struct Split {
  torch::Tensor x;  // float32 [N, ...]
  torch::Tensor y;  // int64 [N]
  std::int64_t size() const { return y.defined() ? y.size(0) : 0; }
};

struct Dataset {
  Split train;                    // y = labels used for training (noisy where flipped)
  torch::Tensor train_clean_y;    // int64 [N], the true labels
  torch::Tensor train_flipped;    // bool [N], y != clean_y
  Split val;
  Split test;
  std::int64_t num_classes = 0;
  std::vector<std::int64_t> input_shape;  // per sample, e.g. {1, 28, 28} or {20}
};

// Throws std::runtime_error with a clear message on missing/corrupt files or
// invalid options (a class of `classes` out of range or listed twice). Deterministic given (options, seed).
Dataset load_dataset(const DataOptions& options, std::uint64_t seed);

// Reads the raw files of a file-backed dataset once and keeps them for the
// life of the process; later load_dataset calls (also in forked children)
// reuse them. A no-op for synthetic data and for a root already loaded.
// Not thread-safe: call it before starting trial workers.
void preload(const DataOptions& options);

// The rows of (x, y) whose label is one of `classes`, in their original
// order, with labels replaced by their position in `classes`. Throws
// std::runtime_error when a class is outside [0, num_classes) or repeated.
void select_classes(torch::Tensor& x, torch::Tensor& y, const std::vector<std::int64_t>& classes,
                    std::int64_t num_classes);

// Reads one gzip IDX file (magic 0x801 labels, 0x803 images) into a uint8
// tensor of its declared shape. Exposed for tests.
torch::Tensor read_idx_gz(const std::string& path);

// Applies label noise; returns the noisy labels and fills `flipped`.
// symmetric: with probability rate a label becomes a uniformly drawn *other*
// class (so `rate` is the expected fraction of wrong labels).
torch::Tensor apply_label_noise(const torch::Tensor& clean_y, std::int64_t num_classes,
                                const NoiseOptions& noise, std::uint64_t seed,
                                torch::Tensor& flipped);

}  // namespace reglab::data
