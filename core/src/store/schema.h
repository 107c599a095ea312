// store/schema.h — the versioned schema of the results database.
//
// The schema version lives in meta(key='schema_version'). A database is
// brought up to date by applying, in order, every migration whose version is
// greater than the stored one; each step runs inside one IMMEDIATE
// transaction together with the version bump, so a crash leaves the database
// at a whole version and two processes opening the same file at once never
// apply a step twice (the second one re-reads the version under the write
// lock and finds nothing to do). A database newer than this build is refused
// rather than guessed at. Private to the store module; tests use it to check
// the mechanism with extra, made-up steps.
#pragma once

#include <filesystem>
#include <functional>
#include <string>
#include <vector>

namespace SQLite { class Database; }

namespace reglab::store {

struct Migration {
  int version;               // the schema version after this step
  std::string description;   // one line, shown in errors
  std::function<void(SQLite::Database&)> apply;
};

// The migrations of this build, in order; the last one's version is
// kSchemaVersion. Version 1 creates the results tables, version 2 the Slurm
// executor's job records, version 3 the records' identities (code identity,
// superseded runs, the store's id, XXH3-128 keys and checksums), version 4
// the metric directions (back-filled for the core's metric keys of existing
// runs).
const std::vector<Migration>& migrations();

// A new random store id (32 hex digits): what a store's run folders are
// marked with (meta.store_id, store/run_folder.h).
std::string new_store_id();

// The stored schema version: 0 for an empty file or one without meta.
int read_schema_version(SQLite::Database& db);

// Applies the steps of `steps` newer than the stored version, in order.
// Throws std::runtime_error naming `path` when the database is newer than the
// last step or a step fails (that step is rolled back).
void migrate(SQLite::Database& db, const std::vector<Migration>& steps,
             const std::filesystem::path& path);

}  // namespace reglab::store
