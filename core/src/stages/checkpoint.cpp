#include "stages/checkpoint.h"

#include "sweep/stage.h"
#include "util/hash.h"
#include "util/util.h"

namespace reglab::stages {

namespace fs = std::filesystem;

fs::path stage_checkpoint_path(const fs::path& results_dir, const std::string& key) {
  return results_dir / "runs" / sweep::kStagesSweep / key / "checkpoint.pt";
}

StageCheck check_stage(store::Store& store, const std::string& key, const fs::path& results_dir) {
  StageCheck c;
  const auto sweep = store.find_sweep(sweep::kStagesSweep);
  std::optional<store::RunRow> run;
  if (sweep)
    for (auto& r : store.list_runs(sweep->id))
      if (r.key == key) run = r;
  if (!run) {
    c.problem = "stage " + key + " has not been produced yet";
    return c;
  }
  c.run_id = run->id;
  if (run->status != store::RunStatus::kCompleted) {
    c.problem = "stage " + key + " is " + store::to_string(run->status) +
                (run->error.empty() ? "" : ": " + run->error.substr(0, run->error.find('\n')));
    return c;
  }
  std::string recorded;
  for (const auto& a : store.artifacts(run->id))
    if (a.kind == "checkpoint") recorded = a.checksum;  // in order: the last one is the final model
  const fs::path file = stage_checkpoint_path(results_dir, key);
  if (recorded.empty()) {
    c.problem = "stage " + key + " recorded no checkpoint";
  } else if (!fs::is_regular_file(file)) {
    c.problem = "the checkpoint of stage " + key + " is missing (" + file.string() + ")";
  } else {
    std::string actual;
    try {
      actual = util::hash_file_hex(file);
    } catch (const std::exception& e) {
      actual = "";
    }
    if (actual != recorded)
      c.problem = "the checkpoint of stage " + key + " (" + file.string() + ") does not match its recorded checksum " +
                  recorded + " (corrupt or replaced)";
    else
      c.checkpoint = file;
  }
  return c;
}

}  // namespace reglab::stages
