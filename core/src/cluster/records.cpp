// cluster/records.cpp — the Slurm executor's records, written and read
// through store/slurm_records.h (all SQL lives in store/).
#include "cluster/records.h"

#include "store/slurm_records.h"

namespace reglab::cluster {

namespace {

store::SlurmJobRow to_row(const JobRecord& j) {
  return {j.job_id, j.kind, j.array_size, j.script_path, j.submitted_at};
}

}  // namespace

void record_job(store::Store& store, std::int64_t sweep_id, const JobRecord& job) {
  store::record_slurm_job(store, sweep_id, to_row(job));
}

void record_array(store::Store& store, std::int64_t sweep_id, const JobRecord& array,
                  const std::vector<std::int64_t>& run_of_element) {
  store::record_slurm_array(store, sweep_id, to_row(array), run_of_element);
}

std::vector<JobRecord> jobs_of_sweep(store::Store& store, std::int64_t sweep_id) {
  std::vector<JobRecord> out;
  for (store::SlurmJobRow& j : store::slurm_jobs_of_sweep(store, sweep_id))
    out.push_back({j.job_id, std::move(j.kind), j.array_size, std::move(j.script_path), std::move(j.submitted_at)});
  return out;
}

std::map<std::int64_t, ElementId> current_elements(store::Store& store, std::int64_t sweep_id) {
  std::map<std::int64_t, ElementId> out;
  for (const auto& [run_id, e] : store::latest_slurm_elements(store, sweep_id)) out[run_id] = {e.job_id, e.array_index};
  return out;
}

}  // namespace reglab::cluster
