// sweep/stage.h — stages: a trial that starts from another configuration's
// final model.
//
// `init.from = "stages/source.toml"` (relative to the file that says it) names
// a training configuration — one trial, no [sweep] table — whose final
// checkpoint the trial starts from: the source model of test-time adaptation,
// a warm start for fine-tuning. The stage is validated like any trial (its
// errors name its own file and line), keyed by the hash of its resolved
// configuration, and written into the trial as `init.stage` so the trial's
// key changes whenever the stage's configuration does. The runner produces
// each stage once, in the reserved sweep `_stages`, and every trial — of any
// sweep, after any restart — that needs the same key reuses it. No torch.
#pragma once

#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "config/config.h"
#include "config/schema.h"

namespace reglab::sweep {

// The sweep that holds every stage run, keyed by stage key.
inline constexpr const char* kStagesSweep = "_stages";

struct Stage {
  std::string key;                // hash of the resolved configuration
  config::Json config;            // resolved and validated, defaults filled
  std::filesystem::path file;     // where it was defined
};

// Resolves the stages that trials name, each file once.
class StageResolver {
 public:
  StageResolver(const config::MethodLookup& lookup, const config::MethodNames& names) : lookup_(lookup), names_(names) {}

  // For a validated trial whose init.from is set: loads the stage (relative to
  // `sweep_file`'s folder), validates it, checks that it can seed the trial
  // (same model), and sets trial["init"]["stage"] to its key. Problems go to
  // `issues`, located at `init.from` in `where` or in the stage's file.
  // Returns the stage's key, or "" when the trial has no stage or on error.
  std::string attach(config::Json& trial, const config::SourceMap& where, const std::filesystem::path& sweep_file,
                     std::vector<config::Issue>& issues);

  // The stages attached so far, in the order first seen.
  std::vector<Stage> stages() const;

 private:
  const config::MethodLookup& lookup_;
  const config::MethodNames& names_;
  std::map<std::string, Stage> by_file_;        // absolute file -> stage
  std::map<std::string, std::string> errors_;   // absolute file -> first error, reported once
  std::vector<std::string> order_;              // absolute files in order first seen
};

}  // namespace reglab::sweep
