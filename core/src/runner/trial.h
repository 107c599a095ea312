// runner/trial.h — one trial, run inside its own worker process.
//
// The coordinator starts `reglab _trial --db DB --run ID --threads T` for each
// trial. The worker reads the run's resolved configuration from the store,
// logs to the run's log file, runs the paradigm and records the outcome:
// completed (with summaries), failed (error and log tail) or interrupted
// (SIGINT/SIGTERM; the last checkpoint lets a later run resume). Progress goes
// to stdout as lines "@reglab {json}" for the coordinator's display.
// Exit codes: 0 completed, 1 failed, 130 interrupted, 75 lease held elsewhere.
// The run folder is claimed for this store and run (runner/run_folder.h) and
// the run's lease held for the worker's whole life (runner/lease.h).
#pragma once

#include <cstdint>
#include <filesystem>

#include "store/store.h"

namespace reglab::runner {

inline constexpr int kExitInterrupted = 130;
inline constexpr const char* kProgressPrefix = "@reglab ";

struct TrialProcessOptions {
  std::filesystem::path db;
  std::int64_t run_id = 0;
  int threads = 1;
  double spawned_at = 0;  // wall-clock seconds when the coordinator forked (0 = unknown)
  // Where run folders live (<results_dir>/runs/<sweep>/<key>); empty: next to
  // `db`. A Slurm element writes its shard elsewhere but its files here.
  std::filesystem::path results_dir;
  store::Journal journal = store::Journal::kWal;  // a shard keeps its rollback journal
  // A descriptor that already holds the run's lease (runner/lease.h),
  // inherited from the coordinator; -1: the worker takes the lease itself and
  // exits with kExitLeaseHeld, touching nothing, when another process has it.
  int lease_fd = -1;
};

// The worker found the run's lease held by another process.
inline constexpr int kExitLeaseHeld = 75;

// XXH3-128 of the running reglab binary (/proc/self/exe), computed once per
// process: recorded with every run beside the method's digest.
const std::string& reglab_binary_digest();

int run_trial_process(const TrialProcessOptions& options);

// The folder of a run's files: <db folder>/runs/<sweep>/<key>/.
std::filesystem::path run_directory(const std::filesystem::path& db, const std::string& sweep,
                                    const std::string& key);

}  // namespace reglab::runner
