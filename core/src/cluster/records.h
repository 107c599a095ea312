// cluster/records.h — the Slurm executor's rows in the results database
// (slurm_jobs, slurm_tasks; schema version 2, see results/README.md).
// No torch.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "cluster/slurm.h"
#include "store/store.h"

namespace reglab::cluster {

struct JobRecord {
  std::int64_t job_id = 0;
  std::string kind;  // "trials" or "collect"
  int array_size = 0;
  std::string script_path;
  std::string submitted_at;
};

// One submitted array and the run each element executes. One transaction;
// resubmitted runs that had failed or been interrupted go back to 'pending'.
void record_array(store::Store& store, std::int64_t sweep_id, const JobRecord& array,
                  const std::vector<std::int64_t>& run_of_element);
// Any other job of the sweep (the collect job).
void record_job(store::Store& store, std::int64_t sweep_id, const JobRecord& job);

std::vector<JobRecord> jobs_of_sweep(store::Store& store, std::int64_t sweep_id);
// For each run of the sweep that was ever submitted: the element of its most
// recent submission.
std::map<std::int64_t, ElementId> current_elements(store::Store& store, std::int64_t sweep_id);

}  // namespace reglab::cluster
