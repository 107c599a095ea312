// store/run_folder.h — which store and run a run folder belongs to. No torch.
//
// A run's folder (<results>/runs/<sweep>/<key>/: its log, checkpoint and
// lease) holds an owner file, owner.json, naming the store (meta.store_id)
// and the run that wrote it. A folder is resumed from or appended to only by
// its owner: a second database beside the first, or a database started afresh
// next to old run folders, finds folders that are not its own and moves them
// aside instead of resuming another store's checkpoint (runner/scheduler).
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>

namespace reglab::store {

inline constexpr const char* kOwnerFile = "owner.json";

struct FolderOwner {
  std::string store_id;
  std::int64_t run_id = 0;
  std::string key;
  bool operator==(const FolderOwner& o) const {
    return store_id == o.store_id && run_id == o.run_id && key == o.key;
  }
};

// The owner file of `dir`; nullopt when it has none or it does not parse.
std::optional<FolderOwner> read_run_folder_owner(const std::filesystem::path& dir);

// Writes (atomically: temp file and rename) the owner file of `dir`, which
// must exist. Throws std::runtime_error naming the file on failure.
void write_run_folder_owner(const std::filesystem::path& dir, const FolderOwner& owner);

}  // namespace reglab::store
