// cluster/manifest.h — the trials of one Slurm submission, one JSON object per
// line: element i of the array runs line i+1. A file rather than the results
// database because the elements run on other nodes, where the database may
// sit on a network file system that SQLite's locking cannot be trusted on.
// No torch.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "config/config.h"

namespace reglab::cluster {

struct ManifestEntry {
  std::string sweep;
  std::string description;
  std::string key;
  std::string label;
  std::string method;
  config::Json config;  // the resolved trial configuration
};

// Writes the manifest atomically (a temporary file renamed into place).
void write_manifest(const std::filesystem::path& path, const std::vector<ManifestEntry>& entries);
// Line index+1 of the manifest. Throws std::runtime_error naming the file and
// the index when the file is unreadable, too short, or the line is not a
// manifest entry.
ManifestEntry read_manifest_entry(const std::filesystem::path& path, int index);

}  // namespace reglab::cluster
