// cluster/submit.h — `reglab run --executor slurm`, `reglab status`,
// `reglab cancel`: a sweep as a Slurm job array.
//
// Submitting first merges whatever shards earlier submissions left, then
// submits one array with an element for each trial that is neither completed
// nor still queued or running in Slurm (so re-running the command submits
// only the missing and failed trials), and a collect job that depends on the
// array (afterany). Everything a submission needs is written under
// <results>/slurm/<sweep>/<stamp>/: manifest.jsonl, job.sbatch, collect.sbatch
// and logs/. Job ids and the element of each run are recorded in the store.
// Stages (init.from) that the submitted trials need and that have no usable
// checkpoint yet run first as their own array (sweep `_stages`, manifest
// stages.jsonl, stages.sbatch); the trial array depends on it (afterok), so a
// failed stage cancels its trials, which collect then records as failed.
// No torch.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "cluster/shards.h"
#include "cluster/slurm.h"
#include "store/store.h"
#include "sweep/sweep.h"

namespace reglab::cluster {

struct SubmitOptions {
  std::filesystem::path db;      // the main store; shards and scripts go next to it
  std::filesystem::path reglab;  // the binary the elements and the collect job run
  SlurmOptions slurm;
  // Slurm's MaxArraySize (default 1001): element indices must stay below it.
  int max_array_size = 1001;
};

struct SubmitResult {
  int total = 0;
  int completed = 0;     // skipped: already completed
  int active = 0;        // skipped: queued or running in an earlier submission
  int submitted = 0;
  std::int64_t job_id = 0;          // 0 when nothing was submitted
  std::int64_t collect_job_id = 0;
  int stages_submitted = 0;         // stages (init.from) submitted as their own array first
  std::int64_t stage_job_id = 0;    // that array; the trial array waits for it (afterok)
  std::filesystem::path folder;     // where the scripts and the manifest are
  CollectResult collected;          // what the merge before submitting found
};

SubmitResult submit_sweep(const sweep::Sweep& sweep, const SubmitOptions& options, SlurmClient& slurm);

// One run as `reglab status` shows it.
struct RunState {
  std::int64_t run_id = 0;
  std::string key, label;
  std::string store_status;   // the main store's status
  std::string shard_status;   // the shard's, when it exists and is not merged yet ("" otherwise)
  ElementId element{0, -1};   // its current Slurm element ({0,-1} when never submitted)
  ElementState slurm;         // Slurm's view of that element (state "" when unknown)
  std::string error;          // first line of the store's error
};

// Every run of the sweep joined with its shard and Slurm's view; read-only.
std::vector<RunState> sweep_status(store::Store& main, const std::string& sweep, SlurmClient& slurm);
// Cancels the sweep's arrays that Slurm still has queued or running; returns
// their job ids (empty when none).
std::vector<std::int64_t> cancel_sweep(store::Store& main, const std::string& sweep, SlurmClient& slurm);
// Slurm's view of every job recorded for the sweep.
SlurmView view_of_sweep(store::Store& main, std::int64_t sweep_id, SlurmClient& slurm);

}  // namespace reglab::cluster
