// runner/run_folder.h — making a run folder this run's own before using it.
//
// The folder of a run (<results>/runs/<sweep>/<key>) is resumed from and
// appended to only by the store and run named in its owner file
// (store/run_folder.h). Anything else found at that path — another store's
// folder (a second database beside the first), a folder with no owner file
// (left behind by a database that was deleted, or from before schema 3 and
// unknown to the migration), an older attempt of the same trial — is moved
// aside to <key>.aside-<n> with a message, and a fresh folder is made. A
// folder whose lease another process holds is never moved: the run is
// refused instead. No torch.
#pragma once

#include <filesystem>
#include <string>

#include "store/run_folder.h"

namespace reglab::runner {

struct FolderClaim {
  bool usable = false;      // the folder is the run's own now
  std::string moved_aside;  // what was moved where ("" when nothing was)
  std::string refused;      // why it cannot be used (when !usable)
};

// Creates `dir` with `owner`'s owner file, or keeps it when it is already
// owner's; otherwise moves it aside first (see above).
FolderClaim claim_run_folder(const std::filesystem::path& dir, const store::FolderOwner& owner);

// Moves `dir` aside to the first free <dir>.aside-<n>; the new path.
std::filesystem::path move_aside(const std::filesystem::path& dir);

}  // namespace reglab::runner
