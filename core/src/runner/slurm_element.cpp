#include "runner/slurm_element.h"

#include <unistd.h>

#include <cstdlib>
#include <iostream>

#include "cluster/manifest.h"
#include "runner/trial.h"
#include "store/store.h"
#include "util/util.h"

namespace reglab::runner {

namespace fs = std::filesystem;

int run_slurm_element(const SlurmElementOptions& o) {
  cluster::ManifestEntry entry;
  try {
    entry = cluster::read_manifest_entry(o.manifest, o.index);
  } catch (const std::exception& e) {
    std::cerr << "reglab: " << e.what() << "\n";
    return 1;
  }
  const fs::path shard = o.shard_dir / (entry.key + ".db");
  std::int64_t run_id = 0;
  {
    store::Store store(shard, store::Journal::kRollback);
    const std::int64_t sweep_id = store.upsert_sweep(entry.sweep, entry.description, "");
    run_id = store.ensure_run(sweep_id, entry.key, entry.label, entry.config.dump(), entry.method);
    const auto run = store.get_run(run_id);
    if (run->status == store::RunStatus::kCompleted) {
      std::cout << "reglab: trial " << entry.key << " is already complete in " << shard.string() << "\n";
      return 0;
    }
    const fs::path log = o.results_dir / "runs" / entry.sweep / entry.key / "trial.log";
    fs::create_directories(log.parent_path());
    std::string job = "local";
    if (const char* id = std::getenv("SLURM_ARRAY_JOB_ID")) job = std::string(id) + "_" + std::to_string(o.index);
#ifdef REGLAB_SOURCE_DIR
    const std::string git_rev = util::git_revision(REGLAB_SOURCE_DIR);
#else
    const std::string git_rev = "unknown";
#endif
    store.mark_running(run_id, getpid(), util::hostname(), git_rev, log.string());
    std::cout << "reglab: Slurm element " << job << " runs trial " << entry.key << " (" << entry.label << ") into "
              << shard.string() << std::endl;
  }
  TrialProcessOptions t;
  t.db = shard;
  t.run_id = run_id;
  t.threads = o.threads;
  t.results_dir = o.results_dir;
  t.journal = store::Journal::kRollback;
  return run_trial_process(t);
}

}  // namespace reglab::runner
