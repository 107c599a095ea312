#include "runner/run_folder.h"

#include <system_error>

#include "runner/lease.h"

namespace reglab::runner {

namespace fs = std::filesystem;

fs::path move_aside(const fs::path& dir) {
  for (int n = 1;; ++n) {
    fs::path target = dir;
    target += ".aside-" + std::to_string(n);
    std::error_code ec;
    if (fs::exists(target, ec)) continue;
    fs::rename(dir, target);  // throws naming both paths
    return target;
  }
}

FolderClaim claim_run_folder(const fs::path& dir, const store::FolderOwner& owner) {
  FolderClaim c;
  std::error_code ec;
  if (fs::exists(dir, ec)) {
    const std::optional<store::FolderOwner> found = store::read_run_folder_owner(dir);
    if (found && *found == owner) {
      c.usable = true;
      return c;
    }
    const bool empty = fs::is_directory(dir, ec) && fs::is_empty(dir, ec);
    if (!empty) {
      if (lease_held(dir)) {
        c.refused = "run folder " + dir.string() + " belongs to " +
                    (found ? "store " + found->store_id.substr(0, 12) + " run " + std::to_string(found->run_id)
                           : std::string("no store")) +
                    " and a process holds its lease; not touching it";
        return c;
      }
      const fs::path aside = move_aside(dir);
      c.moved_aside = "run folder " + dir.string() + " " +
                      (found ? (found->store_id == owner.store_id
                                    ? "belongs to run " + std::to_string(found->run_id) + " of this store"
                                    : "belongs to another store (" + found->store_id.substr(0, 12) + ", run " +
                                          std::to_string(found->run_id) + ")")
                             : std::string("has no owner file (left by another database or an older reglab)")) +
                      "; moved it aside to " + aside.string() + " and started afresh";
    }
  }
  fs::create_directories(dir);
  store::write_run_folder_owner(dir, owner);
  c.usable = true;
  return c;
}

}  // namespace reglab::runner
