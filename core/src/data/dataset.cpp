// data/dataset.cpp — load_dataset(): source, split, label noise, scaling.
//
// Order of work, and why:
//   1. the source's full training set is permuted with a generator seeded
//      from `seed`; the first round(val_fraction * N) go to validation, the
//      rest to training;
//   2. label noise corrupts that whole training part (before `limit`, so the
//      noisy label of a sample does not depend on how many are kept);
//   3. `limit` / `test_limit` keep the first samples of training / test;
//   4. images become float32 in [0, 1]; with `normalize`, every split is
//      standardised per channel (per feature for vector data) with the mean
//      and (population) std of the kept training split.
// Each random step has its own generator, derived from `seed`, so none of
// them touches the global generator or depends on the others' draws.
#include "data/dataset.h"

#include <map>

#include "data/sources.h"

#include <ATen/CPUGeneratorImpl.h>
#include <ATen/Parallel.h>
#include <torch/types.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <mutex>
#include <stdexcept>
#include <string>
#include <vector>

namespace reglab::data {
namespace {

// SplitMix64 finaliser: turns (seed, stream) into well-separated generator
// seeds, so e.g. seed 1's noise is unrelated to seed 2's split.
std::uint64_t derive_seed(std::uint64_t seed, std::uint64_t stream) {
  std::uint64_t z = seed + 0x9E3779B97F4A7C15ull * (stream + 1);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

constexpr std::uint64_t kSplitStream = 1;
constexpr std::uint64_t kNoiseStream = 2;
constexpr std::uint64_t kSourceStream = 3;

void validate(const DataOptions& options) {
  if (options.dataset != "fashion-mnist" && options.dataset != "synthetic") {
    throw std::runtime_error("data.dataset must be fashion-mnist or synthetic, got '" +
                             options.dataset + "'");
  }
  if (!(options.val_fraction >= 0.0 && options.val_fraction < 1.0)) {
    throw std::runtime_error("data.val_fraction must be in [0, 1), got " +
                             std::to_string(options.val_fraction));
  }
  if (options.limit < 0) {
    throw std::runtime_error("data.limit must be >= 0 (0 = all), got " +
                             std::to_string(options.limit));
  }
  if (options.test_limit < 0) {
    throw std::runtime_error("data.test_limit must be >= 0 (0 = all), got " +
                             std::to_string(options.test_limit));
  }
}

torch::Tensor first(const torch::Tensor& t, std::int64_t limit) {
  if (limit <= 0 || limit >= t.size(0)) return t;
  return t.narrow(0, 0, limit);
}

// --- Byte images ----------------------------------------------------------
// Fashion-MNIST arrives as bytes. Gathering the split's rows, converting to
// float, reducing for the statistics, then subtracting and dividing is five
// passes over ~200 MB and took longer than decompressing the files. Instead:
// the statistics come from a per-channel histogram of the 256 byte values
// (exact, in float64), and each split is built in one pass that gathers its
// rows and maps every byte through a 256-entry table of final float values.

using ByteTable = std::array<float, 256>;

// Rows of `x` [N, C, ...] as a 2-D byte matrix and the per-channel plane size.
struct ByteRows {
  const std::uint8_t* data;
  std::int64_t row_size;
  std::int64_t channels;
  std::int64_t plane;
};

ByteRows byte_rows(const torch::Tensor& x) {
  const std::int64_t row_size = x.size(0) > 0 ? x.numel() / x.size(0) : 0;
  const std::int64_t channels = x.dim() > 1 ? x.size(1) : 1;
  return {x.data_ptr<std::uint8_t>(), row_size, channels, channels > 0 ? row_size / channels : 0};
}

std::vector<ByteTable> byte_tables(const torch::Tensor& x, const torch::Tensor& rows,
                                   bool normalize) {
  const ByteRows src = byte_rows(x);
  std::vector<ByteTable> tables(static_cast<std::size_t>(src.channels));
  std::vector<std::array<std::int64_t, 256>> hist(tables.size());
  for (auto& h : hist) h.fill(0);
  if (normalize) {
    const std::int64_t* idx = rows.data_ptr<std::int64_t>();
    std::mutex merge;
    at::parallel_for(0, rows.size(0), 256, [&](std::int64_t begin, std::int64_t end) {
      std::vector<std::array<std::int64_t, 256>> local(hist.size());
      for (auto& h : local) h.fill(0);
      for (std::int64_t r = begin; r < end; ++r) {
        const std::uint8_t* row = src.data + idx[r] * src.row_size;
        for (std::int64_t c = 0; c < src.channels; ++c) {
          auto& h = local[static_cast<std::size_t>(c)];
          for (std::int64_t j = 0; j < src.plane; ++j) ++h[row[c * src.plane + j]];
        }
      }
      std::lock_guard<std::mutex> lock(merge);
      for (std::size_t c = 0; c < hist.size(); ++c)
        for (int v = 0; v < 256; ++v) hist[c][v] += local[c][v];
    });
  }
  for (std::size_t c = 0; c < tables.size(); ++c) {
    double mean = 0.0;
    double std = 1.0;
    if (normalize) {
      double count = 0.0, sum = 0.0;
      for (int v = 0; v < 256; ++v) {
        count += static_cast<double>(hist[c][v]);
        sum += static_cast<double>(hist[c][v]) * (v / 255.0);
      }
      mean = sum / count;
      double var = 0.0;
      for (int v = 0; v < 256; ++v) {
        const double d = v / 255.0 - mean;
        var += static_cast<double>(hist[c][v]) * d * d;
      }
      std = std::sqrt(var / count);
      if (!(std > 0.0)) std = 1.0;  // a constant channel: shift only, never divide by 0
    }
    for (int v = 0; v < 256; ++v) {
      tables[c][static_cast<std::size_t>(v)] =
          normalize ? static_cast<float>((v / 255.0 - mean) / std)
                    : static_cast<float>(v) / 255.0f;
    }
  }
  return tables;
}

torch::Tensor gather_bytes(const torch::Tensor& x, const torch::Tensor& rows,
                           const std::vector<ByteTable>& tables) {
  const ByteRows src = byte_rows(x);
  std::vector<std::int64_t> shape = x.sizes().vec();
  shape[0] = rows.size(0);
  torch::Tensor out = torch::empty(shape, torch::kFloat32);
  float* dst = out.data_ptr<float>();
  const std::int64_t* idx = rows.data_ptr<std::int64_t>();
  at::parallel_for(0, rows.size(0), 64, [&](std::int64_t begin, std::int64_t end) {
    for (std::int64_t r = begin; r < end; ++r) {
      const std::uint8_t* row = src.data + idx[r] * src.row_size;
      float* out_row = dst + r * src.row_size;
      for (std::int64_t c = 0; c < src.channels; ++c) {
        const ByteTable& t = tables[static_cast<std::size_t>(c)];
        const std::int64_t o = c * src.plane;
        for (std::int64_t j = 0; j < src.plane; ++j) out_row[o + j] = t[row[o + j]];
      }
    }
  });
  return out;
}

void make_byte_splits(const detail::RawData& raw, const torch::Tensor& train_rows,
                      const torch::Tensor& val_rows, std::int64_t test_limit, bool normalize,
                      Dataset& ds) {
  const torch::Tensor train_x = raw.train_x.contiguous();
  const torch::Tensor test_x = raw.test_x.contiguous();
  const std::vector<ByteTable> tables = byte_tables(train_x, train_rows.contiguous(), normalize);
  const std::int64_t n_test =
      test_limit > 0 ? std::min(test_limit, test_x.size(0)) : test_x.size(0);
  ds.train.x = gather_bytes(train_x, train_rows.contiguous(), tables);
  ds.val.x = gather_bytes(train_x, val_rows.contiguous(), tables);
  ds.test.x = gather_bytes(test_x, torch::arange(n_test, torch::kInt64), tables);
}

// --- Real-valued data -------------------------------------------------------
// Standardised per entry of dim 1 (a feature for vectors, a channel for
// images) with the kept training split's statistics.
void make_float_splits(const detail::RawData& raw, const torch::Tensor& train_rows,
                       const torch::Tensor& val_rows, std::int64_t test_limit, bool normalize,
                       Dataset& ds) {
  ds.train.x = raw.train_x.index_select(0, train_rows).to(torch::kFloat32);
  ds.val.x = raw.train_x.index_select(0, val_rows).to(torch::kFloat32);
  ds.test.x = first(raw.test_x, test_limit).to(torch::kFloat32).clone();
  if (!normalize) return;
  std::vector<std::int64_t> reduce_dims = {0};
  for (std::int64_t d = 2; d < ds.train.x.dim(); ++d) reduce_dims.push_back(d);
  auto [std, mean] = torch::std_mean(ds.train.x.to(torch::kFloat64), reduce_dims,
                                     /*unbiased=*/false, /*keepdim=*/true);
  // A constant feature has std 0; leave its scale alone rather than divide by 0.
  std = torch::where(std > 0, std, torch::ones_like(std));
  const torch::Tensor mean32 = mean.to(torch::kFloat32);
  const torch::Tensor std32 = std.to(torch::kFloat32);
  for (Split* s : {&ds.train, &ds.val, &ds.test}) {
    if (s->x.size(0) > 0) s->x.sub_(mean32).div_(std32);
  }
}

}  // namespace

void select_classes(torch::Tensor& x, torch::Tensor& y, const std::vector<std::int64_t>& classes,
                    std::int64_t num_classes) {
  std::vector<std::int64_t> relabel(static_cast<std::size_t>(std::max<std::int64_t>(num_classes, 0)), -1);
  for (std::size_t i = 0; i < classes.size(); ++i) {
    const std::int64_t c = classes[i];
    if (c < 0 || c >= num_classes) {
      throw std::runtime_error("data.classes: class " + std::to_string(c) + " is out of range; the dataset has " +
                               std::to_string(num_classes) + " classes");
    }
    if (relabel[static_cast<std::size_t>(c)] >= 0) {
      throw std::runtime_error("data.classes: class " + std::to_string(c) + " is listed twice");
    }
    relabel[static_cast<std::size_t>(c)] = static_cast<std::int64_t>(i);
  }
  const torch::Tensor map = torch::tensor(relabel, torch::kInt64);
  const torch::Tensor mapped = map.index_select(0, y.to(torch::kInt64));
  const torch::Tensor rows = (mapped >= 0).nonzero().flatten();
  x = x.index_select(0, rows);
  y = mapped.index_select(0, rows);
}

// Raw Fashion-MNIST files already read in this process, by root. Filled by
// preload() in the coordinator before it forks trial workers, so every trial
// shares one copy (copy-on-write) instead of inflating the files again.
std::map<std::string, detail::RawData>& raw_cache() {
  static std::map<std::string, detail::RawData> cache;
  return cache;
}

void preload(const DataOptions& options) {
  if (options.dataset != "fashion-mnist" || raw_cache().count(options.root)) return;
  raw_cache().emplace(options.root, detail::load_fashion_mnist(options.root));
}

Dataset load_dataset(const DataOptions& options, std::uint64_t seed) {
  validate(options);
  auto cached = raw_cache().find(options.root);
  detail::RawData raw = options.dataset != "fashion-mnist"
                            ? detail::make_synthetic(options, derive_seed(seed, kSourceStream))
                        : cached != raw_cache().end() ? cached->second
                                                      : detail::load_fashion_mnist(options.root);

  if (!options.classes.empty()) {
    select_classes(raw.train_x, raw.train_y, options.classes, raw.num_classes);
    select_classes(raw.test_x, raw.test_y, options.classes, raw.num_classes);
    raw.num_classes = static_cast<std::int64_t>(options.classes.size());
  }

  const std::int64_t n = raw.train_y.size(0);
  const auto n_val = static_cast<std::int64_t>(std::llround(options.val_fraction * n));
  if (n - n_val < 1) {
    throw std::runtime_error("data.val_fraction " + std::to_string(options.val_fraction) +
                             " leaves no training samples out of " + std::to_string(n));
  }
  at::Generator split_gen = at::make_generator<at::CPUGeneratorImpl>(derive_seed(seed, kSplitStream));
  const torch::Tensor perm = torch::randperm(n, split_gen, torch::kInt64);
  const torch::Tensor val_idx = perm.narrow(0, 0, n_val);
  const torch::Tensor train_idx = perm.narrow(0, n_val, n - n_val);

  // Noise on the whole training part, then the limit (see the header comment).
  const torch::Tensor clean_all = raw.train_y.index_select(0, train_idx);
  torch::Tensor flipped_all;
  torch::Tensor noisy_all;
  try {
    noisy_all = apply_label_noise(clean_all, raw.num_classes, options.noise,
                                  derive_seed(seed, kNoiseStream), flipped_all);
  } catch (const std::invalid_argument& e) {
    throw std::runtime_error(e.what());  // load_dataset reports every bad option the same way
  }
  const torch::Tensor kept_train_idx = first(train_idx, options.limit);
  const std::int64_t n_train = kept_train_idx.size(0);

  Dataset ds;
  ds.num_classes = raw.num_classes;
  ds.input_shape = raw.input_shape;
  if (raw.train_x.scalar_type() == torch::kUInt8) {
    make_byte_splits(raw, kept_train_idx, val_idx, options.test_limit, options.normalize, ds);
  } else {
    make_float_splits(raw, kept_train_idx, val_idx, options.test_limit, options.normalize, ds);
  }
  ds.train.y = noisy_all.narrow(0, 0, n_train).clone();
  ds.train_clean_y = clean_all.narrow(0, 0, n_train).clone();
  ds.train_flipped = flipped_all.narrow(0, 0, n_train).clone();
  ds.val.y = raw.train_y.index_select(0, val_idx);
  ds.test.y = first(raw.test_y, options.test_limit).clone();
  return ds;
}

}  // namespace reglab::data
