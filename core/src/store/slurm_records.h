// store/slurm_records.h — the Slurm executor's rows: slurm_jobs and
// slurm_tasks (schema version 2, see results/README.md).
//
// The cluster module decides what to submit and what Slurm's answers mean;
// this module only writes and reads the rows. Each write is one IMMEDIATE
// transaction, so a coordinator submitting an array and a trial process
// writing its run never interleave. Writes through a ReadOnly Store throw.
// Like Store, not thread-safe. No torch.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "store/store.h"

namespace reglab::store {

// One submitted Slurm job (a row of slurm_jobs).
struct SlurmJobRow {
  std::int64_t job_id = 0;
  std::string kind;  // "trials" or "collect"
  int array_size = 0;
  std::string script_path;
  std::string submitted_at;  // ISO-8601 UTC; "" when writing: now
};

// Records a job of the sweep (replacing a row of the same job id).
void record_slurm_job(Store& store, std::int64_t sweep_id, const SlurmJobRow& job);

// Records an array job and, for each element i, that it runs run
// run_of_element[i]; the runs among them that had failed or been
// interrupted go back to 'pending'. All in one transaction.
void record_slurm_array(Store& store, std::int64_t sweep_id, const SlurmJobRow& array,
                        const std::vector<std::int64_t>& run_of_element);

// The jobs of the sweep, ordered by job id.
std::vector<SlurmJobRow> slurm_jobs_of_sweep(Store& store, std::int64_t sweep_id);

// One element of an array job.
struct SlurmElement {
  std::int64_t job_id = 0;
  int array_index = 0;
};

// For each run of the sweep that was ever submitted: the element of its most
// recent submission (the highest job id).
std::map<std::int64_t, SlurmElement> latest_slurm_elements(Store& store, std::int64_t sweep_id);

}  // namespace reglab::store
