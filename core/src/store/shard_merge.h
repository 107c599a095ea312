// store/shard_merge.h — copying a trial shard's run into the main store.
//
// A shard is a Store of its own (one run, rollback journal) that a Slurm
// array element wrote; cluster/shards.h decides which shards to merge and
// when. This module does the copying: the run's outcome, metrics, metric
// directions, summaries and artifacts, together with a shard_merges row that
// remembers which state of which shard was merged, in one IMMEDIATE
// transaction on the main store, so a merge is all or nothing and merging
// the same state twice adds nothing. Writes need a writable main Store. Like
// Store, not thread-safe. No torch.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>

#include "store/store.h"

namespace reglab::store {

// A run of the main store that is not superseded.
struct LiveRun {
  std::int64_t id = 0;
  RunStatus status = RunStatus::kPending;
  std::string error;
};

// The run of (sweep, key) that is not superseded; nullopt when there is none.
std::optional<LiveRun> find_live_run(Store& store, std::int64_t sweep_id, const std::string& key);

enum class ShardCopy {
  kCopied,         // the run and the shard_merges row are written
  kAlreadyMerged,  // shard_merges already has (shard_name, state): nothing written
};

// Copies run `shard_run` of `shard` onto run `main_run` of `main` (its
// status, code identity, times, error and log path, pid cleared; metrics and
// metric directions added or replaced; summaries replaced; artifacts added
// unless the same kind, path and checksum is there), and notes (shard_name,
// main_run, state) in shard_merges, in one transaction — unless
// (shard_name, state) was merged before. `state` is what identifies the
// shard's outcome (status, finish time, attempt).
ShardCopy copy_shard_run(Store& main, Store& shard, std::int64_t shard_run, std::int64_t main_run,
                         const std::string& shard_name, const std::string& state);

// The status of the first run of the database file `path`, read without
// opening a Store (no journal change, no migration: a running trial may be
// writing it); kPending when it holds no run. SQLite::Exception (a
// std::runtime_error) when the file cannot be read.
RunStatus peek_run_status(const std::filesystem::path& path);

}  // namespace reglab::store
