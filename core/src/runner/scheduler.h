// runner/scheduler.h — runs a sweep's trials as child processes.
//
// For each trial the store holds one run, keyed by (sweep, trial key). A run
// already completed is skipped; failed runs are skipped unless retry_failed;
// pending, interrupted and stale runs (left 'running' by a coordinator that
// died: their lease is free, runner/lease.h) are run; runs whose lease another
// process holds are left to it (counted in skipped_running, not finished).
// Completed runs of other code are run again by `rerun`. Each trial runs in its own worker process (runner/trial.h),
// `jobs` at once, each with an equal share of the intra-op threads. A worker
// that crashes, is killed, or runs past `trial_timeout_s` is recorded as
// failed with the reason and the tail of its log; the sweep goes on.
//
// Ctrl-C (SIGINT) stops dispatch and asks running workers to stop; they
// record what they have and mark their runs interrupted. A second Ctrl-C
// kills them. Workers die with the coordinator (PR_SET_PDEATHSIG), so a
// `kill -9` of the coordinator leaves stale runs that the next run recovers.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>

#include "sweep/sweep.h"

namespace reglab::runner {

// What `reglab run` does with a completed trial whose code identity (the
// method plugin's version and library digest, store::CodeIdentity) is not the
// code it would run with now: kChanged (the default) runs such trials again
// as new attempts, kAll runs every completed trial again, kNone keeps them.
// Old attempts are kept as 'superseded'. Runs recorded before reglab kept
// code identities count as unchanged (only kAll re-runs them).
enum class RerunPolicy { kChanged, kAll, kNone };
const char* to_string(RerunPolicy policy);

struct SchedulerOptions {
  std::filesystem::path db = "results/reglab.db";
  // Workers are forks of this process (fast: LibTorch, plugins and data are
  // already loaded). With exec_workers each worker execs `worker_exe _trial`
  // (default: this binary) instead.
  bool exec_workers = false;
  std::filesystem::path worker_exe;
  int jobs = 1;
  int threads_total = 0;              // 0 = hardware concurrency
  bool retry_failed = false;
  RerunPolicy rerun = RerunPolicy::kChanged;
  double trial_timeout_s = 0;         // 0 = none
  bool live_display = false;          // redraw a status block (terminal) or print log lines
};

struct SchedulerResult {
  int total = 0;
  int skipped_completed = 0;
  int skipped_failed = 0;
  int skipped_running = 0;  // its lease is held by another reglab process: not finished here
  int completed = 0;
  int failed = 0;
  int interrupted = 0;
  int recovered_stale = 0;
  bool stopped_by_user = false;
};

SchedulerResult run_sweep(const sweep::Sweep& sweep, const SchedulerOptions& options);

}  // namespace reglab::runner
