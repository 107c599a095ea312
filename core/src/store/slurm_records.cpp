// store/slurm_records.cpp — slurm_jobs and slurm_tasks rows.
#include "store/slurm_records.h"

#include <SQLiteCpp/SQLiteCpp.h>

#include "store/connection.h"
#include "util/util.h"

namespace reglab::store {

namespace {

// Inside the caller's transaction.
void insert_job(SQLite::Database& db, std::int64_t sweep_id, const SlurmJobRow& j) {
  SQLite::Statement q(db,
                      "INSERT OR REPLACE INTO slurm_jobs (job_id, sweep_id, kind, array_size, script_path, submitted_at) "
                      "VALUES (?, ?, ?, ?, ?, ?)");
  q.bind(1, j.job_id);
  q.bind(2, sweep_id);
  q.bind(3, j.kind);
  q.bind(4, j.array_size);
  q.bind(5, j.script_path);
  q.bind(6, j.submitted_at.empty() ? util::now_iso8601() : j.submitted_at);
  q.exec();
}

}  // namespace

void record_slurm_job(Store& store, std::int64_t sweep_id, const SlurmJobRow& job) {
  SQLite::Database& db = connection(store);
  SQLite::Transaction tx(db, SQLite::TransactionBehavior::IMMEDIATE);
  insert_job(db, sweep_id, job);
  tx.commit();
}

void record_slurm_array(Store& store, std::int64_t sweep_id, const SlurmJobRow& array,
                        const std::vector<std::int64_t>& run_of_element) {
  SQLite::Database& db = connection(store);
  SQLite::Transaction tx(db, SQLite::TransactionBehavior::IMMEDIATE);
  insert_job(db, sweep_id, array);
  SQLite::Statement task(db, "INSERT OR REPLACE INTO slurm_tasks (job_id, array_index, run_id) VALUES (?, ?, ?)");
  SQLite::Statement requeue(db,
                            "UPDATE runs SET status = 'pending' WHERE id = ? AND status IN ('failed', 'interrupted')");
  for (std::size_t i = 0; i < run_of_element.size(); ++i) {
    task.bind(1, array.job_id);
    task.bind(2, static_cast<int>(i));
    task.bind(3, run_of_element[i]);
    task.exec();
    task.reset();
    requeue.bind(1, run_of_element[i]);
    requeue.exec();
    requeue.reset();
  }
  tx.commit();
}

std::vector<SlurmJobRow> slurm_jobs_of_sweep(Store& store, std::int64_t sweep_id) {
  SQLite::Statement q(connection(store),
                      "SELECT job_id, kind, array_size, script_path, submitted_at FROM slurm_jobs WHERE sweep_id = ? "
                      "ORDER BY job_id");
  q.bind(1, sweep_id);
  std::vector<SlurmJobRow> out;
  while (q.executeStep())
    out.push_back({q.getColumn(0).getInt64(), q.getColumn(1).getString(), q.getColumn(2).getInt(),
                   q.getColumn(3).getString(), q.getColumn(4).getString()});
  return out;
}

std::map<std::int64_t, SlurmElement> latest_slurm_elements(Store& store, std::int64_t sweep_id) {
  SQLite::Statement q(connection(store),
                      "SELECT t.run_id, t.job_id, t.array_index FROM slurm_tasks t "
                      "JOIN runs r ON r.id = t.run_id WHERE r.sweep_id = ? ORDER BY t.job_id");
  q.bind(1, sweep_id);
  std::map<std::int64_t, SlurmElement> out;
  // Ordered by job id, so the newest submission of a run is written last.
  while (q.executeStep()) out[q.getColumn(0).getInt64()] = {q.getColumn(1).getInt64(), q.getColumn(2).getInt()};
  return out;
}

}  // namespace reglab::store
