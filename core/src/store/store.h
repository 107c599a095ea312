// store/store.h — the SQLite results store.
//
// One database file (results/reglab.db by default) in WAL mode with a busy
// timeout, so the coordinator and its trial processes can write at once.
// Each Store object owns one connection and is not thread-safe; open one per
// process (or per thread). The schema is versioned (meta.schema_version) and
// migrated forward on open. See results/README.md for the schema. No torch.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "reglab/metric_direction.h"

namespace SQLite {
class Database;
class Statement;
}  // namespace SQLite

namespace reglab::store {

inline constexpr int kSchemaVersion = 4;  // 4: metric_directions (schema.cpp)
// How long a writer waits for another process's transaction before failing.
inline constexpr int kBusyTimeoutMs = 30000;

// kSuperseded: an attempt whose trial was run again with other code (reglab
// run --rerun); kept, with its metrics, for queries, never resumed or compared.
enum class RunStatus { kPending, kRunning, kCompleted, kFailed, kInterrupted, kSuperseded };
const char* to_string(RunStatus s);
RunStatus run_status_from_string(const std::string& s);  // throws on unknown

struct SweepRow {
  std::int64_t id = 0;
  std::string name;
  std::string description;
  std::string toml;
  std::string created_at;  // ISO-8601 UTC
};

struct RunRow {
  std::int64_t id = 0;
  std::int64_t sweep_id = 0;
  std::string sweep_name;
  std::string key;
  std::string label;
  RunStatus status = RunStatus::kPending;
  std::string config_json;   // canonical resolved config
  std::string method_name;
  std::string method_version;
  // The code identity of the attempt: XXH3-128 of the method plugin's library
  // file and of the reglab binary that ran it ("" for runs recorded before
  // schema 3, or not yet started).
  std::string method_digest;
  std::string reglab_digest;
  std::string host;
  std::string git_rev;
  std::int64_t pid = 0;      // worker pid while running
  int attempts = 0;
  std::string created_at, started_at, finished_at, heartbeat_at;
  double duration_s = 0;
  std::string error;
  std::string log_path;
  std::int64_t superseded_by = 0;  // the attempt that replaced this one (0: none)
};

// What ran a trial: the method plugin's name, version and library digest.
// Runs are compared, and trials re-run, by this identity (reglab's own binary
// digest is recorded beside it but not part of it: rebuilding the core for a
// change elsewhere must not invalidate every result).
struct CodeIdentity {
  std::string method_name, method_version, method_digest;
  bool known() const { return !method_digest.empty(); }
  bool operator==(const CodeIdentity& o) const {
    return method_name == o.method_name && method_version == o.method_version && method_digest == o.method_digest;
  }
  bool operator!=(const CodeIdentity& o) const { return !(*this == o); }
  // "ce 1.0 (library 0123456789ab)" or "ce (code identity not recorded)".
  std::string describe() const;
};
CodeIdentity code_identity_of(const RunRow& run);

struct MetricPoint {
  std::string key;   // "test.acc"
  std::int64_t step; // epoch (or global step)
  double value;
};

// Which way a metric of one run is better, as its recorder declared it.
struct MetricDeclaration {
  std::string key;  // "test.acc"
  MetricDirection direction;
};

// A run to add with Store::ensure_runs.
struct NewRun {
  std::string key;
  std::string label;
  std::string config_json;
  std::string method_name;
};

struct ArtifactRow {
  std::int64_t run_id = 0;
  std::string kind;  // "checkpoint", "log", ...
  std::string path;
  std::string checksum;
  // Set by the store and ignored by add_artifact; "= {}" lets callers omit
  // it in aggregate initialisation without -Wmissing-field-initializers.
  std::string created_at = {};
};

// One row of the params table: a dotted config key of a run.
struct ParamRow {
  std::string key;    // "optim.lr"
  std::string value;  // text ("0.1", "elr", "true", "[1,2]")
  std::optional<double> numeric;  // set when the config value is a number
};

// How the database journals its transactions. WAL lets many processes on one
// host read and write at once, but its shared-memory index is unsafe on
// network file systems (NFS, Lustre); a trial shard written by one process on
// a cluster node uses the rollback journal instead.
enum class Journal { kWal, kRollback };

// Asks Store's constructor for a read-only connection (ls, show, compare,
// plot, report, serve, status): SQLITE_OPEN_READONLY, no journal-mode change,
// no migration, so an archived copy (mode 0444, a read-only folder or mount)
// can be queried and its bytes are never changed. Writes through such a Store
// throw. The file must exist. A database whose schema is older than this
// build is first migrated by a writable open when this process may write the
// file and its folder (the queries are written for the current schema only);
// one that cannot be written is refused with a message saying so.
// How the file is opened (see open_connection):
//  - a rollback-journal database, or a WAL database whose -wal file exists
//    (a writer is or was active): `mode=ro`, which sees the writers' commits;
//  - a WAL database without a -wal file: `immutable=1` when `live` is false
//    (nothing is created beside it, which a read-only folder needs), else
//    `mode=ro`, falling back to `immutable=1` when SQLite cannot create the
//    -shm file. `live` (serve) keeps seeing a sweep that starts later, at
//    the cost of the -wal/-shm files a WAL reader creates in a writable folder.
struct ReadOnly {
  bool live = false;
};

class Store {
 public:
  // Opens or creates the database (and its parent folder), sets the journal
  // mode, busy_timeout (30 s) and foreign keys, creates/migrates the schema.
  // Throws std::runtime_error naming the path when the file cannot be opened,
  // is not an SQLite database, or has a schema newer than this build.
  explicit Store(const std::filesystem::path& path, Journal journal = Journal::kWal);
  // Opens an existing database read-only (see ReadOnly); std::runtime_error
  // naming the path when it is missing, unreadable, not a database, or has a
  // schema older or newer than this build.
  Store(const std::filesystem::path& path, ReadOnly read_only);
  ~Store();
  Store(const Store&) = delete;
  Store& operator=(const Store&) = delete;

  const std::filesystem::path& path() const { return path_; }
  // meta.store_id: the random id that marks this store's run folders.
  const std::string& store_id() const { return store_id_; }

  // Sweeps: upsert by name (description and toml updated).
  std::int64_t upsert_sweep(const std::string& name, const std::string& description,
                            const std::string& toml);
  std::optional<SweepRow> find_sweep(const std::string& name);
  std::vector<SweepRow> list_sweeps();

  // Runs. ensure_run inserts a pending run for (sweep, key) unless a run
  // that is not superseded exists,
  // and stores its config and flattened params; returns the run id either way.
  // An existing run is left exactly as it is (status, config, label), so a
  // re-run sweep never disturbs completed work. Throws std::invalid_argument
  // naming the key when config_json is not a JSON object.
  std::int64_t ensure_run(std::int64_t sweep_id, const std::string& key, const std::string& label,
                          const std::string& config_json, const std::string& method_name);
  // ensure_run for many runs in one transaction (one commit for a whole
  // sweep); the run ids in the order given.
  std::vector<std::int64_t> ensure_runs(std::int64_t sweep_id, const std::vector<NewRun>& runs);
  std::optional<RunRow> get_run(std::int64_t run_id);
  // By id, or by a unique prefix of the key (>= 4 characters). nullopt when
  // nothing matches; std::runtime_error listing the candidates when a prefix
  // matches several runs.
  std::optional<RunRow> find_run(const std::string& id_or_key_prefix);
  std::vector<RunRow> list_runs(std::optional<std::int64_t> sweep_id = std::nullopt);
  // The flattened config of a run, sorted by key.
  std::vector<ParamRow> params(std::int64_t run_id);

  // Status transitions, each one transaction; std::runtime_error for an
  // unknown run id. mark_running counts an attempt, clears the previous
  // error and finish time. mark_finished takes a terminal status (completed,
  // failed, interrupted; std::invalid_argument otherwise), sets duration_s
  // from started_at and writes the summaries of the metrics logged so far.
  void mark_running(std::int64_t run_id, std::int64_t pid, const std::string& host,
                    const std::string& git_rev, const std::string& log_path);
  // Atomically takes a run that is neither running nor completed (so two
  // coordinators on one sweep never run a trial twice): same effect as
  // mark_running; false when another process got there first.
  bool claim_run(std::int64_t run_id, std::int64_t pid, const std::string& host, const std::string& git_rev,
                 const std::string& log_path);
  void set_run_pid(std::int64_t run_id, std::int64_t pid);
  // Records what ran the attempt (the worker, once the plugin is loaded).
  void set_code_identity(std::int64_t run_id, const std::string& method_version, const std::string& method_digest,
                         const std::string& reglab_digest);
  // Keeps a run that is not running as 'superseded' (metrics, summaries and
  // artifacts stay queryable) and adds a fresh pending run of the same trial
  // (sweep, key, label, config, params) in one transaction; `why` becomes the
  // old run's error text. Returns the new run's id. std::runtime_error for an
  // unknown, running or already superseded run.
  std::int64_t supersede_run(std::int64_t run_id, const std::string& why);
  // Rewrites where a run's files are (after the runner moved its folder):
  // its log path and artifact paths that start with `from` start with `to`.
  void move_run_files(std::int64_t run_id, const std::string& from, const std::string& to);
  void heartbeat(std::int64_t run_id);
  void mark_finished(std::int64_t run_id, RunStatus status, const std::string& error);
  // Back to 'pending' so that the run is produced again (a stage whose
  // checkpoint was found missing or corrupt); `why` becomes its error text
  // until it runs. Its metrics stay (a re-run replaces them step by step).
  void reset_run(std::int64_t run_id, const std::string& why);
  // A run whose worker is known to be gone (the runner found its lease free)
  // becomes 'interrupted' with `why`, if it is still 'running'; whether it
  // changed. The store never decides whether a process is alive.
  bool mark_interrupted_if_running(std::int64_t run_id, const std::string& why);

  // Metrics: batched inserts in one transaction; (run, key, step) is unique,
  // a repeated point replaces the old value (a resumed run re-logging an
  // epoch never duplicates it). NaN values are stored as NULL and read back
  // as NaN.
  void add_metrics(std::int64_t run_id, const std::vector<MetricPoint>& points);
  std::vector<MetricPoint> metrics(std::int64_t run_id, const std::string& key_like = "%");
  // Metric directions (table metric_directions): one per (run, key), the
  // latest declaration wins; std::runtime_error for an unknown run. A key
  // without a declaration has no direction and is never ranked.
  void declare_metrics(std::int64_t run_id, const std::vector<MetricDeclaration>& declarations);
  std::vector<MetricDeclaration> metric_directions(std::int64_t run_id);
  // The distinct directions the given runs declared for `key` (undeclared
  // runs add nothing): empty, one direction, or several when they disagree.
  std::vector<MetricDirection> declared_directions(const std::string& key, const std::vector<std::int64_t>& run_ids);
  // Summaries: final value per key ("final") and, for keys declared higher or
  // lower is better, "best" (the max or the min), written when a run
  // finishes; replaces earlier summaries of the run. NaN points are ignored
  // for "best". kind is "final" or "best" (std::invalid_argument otherwise).
  void write_summaries(std::int64_t run_id);
  std::optional<double> summary(std::int64_t run_id, const std::string& key, const std::string& kind);

  void add_artifact(const ArtifactRow& a);
  std::vector<ArtifactRow> artifacts(std::int64_t run_id);

  // One door: modules outside store/ read and write through typed functions
  // (this class, dashboard_queries.h, sweep_results.h, metric_series.h,
  // slurm_records.h, shard_merge.h), so all SQL lives in store/. There is no
  // public accessor of the connection: the store's own files reach it
  // through store/connection.h, tests and benchmarks through store/testing.h.

 private:
  friend SQLite::Database& connection(Store& store);
  friend SQLite::Database& raw_connection_for_tests(Store& store);

  void open_connection(Journal journal);  // one attempt at opening, setting up and migrating
  void open_read_only_connection(ReadOnly read_only);  // the read-only open, once
  void open_read_only(bool immutable);    // one attempt at a read-only connection; checks the version
  void write_summaries_locked(std::int64_t run_id);  // inside the caller's transaction
  // One UPDATE of one run (sql binds the text value, then the run id), in its
  // own transaction; std::runtime_error naming `what` for an unknown run.
  void set_run_text(std::int64_t run_id, const char* what, const char* sql, const std::string& value);

  std::filesystem::path path_;
  std::string store_id_;
  std::unique_ptr<SQLite::Database> db_;
  // Declared after db_ so that it is finalised before the connection closes.
  std::unique_ptr<SQLite::Statement> insert_metric_;
};

}  // namespace reglab::store
