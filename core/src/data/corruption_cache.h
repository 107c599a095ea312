// data/corruption_cache.h — corrupt() results kept on disk between runs.
//
// cached_corruption() returns exactly what
// corrupt(images, name, severity, seed) returns (first_index 0: whole data
// sets), reading it from `cache_dir` when a verified copy is there, computing
// and storing it otherwise. One entry is two files:
//   <cache_dir>/<32 hex digits>.pt        the tensor, a LibTorch archive
//                                         (torch::save)
//   <cache_dir>/<32 hex digits>.pt.xxh3   text: the entry's full key, the
//                                         archive's size in bytes and its
//                                         XXH3-128 checksum (util/hash.h)
// The hex digits are the XXH3-128 hash of the key, which holds everything
// the result depends on: kCorruptionsVersion, dataset_id, name, severity,
// seed, the images' shape and an XXH3-128 checksum of their bytes — so a stale
// or mistaken dataset_id can never serve another data set's corruptions.
//
// An entry is used only when its sidecar names the same key and the archive
// has the recorded size and checksum and loads as a float32 tensor of the
// images' shape. Anything else — a missing, truncated, altered or foreign file
// — is recomputed and rewritten, never used.
//
// Writes go to a unique temporary file in cache_dir and are renamed into
// place (atomic on POSIX), archive first, sidecar second, so concurrent
// callers (threads, or trials in other processes sharing the directory) never
// read a partial file; at worst two of them compute the same entry. Archives
// of equal tensors are byte-identical, so racing writers agree.
//
// Errors: std::invalid_argument as corrupt() for bad arguments, and for an
// empty dataset_id or one with a control character; std::runtime_error
// naming the path when cache_dir cannot be created or written.
#pragma once

#include <torch/types.h>

#include <cstdint>
#include <filesystem>
#include <string>

namespace reglab::data {

torch::Tensor cached_corruption(const std::filesystem::path& cache_dir, const std::string& dataset_id,
                                const torch::Tensor& images, const std::string& name, int severity,
                                std::uint64_t seed);

// The archive cached_corruption() reads and writes for these arguments (its
// sidecar is this path plus ".xxh3"). Nothing is read or written.
std::filesystem::path corruption_cache_file(const std::filesystem::path& cache_dir,
                                            const std::string& dataset_id, const torch::Tensor& images,
                                            const std::string& name, int severity, std::uint64_t seed);

}  // namespace reglab::data
