// cluster/shards.h — per-trial SQLite shards and merging them into the main
// store.
//
// A Slurm array element writes its one trial to its own database file,
// <results>/shards/<sweep>/<key>.db (rollback journal: one writer per file is
// safe on NFS and Lustre, where WAL is not). Merging copies the run's outcome,
// metrics, summaries and artifacts into the main store in one transaction per
// shard. It is idempotent: the state merged (status, finish time, attempts) is
// remembered in shard_merges, so merging the same shard again adds nothing,
// and a shard of a run the main store already has completed is never merged.
// No torch.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "cluster/slurm.h"
#include "store/store.h"

namespace reglab::cluster {

std::filesystem::path shard_directory(const std::filesystem::path& results_dir, const std::string& sweep);
std::filesystem::path shard_path(const std::filesystem::path& results_dir, const std::string& sweep,
                                 const std::string& key);

enum class MergeResult {
  kMerged,         // the shard's finished state is now in the main store
  kAlreadyMerged,  // this very state was merged before
  kRunCompleted,   // the main store already has the run completed
  kInProgress,     // the shard's run has not finished (pending or running)
};

struct MergeOutcome {
  MergeResult result = MergeResult::kInProgress;
  std::int64_t run_id = 0;          // in the main store
  store::RunStatus shard_status = store::RunStatus::kPending;
};

// Merges one shard. Throws std::runtime_error naming the shard when it is not
// a reglab database, holds other than one run, or names a sweep or run the
// main store does not have.
MergeOutcome merge_shard(store::Store& main, const std::filesystem::path& shard);

// The status of the run in a shard, without changing anything; nullopt when
// the file does not exist.
std::optional<store::RunStatus> peek_shard(const std::filesystem::path& shard);

struct CollectResult {
  int merged = 0;
  int already_merged = 0;
  int run_completed = 0;
  int in_progress = 0;
  int failed_by_slurm = 0;            // runs recorded as failed from Slurm's view
  std::vector<std::string> problems;  // shards that could not be merged, one line each
};

// Merges every shard of the sweep, then records as failed each run whose
// current Slurm element has ended without the trial finishing (cancelled,
// out of memory, time limit, node failure...), with Slurm's state and reason.
// `view` may be empty (no Slurm information): then only shards are merged.
CollectResult collect_sweep(store::Store& main, const std::string& sweep, const std::filesystem::path& results_dir,
                            const SlurmView& view);

}  // namespace reglab::cluster
