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

enum class RunStatus { kPending, kRunning, kCompleted, kFailed, kInterrupted };
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
  std::string host;
  std::string git_rev;
  std::int64_t pid = 0;      // worker pid while running
  int attempts = 0;
  std::string created_at, started_at, finished_at, heartbeat_at;
  double duration_s = 0;
  std::string error;
  std::string log_path;
};

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

class Store {
 public:
  // Opens or creates the database (and its parent folder), sets the journal
  // mode, busy_timeout (30 s) and foreign keys, creates/migrates the schema.
  // Throws std::runtime_error naming the path when the file cannot be opened,
  // is not an SQLite database, or has a schema newer than this build.
  explicit Store(const std::filesystem::path& path, Journal journal = Journal::kWal);
  ~Store();
  Store(const Store&) = delete;
  Store& operator=(const Store&) = delete;

  const std::filesystem::path& path() const { return path_; }

  // Sweeps: upsert by name (description and toml updated).
  std::int64_t upsert_sweep(const std::string& name, const std::string& description,
                            const std::string& toml);
  std::optional<SweepRow> find_sweep(const std::string& name);
  std::vector<SweepRow> list_sweeps();

  // Runs. ensure_run inserts a pending run for (sweep, key) unless one exists,
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
  void set_method_version(std::int64_t run_id, const std::string& version);
  void heartbeat(std::int64_t run_id);
  void mark_finished(std::int64_t run_id, RunStatus status, const std::string& error);
  // Back to 'pending' so that the run is produced again (a stage whose
  // checkpoint was found missing or corrupt); `why` becomes its error text
  // until it runs. Its metrics stay (a re-run replaces them step by step).
  void reset_run(std::int64_t run_id, const std::string& why);
  // Runs of this sweep left 'running' by a coordinator that is gone: on this
  // host whose pid is not alive, on other hosts whose heartbeat is older than
  // `stale_after_s` (or that never sent one). They become 'interrupted' with
  // an error saying why. Returns how many.
  int recover_stale_runs(std::int64_t sweep_id, const std::string& host, double stale_after_s);

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

  SQLite::Database& db() { return *db_; }

 private:
  void open_connection(Journal journal);  // one attempt at opening, setting up and migrating
  void write_summaries_locked(std::int64_t run_id);  // inside the caller's transaction
  // One UPDATE of one run (sql binds the text value, then the run id), in its
  // own transaction; std::runtime_error naming `what` for an unknown run.
  void set_run_text(std::int64_t run_id, const char* what, const char* sql, const std::string& value);

  std::filesystem::path path_;
  std::unique_ptr<SQLite::Database> db_;
  // Declared after db_ so that it is finalised before the connection closes.
  std::unique_ptr<SQLite::Statement> insert_metric_;
};

}  // namespace reglab::store
