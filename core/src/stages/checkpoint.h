// stages/checkpoint.h — finding and checking the checkpoint a stage produced.
//
// A stage (sweep/stage.h) runs as the run with its key in the reserved sweep
// `_stages`; its final model is <results>/runs/_stages/<key>/checkpoint.pt,
// and the store records that file's checksum each time it is written. A
// checkpoint is used only when the run completed and the file on disk still
// has the recorded checksum: a missing or corrupt file is reported (and the
// runner rebuilds the stage), never silently used. No torch.
#pragma once

#include <filesystem>
#include <optional>
#include <string>

#include "store/store.h"

namespace reglab::stages {

std::filesystem::path stage_checkpoint_path(const std::filesystem::path& results_dir, const std::string& key);

struct StageCheck {
  std::optional<std::int64_t> run_id;  // the stage's run in `_stages`, when there is one
  std::filesystem::path checkpoint;    // set when usable
  std::string problem;                 // why it is not usable ("" when it is)
  bool usable() const { return problem.empty(); }
};

StageCheck check_stage(store::Store& store, const std::string& key, const std::filesystem::path& results_dir);

}  // namespace reglab::stages
