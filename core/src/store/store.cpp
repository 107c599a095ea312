// store/store.cpp — the SQLite results store.
//
// Every write is one IMMEDIATE transaction: the write lock is taken at BEGIN,
// so a busy database makes us wait (busy_timeout) instead of failing later
// when a read transaction tries to upgrade (SQLITE_BUSY_SNAPSHOT, which the
// busy handler cannot resolve).
#include "store/store.h"

#include <SQLiteCpp/SQLiteCpp.h>
#include <sqlite3.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <thread>
#include <cmath>
#include <fstream>
#include <csignal>
#include <limits>
#include <map>
#include <stdexcept>
#include <system_error>

#include <unistd.h>

#include "store/connection.h"
#include "store/flatten.h"
#include "store/schema.h"
#include "store/testing.h"
#include "util/util.h"

namespace reglab::store {
namespace {

constexpr const char* kRunColumns =
    "r.id, r.sweep_id, s.name, r.key, r.label, r.status, r.config_json, r.method_name, "
    "r.method_version, r.host, r.git_rev, r.pid, r.attempts, r.created_at, r.started_at, "
    "r.finished_at, r.heartbeat_at, r.duration_s, r.error, r.log_path, r.method_digest, r.reglab_digest, "
    "coalesce(r.superseded_by, 0) "
    "FROM runs r JOIN sweeps s ON s.id = r.sweep_id";

RunRow read_run(SQLite::Statement& q) {
  RunRow r;
  r.id = q.getColumn(0).getInt64();
  r.sweep_id = q.getColumn(1).getInt64();
  r.sweep_name = q.getColumn(2).getString();
  r.key = q.getColumn(3).getString();
  r.label = q.getColumn(4).getString();
  r.status = run_status_from_string(q.getColumn(5).getString());
  r.config_json = q.getColumn(6).getString();
  r.method_name = q.getColumn(7).getString();
  r.method_version = q.getColumn(8).getString();
  r.host = q.getColumn(9).getString();
  r.git_rev = q.getColumn(10).getString();
  r.pid = q.getColumn(11).getInt64();
  r.attempts = q.getColumn(12).getInt();
  r.created_at = q.getColumn(13).getString();
  r.started_at = q.getColumn(14).getString();
  r.finished_at = q.getColumn(15).getString();
  r.heartbeat_at = q.getColumn(16).getString();
  r.duration_s = q.getColumn(17).getDouble();
  r.error = q.getColumn(18).getString();
  r.log_path = q.getColumn(19).getString();
  r.method_digest = q.getColumn(20).getString();
  r.reglab_digest = q.getColumn(21).getString();
  r.superseded_by = q.getColumn(22).getInt64();
  return r;
}

SweepRow read_sweep(SQLite::Statement& q) {
  SweepRow s;
  s.id = q.getColumn(0).getInt64();
  s.name = q.getColumn(1).getString();
  s.description = q.getColumn(2).getString();
  s.toml = q.getColumn(3).getString();
  s.created_at = q.getColumn(4).getString();
  return s;
}

// NULL (how SQLite stores NaN) reads back as NaN.
double read_real(const SQLite::Column& c) {
  return c.isNull() ? std::numeric_limits<double>::quiet_NaN() : c.getDouble();
}

void bind_real(SQLite::Statement& q, int index, double v) {
  if (std::isnan(v)) {
    q.bind(index);  // NULL
  } else {
    q.bind(index, v);
  }
}

bool is_digits(const std::string& s) {
  if (s.empty() || s.size() > 18) return false;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
  }
  return true;
}

}  // namespace

const char* to_string(RunStatus s) {
  switch (s) {
    case RunStatus::kPending: return "pending";
    case RunStatus::kRunning: return "running";
    case RunStatus::kCompleted: return "completed";
    case RunStatus::kFailed: return "failed";
    case RunStatus::kInterrupted: return "interrupted";
    case RunStatus::kSuperseded: return "superseded";
  }
  return "unknown";
}

RunStatus run_status_from_string(const std::string& s) {
  if (s == "pending") return RunStatus::kPending;
  if (s == "running") return RunStatus::kRunning;
  if (s == "completed") return RunStatus::kCompleted;
  if (s == "failed") return RunStatus::kFailed;
  if (s == "interrupted") return RunStatus::kInterrupted;
  if (s == "superseded") return RunStatus::kSuperseded;
  throw std::invalid_argument("unknown run status '" + s +
                              "' (expected pending, running, completed, failed, interrupted or superseded)");
}

std::string CodeIdentity::describe() const {
  if (!known()) return method_name + (method_version.empty() ? "" : " " + method_version) + " (code identity not recorded)";
  return method_name + " " + method_version + " (library " + method_digest.substr(0, 12) + ")";
}

CodeIdentity code_identity_of(const RunRow& run) { return {run.method_name, run.method_version, run.method_digest}; }

Store::Store(const std::filesystem::path& path, Journal journal) : path_(path) {
  try {
    if (path_.has_parent_path()) std::filesystem::create_directories(path_.parent_path());
  } catch (const std::filesystem::filesystem_error& e) {
    throw std::runtime_error("cannot create the folder of results database " + path_.string() + ": " +
                             e.what());
  }
  // Processes that open a new file together race to switch its journal mode
  // and create the schema; SQLite reports some of those collisions as
  // SQLITE_BUSY without waiting on the busy handler. Every step below is
  // idempotent (the schema steps are transactions), so the whole open is
  // retried until the busy timeout has passed.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(kBusyTimeoutMs);
  for (int attempt = 1;; ++attempt) {
    try {
      open_connection(journal);
      return;
    } catch (const SQLite::Exception& e) {
      const int code = e.getErrorCode() & 0xff;
      db_.reset();
      if ((code == SQLITE_BUSY || code == SQLITE_LOCKED) && std::chrono::steady_clock::now() < deadline) {
        std::this_thread::sleep_for(std::chrono::milliseconds(std::min(attempt, 20) * 5));
        continue;
      }
      throw std::runtime_error("cannot open results database " + path_.string() + ": " + e.what());
    }
  }
}

void Store::open_connection(Journal journal) {
  db_ = std::make_unique<SQLite::Database>(path_, SQLite::OPEN_READWRITE | SQLite::OPEN_CREATE, kBusyTimeoutMs);
  // WAL: readers never block the writer and vice versa. synchronous=NORMAL
  // is the documented safe pairing with WAL (no corruption; a power cut may
  // lose the last commits) and keeps commits free of fsync.
  if (journal == Journal::kWal) {
    db_->exec("PRAGMA journal_mode = WAL");
    db_->exec("PRAGMA synchronous = NORMAL");
  } else {
    db_->exec("PRAGMA journal_mode = DELETE");
    db_->exec("PRAGMA synchronous = FULL");
  }
  // 32 MiB of page cache (grown only as used) keeps a large metric batch's
  // B-tree pages in memory.
  db_->exec("PRAGMA cache_size = -32768");
  // Foreign keys are off while migrating: a step that rebuilds a table
  // (schema 3's runs) must not cascade its DROP into the rows that refer to
  // it; each such step checks the references itself before it commits.
  db_->exec("PRAGMA foreign_keys = OFF");
  migrate(*db_, migrations(), path_);
  db_->exec("PRAGMA foreign_keys = ON");
  SQLite::Statement id(*db_, "SELECT value FROM meta WHERE key = 'store_id'");
  store_id_ = id.executeStep() ? id.getColumn(0).getString() : "";
}

// --- read-only open (see ReadOnly in store.h) -------------------------------

namespace {

// `path` as an SQLite URI: "file:" + the absolute path, with the characters
// the URI syntax reserves (and any non-ASCII byte) percent-encoded.
std::string file_uri(const std::filesystem::path& path, const char* query) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out = "file:";
  for (unsigned char c : std::filesystem::absolute(path).lexically_normal().string()) {
    if (c == '%' || c == '?' || c == '#' || c <= 0x20 || c >= 0x7f) {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    } else {
      out += static_cast<char>(c);
    }
  }
  return out + "?" + query;
}

// The header's read and write versions (bytes 18, 19) are 2 in WAL mode.
bool has_wal_header(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  char header[20] = {};
  return in.read(header, sizeof header) && header[18] == 2 && header[19] == 2;
}

// A database whose schema is older than this build, met by a read-only open.
struct OlderSchema : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// Whether this process may write the database and create files beside it
// (the journal), i.e. whether a writable open could migrate it.
bool writable_in_place(const std::filesystem::path& path) {
  const std::filesystem::path dir = std::filesystem::absolute(path).parent_path();
  return ::access(path.c_str(), W_OK) == 0 && ::access(dir.c_str(), W_OK) == 0;
}

}  // namespace

Store::Store(const std::filesystem::path& path, ReadOnly read_only) : path_(path) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path_, ec)) throw std::runtime_error("no results database at " + path_.string());
  try {
    open_read_only_connection(read_only);
  } catch (const OlderSchema&) {
    // A database from an older reglab that this user may write: migrate it
    // once with a writable open (as `reglab run` would), keeping its journal
    // mode, then read it. An archived copy that cannot be written is refused.
    if (!writable_in_place(path_)) throw;
    db_.reset();
    { Store migrate(path_, has_wal_header(path_) ? Journal::kWal : Journal::kRollback); }
    open_read_only_connection(read_only);
  }
}

void Store::open_read_only_connection(ReadOnly read_only) {
  std::error_code ec;
  // A WAL database without its -wal file holds every commit in the file
  // itself and has no writer: immutable=1 reads it without creating the
  // -wal/-shm files (impossible in a read-only folder, litter elsewhere).
  const bool snapshot = has_wal_header(path_) && !std::filesystem::exists(path_.string() + "-wal", ec);
  try {
    try {
      open_read_only(snapshot && !read_only.live);
    } catch (const SQLite::Exception& e) {
      const int code = e.getErrorCode() & 0xff;
      if (!(snapshot && read_only.live && (code == SQLITE_CANTOPEN || code == SQLITE_READONLY))) throw;
      db_.reset();
      open_read_only(true);  // the folder is read-only: no writer can start there either
    }
  } catch (const SQLite::Exception& e) {
    db_.reset();
    throw std::runtime_error("cannot open results database " + path_.string() + " read-only: " + e.what());
  }
}

void Store::open_read_only(bool immutable) {
  db_ = std::make_unique<SQLite::Database>(file_uri(path_, immutable ? "immutable=1" : "mode=ro"),
                                           SQLite::OPEN_READONLY | SQLite::OPEN_URI, kBusyTimeoutMs);
  const int newest = migrations().back().version;
  int version = 0;
  try {
    version = read_schema_version(*db_);
  } catch (const SQLite::Exception&) {
    throw;
  } catch (const std::runtime_error& e) {
    throw std::runtime_error("results database " + path_.string() + ": " + e.what());
  }
  if (version == 0)
    throw std::runtime_error(path_.string() + " is not a reglab results database (it has no meta.schema_version)");
  if (version > newest)
    throw std::runtime_error("results database " + path_.string() + " has schema version " + std::to_string(version) +
                             ", newer than this build's " + std::to_string(newest) + ": use a newer reglab");
  if (version < newest)
    throw OlderSchema("results database " + path_.string() + " has schema version " + std::to_string(version) +
                      ", older than this build's " + std::to_string(newest) +
                      ", and it cannot be written here, so it cannot be migrated: open a writable copy (any reglab "
                      "command migrates a database it can write)");
}

Store::~Store() = default;

SQLite::Database& connection(Store& store) { return *store.db_; }
SQLite::Database& raw_connection_for_tests(Store& store) { return *store.db_; }

// --- sweeps ---------------------------------------------------------------

std::int64_t Store::upsert_sweep(const std::string& name, const std::string& description,
                                 const std::string& toml) {
  if (name.empty()) throw std::invalid_argument("sweep name must not be empty");
  SQLite::Transaction tx(*db_, SQLite::TransactionBehavior::IMMEDIATE);
  SQLite::Statement up(*db_,
                       "INSERT INTO sweeps (name, description, toml, created_at) VALUES (?, ?, ?, ?) "
                       "ON CONFLICT (name) DO UPDATE SET description = excluded.description, "
                       "toml = excluded.toml");
  up.bind(1, name);
  up.bind(2, description);
  up.bind(3, toml);
  up.bind(4, util::now_iso8601());
  up.exec();
  SQLite::Statement q(*db_, "SELECT id FROM sweeps WHERE name = ?");
  q.bind(1, name);
  q.executeStep();
  const std::int64_t id = q.getColumn(0).getInt64();
  tx.commit();
  return id;
}

std::optional<SweepRow> Store::find_sweep(const std::string& name) {
  SQLite::Statement q(*db_, "SELECT id, name, description, toml, created_at FROM sweeps WHERE name = ?");
  q.bind(1, name);
  if (!q.executeStep()) return std::nullopt;
  return read_sweep(q);
}

std::vector<SweepRow> Store::list_sweeps() {
  SQLite::Statement q(*db_, "SELECT id, name, description, toml, created_at FROM sweeps ORDER BY id");
  std::vector<SweepRow> out;
  while (q.executeStep()) out.push_back(read_sweep(q));
  return out;
}

// --- runs -----------------------------------------------------------------

namespace {

std::vector<FlatParam> flatten_for(const std::string& key, const std::string& config_json) {
  try {
    return flatten_config(config_json);
  } catch (const std::invalid_argument& e) {
    throw std::invalid_argument("run '" + key + "': " + e.what());
  }
}

std::optional<std::int64_t> existing_run(SQLite::Database& db, std::int64_t sweep_id, const std::string& key) {
  SQLite::Statement q(db, "SELECT id FROM runs WHERE sweep_id = ? AND key = ? AND status <> 'superseded'");
  q.bind(1, sweep_id);
  q.bind(2, key);
  if (q.executeStep()) return q.getColumn(0).getInt64();
  return std::nullopt;
}

void require_sweep(SQLite::Database& db, std::int64_t sweep_id, const std::string& key) {
  SQLite::Statement s(db, "SELECT 1 FROM sweeps WHERE id = ?");
  s.bind(1, sweep_id);
  if (!s.executeStep())
    throw std::runtime_error("cannot add run '" + key + "': no sweep with id " + std::to_string(sweep_id));
}

// Inserts a pending run and its params; inside the caller's transaction.
std::int64_t insert_run(SQLite::Database& db, std::int64_t sweep_id, const NewRun& r, const std::vector<FlatParam>& flat) {
  SQLite::Statement ins(db,
                        "INSERT INTO runs (sweep_id, key, label, status, config_json, method_name, created_at) "
                        "VALUES (?, ?, ?, 'pending', ?, ?, ?)");
  ins.bind(1, sweep_id);
  ins.bind(2, r.key);
  ins.bind(3, r.label);
  ins.bind(4, r.config_json);
  ins.bind(5, r.method_name);
  ins.bind(6, util::now_iso8601());
  ins.exec();
  const std::int64_t id = db.getLastInsertRowid();
  SQLite::Statement p(db, "INSERT OR REPLACE INTO params (run_id, key, value, value_num) VALUES (?, ?, ?, ?)");
  for (const FlatParam& f : flat) {
    p.bind(1, id);
    p.bind(2, f.key);
    p.bind(3, f.value);
    if (f.numeric && !std::isnan(*f.numeric)) {
      p.bind(4, *f.numeric);
    } else {
      p.bind(4);
    }
    p.exec();
    p.reset();
  }
  return id;
}

}  // namespace

std::int64_t Store::ensure_run(std::int64_t sweep_id, const std::string& key, const std::string& label,
                               const std::string& config_json, const std::string& method_name) {
  const std::vector<FlatParam> flat = flatten_for(key, config_json);
  // A re-run sweep finds all its runs: answer without taking the write lock.
  if (auto id = existing_run(*db_, sweep_id, key)) return *id;
  SQLite::Transaction tx(*db_, SQLite::TransactionBehavior::IMMEDIATE);
  // Another process may have inserted it between the check and the lock.
  if (auto id = existing_run(*db_, sweep_id, key)) return *id;  // tx rolls back: nothing was written
  require_sweep(*db_, sweep_id, key);
  const std::int64_t id = insert_run(*db_, sweep_id, {key, label, config_json, method_name}, flat);
  tx.commit();
  return id;
}

std::vector<std::int64_t> Store::ensure_runs(std::int64_t sweep_id, const std::vector<NewRun>& runs) {
  std::vector<std::vector<FlatParam>> flat;
  flat.reserve(runs.size());
  for (const auto& r : runs) flat.push_back(flatten_for(r.key, r.config_json));
  std::vector<std::int64_t> ids(runs.size(), 0);
  bool all_exist = true;
  for (std::size_t i = 0; i < runs.size() && all_exist; ++i) {
    if (auto id = existing_run(*db_, sweep_id, runs[i].key))
      ids[i] = *id;
    else
      all_exist = false;
  }
  if (all_exist) return ids;
  SQLite::Transaction tx(*db_, SQLite::TransactionBehavior::IMMEDIATE);
  if (!runs.empty()) require_sweep(*db_, sweep_id, runs.front().key);
  for (std::size_t i = 0; i < runs.size(); ++i) {
    if (auto id = existing_run(*db_, sweep_id, runs[i].key))
      ids[i] = *id;
    else
      ids[i] = insert_run(*db_, sweep_id, runs[i], flat[i]);
  }
  tx.commit();
  return ids;
}

std::optional<RunRow> Store::get_run(std::int64_t run_id) {
  SQLite::Statement q(*db_, std::string("SELECT ") + kRunColumns + " WHERE r.id = ?");
  q.bind(1, run_id);
  if (!q.executeStep()) return std::nullopt;
  return read_run(q);
}

std::optional<RunRow> Store::find_run(const std::string& id_or_key_prefix) {
  const std::string& text = id_or_key_prefix;
  if (is_digits(text)) {
    if (auto r = get_run(std::stoll(text))) return r;
  }
  if (text.size() < 4) return std::nullopt;
  SQLite::Statement q(*db_, std::string("SELECT ") + kRunColumns +
                                " WHERE substr(r.key, 1, ?) = ? ORDER BY r.id LIMIT 6");
  q.bind(1, static_cast<std::int64_t>(text.size()));
  q.bind(2, text);
  std::vector<RunRow> found;
  while (q.executeStep()) found.push_back(read_run(q));
  if (found.empty()) return std::nullopt;
  // One trial's attempts share its key: the key names the current attempt
  // (superseded ones are reached by their run id).
  if (std::all_of(found.begin(), found.end(), [&](const RunRow& r) { return r.key == found.front().key; })) {
    for (const RunRow& r : found)
      if (r.status != RunStatus::kSuperseded) return r;
    return found.back();
  }
  std::string list;
  for (std::size_t i = 0; i < found.size() && i < 5; ++i) {
    list += "\n  " + std::to_string(found[i].id) + "  " + found[i].key + "  (" + found[i].sweep_name + ")";
  }
  if (found.size() > 5) list += "\n  ...";
  throw std::runtime_error("run key prefix '" + text + "' is ambiguous; it matches:" + list +
                           "\nuse a longer prefix or the run id");
}

std::vector<RunRow> Store::list_runs(std::optional<std::int64_t> sweep_id) {
  std::string sql = std::string("SELECT ") + kRunColumns;
  if (sweep_id) sql += " WHERE r.sweep_id = ?";
  sql += " ORDER BY r.id";
  SQLite::Statement q(*db_, sql);
  if (sweep_id) q.bind(1, *sweep_id);
  std::vector<RunRow> out;
  while (q.executeStep()) out.push_back(read_run(q));
  return out;
}

std::vector<ParamRow> Store::params(std::int64_t run_id) {
  SQLite::Statement q(*db_, "SELECT key, value, value_num FROM params WHERE run_id = ? ORDER BY key");
  q.bind(1, run_id);
  std::vector<ParamRow> out;
  while (q.executeStep()) {
    ParamRow p;
    p.key = q.getColumn(0).getString();
    p.value = q.getColumn(1).getString();
    if (!q.getColumn(2).isNull()) p.numeric = q.getColumn(2).getDouble();
    out.push_back(std::move(p));
  }
  return out;
}

// --- status transitions ---------------------------------------------------

namespace {
void require_one_row(SQLite::Database& db, std::int64_t run_id, const char* what) {
  if (db.getChanges() == 0) {
    throw std::runtime_error(std::string(what) + ": no run with id " + std::to_string(run_id));
  }
}
}  // namespace

namespace {
// Puts a run into 'running' for a new attempt; with `only_if_free`, only when
// it is neither running nor completed. Returns whether the row changed.
bool start_attempt(SQLite::Database& db, std::int64_t run_id, std::int64_t pid, const std::string& host,
                   const std::string& git_rev, const std::string& log_path, bool only_if_free) {
  SQLite::Statement q(db, std::string("UPDATE runs SET status = 'running', pid = :pid, host = :host, git_rev = :rev, "
                                      "log_path = :log, attempts = attempts + 1, started_at = :now, heartbeat_at = :now, "
                                      "finished_at = NULL, duration_s = NULL, error = '' WHERE id = :id") +
                              (only_if_free ? " AND status NOT IN ('running', 'completed', 'superseded')" : ""));
  q.bind(":pid", pid);
  q.bind(":host", host);
  q.bind(":rev", git_rev);
  q.bind(":log", log_path);
  q.bind(":now", util::now_iso8601());
  q.bind(":id", run_id);
  return q.exec() == 1;
}
}  // namespace

void Store::mark_running(std::int64_t run_id, std::int64_t pid, const std::string& host,
                         const std::string& git_rev, const std::string& log_path) {
  SQLite::Transaction tx(*db_, SQLite::TransactionBehavior::IMMEDIATE);
  start_attempt(*db_, run_id, pid, host, git_rev, log_path, /*only_if_free=*/false);
  require_one_row(*db_, run_id, "mark_running");
  tx.commit();
}

bool Store::claim_run(std::int64_t run_id, std::int64_t pid, const std::string& host, const std::string& git_rev,
                      const std::string& log_path) {
  SQLite::Transaction tx(*db_, SQLite::TransactionBehavior::IMMEDIATE);
  const bool claimed = start_attempt(*db_, run_id, pid, host, git_rev, log_path, /*only_if_free=*/true);
  tx.commit();
  return claimed;
}

void Store::set_run_pid(std::int64_t run_id, std::int64_t pid) {
  SQLite::Transaction tx(*db_, SQLite::TransactionBehavior::IMMEDIATE);
  SQLite::Statement q(*db_, "UPDATE runs SET pid = ? WHERE id = ?");
  q.bind(1, pid);
  q.bind(2, run_id);
  q.exec();
  require_one_row(*db_, run_id, "set_run_pid");
  tx.commit();
}

void Store::set_run_text(std::int64_t run_id, const char* what, const char* sql, const std::string& value) {
  SQLite::Transaction tx(*db_, SQLite::TransactionBehavior::IMMEDIATE);
  SQLite::Statement q(*db_, sql);
  q.bind(1, value);
  q.bind(2, run_id);
  q.exec();
  require_one_row(*db_, run_id, what);
  tx.commit();
}

void Store::set_code_identity(std::int64_t run_id, const std::string& method_version,
                              const std::string& method_digest, const std::string& reglab_digest) {
  SQLite::Transaction tx(*db_, SQLite::TransactionBehavior::IMMEDIATE);
  SQLite::Statement q(*db_, "UPDATE runs SET method_version = ?, method_digest = ?, reglab_digest = ? WHERE id = ?");
  q.bind(1, method_version);
  q.bind(2, method_digest);
  q.bind(3, reglab_digest);
  q.bind(4, run_id);
  q.exec();
  require_one_row(*db_, run_id, "set_code_identity");
  tx.commit();
}

std::int64_t Store::supersede_run(std::int64_t run_id, const std::string& why) {
  SQLite::Transaction tx(*db_, SQLite::TransactionBehavior::IMMEDIATE);
  std::optional<RunRow> old = get_run(run_id);
  if (!old) throw std::runtime_error("supersede_run: no run with id " + std::to_string(run_id));
  if (old->status == RunStatus::kRunning || old->status == RunStatus::kSuperseded)
    throw std::runtime_error("supersede_run: run " + std::to_string(run_id) + " is " + to_string(old->status));
  {
    SQLite::Statement q(*db_, "UPDATE runs SET status = 'superseded', error = ? WHERE id = ?");
    q.bind(1, why);
    q.bind(2, run_id);
    q.exec();
  }
  const std::int64_t id =
      insert_run(*db_, old->sweep_id, {old->key, old->label, old->config_json, old->method_name},
                 flatten_for(old->key, old->config_json));
  SQLite::Statement link(*db_, "UPDATE runs SET superseded_by = ? WHERE id = ?");
  link.bind(1, id);
  link.bind(2, run_id);
  link.exec();
  tx.commit();
  return id;
}

void Store::move_run_files(std::int64_t run_id, const std::string& from, const std::string& to) {
  SQLite::Transaction tx(*db_, SQLite::TransactionBehavior::IMMEDIATE);
  for (const char* sql : {"UPDATE runs SET log_path = ? || substr(log_path, ?) WHERE id = ? AND substr(log_path, 1, ?) = ?",
                          "UPDATE artifacts SET path = ? || substr(path, ?) WHERE run_id = ? AND substr(path, 1, ?) = ?"}) {
    SQLite::Statement q(*db_, sql);
    q.bind(1, to);
    q.bind(2, static_cast<std::int64_t>(from.size() + 1));
    q.bind(3, run_id);
    q.bind(4, static_cast<std::int64_t>(from.size()));
    q.bind(5, from);
    q.exec();
  }
  tx.commit();
}

void Store::heartbeat(std::int64_t run_id) {
  set_run_text(run_id, "heartbeat", "UPDATE runs SET heartbeat_at = ? WHERE id = ?", util::now_iso8601());
}

void Store::mark_finished(std::int64_t run_id, RunStatus status, const std::string& error) {
  if (status == RunStatus::kPending || status == RunStatus::kRunning) {
    throw std::invalid_argument(std::string("mark_finished: '") + to_string(status) +
                                "' is not a final status (use completed, failed or interrupted)");
  }
  SQLite::Transaction tx(*db_, SQLite::TransactionBehavior::IMMEDIATE);
  SQLite::Statement q(*db_,
                      "UPDATE runs SET status = :status, error = :error, finished_at = :now, "
                      "heartbeat_at = :now, "
                      "duration_s = (julianday(:now) - julianday(started_at)) * 86400.0 WHERE id = :id");
  q.bind(":status", to_string(status));
  q.bind(":error", error);
  q.bind(":now", util::now_iso8601());
  q.bind(":id", run_id);
  q.exec();
  require_one_row(*db_, run_id, "mark_finished");
  write_summaries_locked(run_id);
  tx.commit();
}

void Store::reset_run(std::int64_t run_id, const std::string& why) {
  set_run_text(run_id, "reset_run", "UPDATE runs SET status = 'pending', error = ?, finished_at = NULL WHERE id = ?",
               why);
}

bool Store::mark_interrupted_if_running(std::int64_t run_id, const std::string& why) {
  SQLite::Transaction tx(*db_, SQLite::TransactionBehavior::IMMEDIATE);
  const std::string now = util::now_iso8601();
  SQLite::Statement up(*db_,
                       "UPDATE runs SET status = 'interrupted', error = ?, finished_at = ?, "
                       "duration_s = (julianday(?) - julianday(started_at)) * 86400.0 "
                       "WHERE id = ? AND status = 'running'");
  up.bind(1, why);
  up.bind(2, now);
  up.bind(3, now);
  up.bind(4, run_id);
  const bool changed = up.exec() == 1;
  tx.commit();
  return changed;
}

// --- metrics and summaries --------------------------------------------------

void Store::add_metrics(std::int64_t run_id, const std::vector<MetricPoint>& points) {
  if (points.empty()) return;
  SQLite::Transaction tx(*db_, SQLite::TransactionBehavior::IMMEDIATE);
  const double now = util::now_seconds();
  // One prepared statement, kept for the life of the connection and rebound
  // per point: a batch of 10^5 points takes a fraction of a second.
  if (!insert_metric_) {
    insert_metric_ = std::make_unique<SQLite::Statement>(
        *db_,
        // An upsert rather than INSERT OR REPLACE: same result, but no delete
        // and re-insert of the row (1.3x the points/s, tools/bench).
        "INSERT INTO metrics (run_id, key, step, value, time) VALUES (?, ?, ?, ?, ?) "
        "ON CONFLICT(run_id, key, step) DO UPDATE SET value = excluded.value, time = excluded.time");
  }
  SQLite::Statement& q = *insert_metric_;
  q.tryReset();  // after a failed batch the statement still holds its error
  q.clearBindings();
  q.bind(1, run_id);
  q.bind(5, now);
  for (const MetricPoint& p : points) {
    q.bindNoCopy(2, p.key);
    q.bind(3, p.step);
    bind_real(q, 4, p.value);
    try {
      q.exec();
    } catch (const SQLite::Exception& e) {
      q.tryReset();
      q.clearBindings();
      if (e.getExtendedErrorCode() == SQLITE_CONSTRAINT_FOREIGNKEY) {
        throw std::runtime_error("add_metrics: no run with id " + std::to_string(run_id));
      }
      throw;
    }
    q.reset();
  }
  q.clearBindings();  // drop the no-copy pointers into `points`
  tx.commit();
}

void Store::declare_metrics(std::int64_t run_id, const std::vector<MetricDeclaration>& declarations) {
  if (declarations.empty()) return;
  SQLite::Transaction tx(*db_, SQLite::TransactionBehavior::IMMEDIATE);
  SQLite::Statement q(*db_,
                      "INSERT INTO metric_directions (run_id, key, direction) VALUES (?, ?, ?) "
                      "ON CONFLICT (run_id, key) DO UPDATE SET direction = excluded.direction");
  for (const MetricDeclaration& d : declarations) {
    q.bind(1, run_id);
    q.bind(2, d.key);
    q.bind(3, to_string(d.direction));
    try {
      q.exec();
    } catch (const SQLite::Exception& e) {
      if (e.getExtendedErrorCode() == SQLITE_CONSTRAINT_FOREIGNKEY) {
        throw std::runtime_error("declare_metrics: no run with id " + std::to_string(run_id));
      }
      throw;
    }
    q.reset();
  }
  tx.commit();
}

namespace {
MetricDirection read_direction(const SQLite::Column& c, const std::string& key) {
  const std::string word = c.getString();
  if (const auto d = metric_direction_from_string(word)) return *d;
  throw std::runtime_error("metric_directions: key '" + key + "' has direction '" + word +
                           "', not higher, lower or none");
}
}  // namespace

std::vector<MetricDeclaration> Store::metric_directions(std::int64_t run_id) {
  SQLite::Statement q(*db_, "SELECT key, direction FROM metric_directions WHERE run_id = ? ORDER BY key");
  q.bind(1, run_id);
  std::vector<MetricDeclaration> out;
  while (q.executeStep()) {
    std::string key = q.getColumn(0).getString();
    const MetricDirection d = read_direction(q.getColumn(1), key);
    out.push_back({std::move(key), d});
  }
  return out;
}

std::vector<MetricDirection> Store::declared_directions(const std::string& key,
                                                        const std::vector<std::int64_t>& run_ids) {
  SQLite::Statement q(*db_, "SELECT direction FROM metric_directions WHERE run_id = ? AND key = ?");
  std::vector<MetricDirection> out;
  for (const std::int64_t id : run_ids) {
    q.bind(1, id);
    q.bind(2, key);
    if (q.executeStep()) {
      const MetricDirection d = read_direction(q.getColumn(0), key);
      if (std::find(out.begin(), out.end(), d) == out.end()) out.push_back(d);
    }
    q.reset();
  }
  return out;
}

std::vector<MetricPoint> Store::metrics(std::int64_t run_id, const std::string& key_like) {
  SQLite::Statement q(*db_,
                      "SELECT key, step, value FROM metrics WHERE run_id = ? AND key LIKE ? "
                      "ORDER BY key, step");
  q.bind(1, run_id);
  q.bind(2, key_like);
  std::vector<MetricPoint> out;
  while (q.executeStep()) {
    out.push_back({q.getColumn(0).getString(), q.getColumn(1).getInt64(), read_real(q.getColumn(2))});
  }
  return out;
}

void Store::write_summaries(std::int64_t run_id) {
  SQLite::Transaction tx(*db_, SQLite::TransactionBehavior::IMMEDIATE);
  write_summaries_locked(run_id);
  tx.commit();
}

// Inside the caller's transaction. Final: the value at the largest step (NaN
// included: a diverged run's last value is NaN). Best, for keys declared
// higher or lower is better only: the max or the min over the non-NaN points;
// the earliest step that reaches it.
void Store::write_summaries_locked(std::int64_t run_id) {
  struct Acc {
    std::int64_t final_step = 0;
    double final_value = 0;
    bool has_best = false;
    std::int64_t best_step = 0;
    double best_value = 0;
  };
  std::map<std::string, Acc> acc;
  std::map<std::string, MetricDirection> directions;
  for (MetricDeclaration& d : metric_directions(run_id)) directions.emplace(std::move(d.key), d.direction);
  {
    SQLite::Statement q(*db_, "SELECT key, step, value FROM metrics WHERE run_id = ? ORDER BY key, step");
    q.bind(1, run_id);
    while (q.executeStep()) {
      const std::string key = q.getColumn(0).getString();
      const std::int64_t step = q.getColumn(1).getInt64();
      const double v = read_real(q.getColumn(2));
      auto [it, fresh] = acc.try_emplace(key);
      Acc& a = it->second;
      a.final_step = step;  // rows come in step order, so the last one wins
      a.final_value = v;
      if (std::isnan(v)) continue;
      const auto d = directions.find(key);
      if (d == directions.end() || d->second == MetricDirection::kNone) continue;
      const bool lower = d->second == MetricDirection::kLower;
      if (!a.has_best || (lower ? v < a.best_value : v > a.best_value)) {
        a.has_best = true;
        a.best_value = v;
        a.best_step = step;
      }
    }
  }
  SQLite::Statement del(*db_, "DELETE FROM summaries WHERE run_id = ?");
  del.bind(1, run_id);
  del.exec();
  SQLite::Statement ins(*db_, "INSERT INTO summaries (run_id, key, kind, value, step) VALUES (?, ?, ?, ?, ?)");
  auto put = [&](const std::string& key, const char* kind, double v, std::int64_t step) {
    ins.bind(1, run_id);
    ins.bind(2, key);
    ins.bind(3, kind);
    bind_real(ins, 4, v);
    ins.bind(5, step);
    ins.exec();
    ins.reset();
  };
  for (const auto& [key, a] : acc) {
    put(key, "final", a.final_value, a.final_step);
    if (a.has_best) put(key, "best", a.best_value, a.best_step);
  }
}

std::optional<double> Store::summary(std::int64_t run_id, const std::string& key, const std::string& kind) {
  if (kind != "final" && kind != "best") {
    throw std::invalid_argument("summary kind must be 'final' or 'best', got '" + kind + "'");
  }
  SQLite::Statement q(*db_, "SELECT value FROM summaries WHERE run_id = ? AND key = ? AND kind = ?");
  q.bind(1, run_id);
  q.bind(2, key);
  q.bind(3, kind);
  if (!q.executeStep()) return std::nullopt;
  return read_real(q.getColumn(0));
}

// --- artifacts ------------------------------------------------------------

void Store::add_artifact(const ArtifactRow& a) {
  SQLite::Transaction tx(*db_, SQLite::TransactionBehavior::IMMEDIATE);
  SQLite::Statement q(*db_,
                      "INSERT INTO artifacts (run_id, kind, path, checksum, created_at) VALUES (?, ?, ?, ?, ?)");
  q.bind(1, a.run_id);
  q.bind(2, a.kind);
  q.bind(3, a.path);
  q.bind(4, a.checksum);
  q.bind(5, util::now_iso8601());
  try {
    q.exec();
  } catch (const SQLite::Exception& e) {
    if (e.getExtendedErrorCode() == SQLITE_CONSTRAINT_FOREIGNKEY) {
      throw std::runtime_error("add_artifact '" + a.path + "': no run with id " + std::to_string(a.run_id));
    }
    throw;
  }
  tx.commit();
}

std::vector<ArtifactRow> Store::artifacts(std::int64_t run_id) {
  SQLite::Statement q(*db_,
                      "SELECT run_id, kind, path, checksum, created_at FROM artifacts WHERE run_id = ? "
                      "ORDER BY id");
  q.bind(1, run_id);
  std::vector<ArtifactRow> out;
  while (q.executeStep()) {
    ArtifactRow a;
    a.run_id = q.getColumn(0).getInt64();
    a.kind = q.getColumn(1).getString();
    a.path = q.getColumn(2).getString();
    a.checksum = q.getColumn(3).getString();
    a.created_at = q.getColumn(4).getString();
    out.push_back(std::move(a));
  }
  return out;
}

}  // namespace reglab::store
