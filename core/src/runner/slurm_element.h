// runner/slurm_element.h — one element of a sweep's Slurm job array.
//
// `reglab _slurm-element --manifest M --index I --shards DIR --results DIR`
// runs the trial on line I+1 of the manifest into its own shard
// DIR/<key>.db and never touches the main store (see cluster/shards.h). A
// trial the shard already has completed is not run again, so a requeued or
// resubmitted element finishes its trial once; an interrupted one (preempted,
// cancelled) resumes from its last checkpoint. Exit codes as for `_trial`.
#pragma once

#include <filesystem>

namespace reglab::runner {

struct SlurmElementOptions {
  std::filesystem::path manifest;
  int index = 0;
  std::filesystem::path shard_dir;
  std::filesystem::path results_dir;
  int threads = 1;
};

int run_slurm_element(const SlurmElementOptions& options);

}  // namespace reglab::runner
