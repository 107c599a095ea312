#include "data/bags.h"

#include <ATen/CPUGeneratorImpl.h>
#include <torch/types.h>

#include <cmath>
#include <stdexcept>
#include <string>

namespace reglab::data {

namespace {

void check_options(const Split& pool, std::int64_t num_classes, const BagOptions& o, std::int64_t count) {
  auto fail = [](const std::string& what) { throw std::invalid_argument("bags: " + what); };
  if (count < 1) fail("the number of bags must be at least 1, got " + std::to_string(count));
  if (o.min_size < 1) fail("data.bags.min_size must be at least 1 (an empty bag has nothing to attend to), got " +
                           std::to_string(o.min_size));
  if (!std::isfinite(o.size_mean) || o.size_mean < 1.0)
    fail("data.bags.size_mean must be a finite number >= 1, got " + std::to_string(o.size_mean));
  if (!std::isfinite(o.size_std) || o.size_std < 0.0)
    fail("data.bags.size_std must be a finite number >= 0, got " + std::to_string(o.size_std));
  if (o.targets.empty()) fail("data.bags.targets must list at least one instance class");
  for (std::int64_t t : o.targets)
    if (t < 0 || t >= num_classes)
      fail("data.bags.targets: class " + std::to_string(t) + " is outside [0, " + std::to_string(num_classes) +
           ") of the dataset");
  if (pool.size() < 1) fail("the instance pool is empty (data.limit / data.test_limit too small?)");
}

}  // namespace

std::int64_t BagSet::bag_size(std::int64_t bag) const {
  const std::int64_t* o = offsets.data_ptr<std::int64_t>();
  return o[bag + 1] - o[bag];
}

BagSet make_bags(const Split& pool, std::int64_t num_classes, const BagOptions& options, std::int64_t count,
                 std::uint64_t seed) {
  check_options(pool, num_classes, options, count);
  at::Generator gen = at::make_generator<at::CPUGeneratorImpl>(seed);
  const auto f64 = torch::TensorOptions().dtype(torch::kFloat64);

  // Truncation toward zero, then the floor at min_size: what the reference
  // generator does with int(normal(...)) and its "< 1 becomes 1" rule.
  torch::Tensor sizes = at::normal(options.size_mean, options.size_std, {count}, gen, f64)
                            .trunc()
                            .clamp_min(static_cast<double>(options.min_size))
                            .to(torch::kInt64);
  torch::Tensor offsets = torch::zeros({count + 1}, torch::kInt64);
  offsets.slice(0, 1).copy_(sizes.cumsum(0));
  const std::int64_t total = offsets[count].item<std::int64_t>();
  torch::Tensor members = at::randint(0, pool.size(), {total}, gen, torch::TensorOptions().dtype(torch::kInt64));

  torch::Tensor is_target = torch::zeros({num_classes}, torch::kInt64);
  for (std::int64_t t : options.targets) is_target[t] = 1;
  torch::Tensor instance_labels = is_target.index_select(0, pool.y.index_select(0, members)).contiguous();

  torch::Tensor labels = torch::zeros({count}, torch::kInt64);
  const std::int64_t* o = offsets.data_ptr<std::int64_t>();
  const std::int64_t* il = instance_labels.data_ptr<std::int64_t>();
  std::int64_t* bl = labels.data_ptr<std::int64_t>();
  for (std::int64_t b = 0; b < count; ++b)
    for (std::int64_t j = o[b]; j < o[b + 1]; ++j)
      if (il[j] != 0) {
        bl[b] = 1;
        break;
      }
  return BagSet{pool.x, members, offsets, labels, instance_labels};
}

BagBatch gather_bags(const BagSet& bags, const torch::Tensor& bag_indices) {
  const torch::Tensor ids = bag_indices.to(torch::kCPU, torch::kInt64).contiguous();
  const std::int64_t n = ids.numel();
  if (n == 0) throw std::invalid_argument("bags: gather_bags needs at least one bag index");
  const std::int64_t* id = ids.data_ptr<std::int64_t>();
  const std::int64_t* o = bags.offsets.data_ptr<std::int64_t>();
  BagBatch out;
  out.sizes.reserve(static_cast<std::size_t>(n));
  std::vector<torch::Tensor> positions;
  positions.reserve(static_cast<std::size_t>(n));
  for (std::int64_t i = 0; i < n; ++i) {
    if (id[i] < 0 || id[i] >= bags.size())
      throw std::out_of_range("bags: bag index " + std::to_string(id[i]) + " is outside [0, " +
                              std::to_string(bags.size()) + ")");
    out.sizes.push_back(o[id[i] + 1] - o[id[i]]);
    positions.push_back(torch::arange(o[id[i]], o[id[i] + 1], torch::kInt64));
  }
  // One bag (the default step) needs no concatenation of positions.
  const torch::Tensor at = n == 1 ? positions[0] : torch::cat(positions);
  const torch::Tensor rows = bags.members.index_select(0, at);
  out.instances = bags.pool.index_select(0, rows);
  out.labels = bags.labels.index_select(0, ids);
  out.instance_labels = bags.instance_labels.index_select(0, at);
  return out;
}

}  // namespace reglab::data
