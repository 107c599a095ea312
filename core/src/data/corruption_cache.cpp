// data/corruption_cache.cpp — verified on-disk copies of corrupt() results.
//
// No fsync: after a crash a renamed file may hold garbage, which the checksum
// then rejects, so an entry is recomputed rather than trusted.
#include "data/corruption_cache.h"

#include "data/corruptions.h"
#include "util/hash.h"
#include "util/util.h"

#include <torch/serialize.h>
#include <torch/types.h>

#include <unistd.h>

#include <atomic>
#include <cctype>
#include <fstream>
#include <functional>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>

namespace reglab::data {
namespace {

namespace fs = std::filesystem;

struct Location {
  std::string key;
  fs::path archive;
  fs::path sidecar;
};

Location locate(const fs::path& cache_dir, const std::string& dataset_id, const torch::Tensor& images,
                const std::string& name, int severity, std::uint64_t seed) {
  validate_corruption(name, severity);
  if (dataset_id.empty()) throw std::invalid_argument("corruption cache: dataset_id is empty");
  for (const char ch : dataset_id) {
    if (std::iscntrl(static_cast<unsigned char>(ch)) != 0) {
      throw std::invalid_argument("corruption cache: dataset_id must not contain control characters");
    }
  }
  // The key hashes the images' bytes, which needs float32 CPU data; anything
  // else corrupt() rejects, with its own message.
  if (!images.defined() || images.dim() != 4 || images.scalar_type() != torch::kFloat32 ||
      !images.device().is_cpu()) {
    corrupt(images, name, severity, seed);
    throw std::invalid_argument("corruption cache: images must be a float32 CPU tensor [N, 1, H, W]");
  }
  const torch::Tensor data = images.contiguous();
  const std::string_view bytes(static_cast<const char*>(data.data_ptr()),
                               static_cast<std::size_t>(data.numel()) * sizeof(float));
  std::ostringstream key;
  key << "fashion-mnist-c/v" << kCorruptionsVersion << " dataset=" << dataset_id << " corruption=" << name
      << " severity=" << severity << " seed=" << seed << " shape=" << data.size(0) << "x" << data.size(1)
      << "x" << data.size(2) << "x" << data.size(3) << " images=" << util::hash_hex(bytes);
  Location loc;
  loc.key = key.str();
  loc.archive = cache_dir / (util::hash_hex(loc.key) + ".pt");
  loc.sidecar = loc.archive;
  loc.sidecar += ".xxh3";
  return loc;
}

std::string sidecar_text(const std::string& key, const std::string& archive_bytes) {
  return "reglab corruption cache entry\nkey " + key + "\nbytes " + std::to_string(archive_bytes.size()) +
         "\n" + util::kHashAlgorithm + " " + util::hash_hex(archive_bytes) + "\n";
}

std::optional<torch::Tensor> read_entry(const Location& loc, const torch::Tensor& images) {
  std::error_code ec;
  if (!fs::is_regular_file(loc.sidecar, ec) || !fs::is_regular_file(loc.archive, ec)) return std::nullopt;
  std::string meta;
  std::string bytes;
  try {
    meta = util::read_file(loc.sidecar);
    bytes = util::read_file(loc.archive);
  } catch (const std::exception&) {
    return std::nullopt;  // vanished or unreadable: recompute
  }
  if (meta != sidecar_text(loc.key, bytes)) return std::nullopt;
  try {
    std::istringstream in(bytes);
    torch::Tensor tensor;
    torch::load(tensor, in);
    if (!tensor.defined() || tensor.scalar_type() != torch::kFloat32 || tensor.sizes() != images.sizes()) {
      return std::nullopt;
    }
    return tensor;
  } catch (const std::exception&) {
    return std::nullopt;
  }
}

// Writes to a name no other writer uses, then renames over `target`.
void write_atomically(const fs::path& target, const std::string& data) {
  static std::atomic<std::uint64_t> counter{0};
  fs::path tmp = target;
  tmp += ".tmp-" + std::to_string(::getpid()) + "-" +
         std::to_string(std::hash<std::thread::id>{}(std::this_thread::get_id())) + "-" +
         std::to_string(counter.fetch_add(1));
  std::error_code ec;
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    out.write(data.data(), static_cast<std::streamsize>(data.size()));
    out.close();
    if (!out) {
      fs::remove(tmp, ec);
      throw std::runtime_error("corruption cache: cannot write " + tmp.string());
    }
  }
  fs::rename(tmp, target, ec);
  if (ec) {
    std::error_code ignored;
    fs::remove(tmp, ignored);
    throw std::runtime_error("corruption cache: cannot rename " + tmp.string() + " to " + target.string() +
                             ": " + ec.message());
  }
}

}  // namespace

fs::path corruption_cache_file(const fs::path& cache_dir, const std::string& dataset_id,
                               const torch::Tensor& images, const std::string& name, int severity,
                               std::uint64_t seed) {
  return locate(cache_dir, dataset_id, images, name, severity, seed).archive;
}

torch::Tensor cached_corruption(const fs::path& cache_dir, const std::string& dataset_id,
                                const torch::Tensor& images, const std::string& name, int severity,
                                std::uint64_t seed) {
  const Location loc = locate(cache_dir, dataset_id, images, name, severity, seed);
  if (std::optional<torch::Tensor> hit = read_entry(loc, images)) return *hit;

  torch::Tensor result = corrupt(images, name, severity, seed);
  std::error_code ec;
  fs::create_directories(cache_dir, ec);
  if (ec) {
    throw std::runtime_error("corruption cache: cannot create " + cache_dir.string() + ": " + ec.message());
  }
  std::ostringstream out;
  torch::save(result, out);
  const std::string bytes = out.str();
  write_atomically(loc.archive, bytes);
  write_atomically(loc.sidecar, sidecar_text(loc.key, bytes));
  return result;
}

}  // namespace reglab::data
