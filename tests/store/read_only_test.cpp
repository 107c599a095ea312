// Store(path, ReadOnly{}): archived copies (mode 0444, read-only folders) are
// queryable, and a read-only open never changes the file or litters beside it.
//
// Root ignores file modes, so the permission cases run their open in a forked
// child that drops to nobody (uid 65534) when the test runs as root; as an
// ordinary user they run as that user. The byte/mtime checks need no user.
#include <SQLiteCpp/SQLiteCpp.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <iostream>
#include <iterator>
#include <string>

#include "store/schema.h"
#include "store/store.h"
#include "temp_db.h"

namespace reglab::store {
namespace {

namespace fs = std::filesystem;
using testing_support::TempDir;

constexpr uid_t kNobody = 65534;

std::string bytes_of(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// A closed database with one sweep and one run, in the given journal mode.
void make_db(const fs::path& path, Journal journal) {
  Store s(path, journal);
  const auto sweep = s.upsert_sweep("archived", "", "");
  s.ensure_run(sweep, "k1", "trial", "{\"seed\":1}", "ce");
}

bool file_exists(const std::string& p) { return fs::exists(fs::path(p)); }


// Opens `path` read-only and lists its sweeps, as nobody when we are root;
// "" on success, else the error (or why the child failed).
std::string open_as_unprivileged(const fs::path& path, bool live) {
  int pipe_fd[2];
  if (::pipe(pipe_fd) != 0) return "pipe failed";
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::close(pipe_fd[0]);
    std::string msg;
    if (::geteuid() == 0 && (::setgid(kNobody) != 0 || ::setuid(kNobody) != 0)) msg = "cannot drop to nobody";
    if (msg.empty()) {
      try {
        Store s(path, ReadOnly{live});
        const auto sweeps = s.list_sweeps();
        if (sweeps.size() != 1 || sweeps[0].name != "archived" || s.list_runs().size() != 1) msg = "wrong contents";
      } catch (const std::exception& e) {
        msg = e.what();
      }
    }
    if (::write(pipe_fd[1], msg.data(), msg.size()) < 0) ::_exit(3);
    ::_exit(msg.empty() ? 0 : 1);
  }
  ::close(pipe_fd[1]);
  std::string msg;
  char buf[512];
  for (ssize_t n; (n = ::read(pipe_fd[0], buf, sizeof buf)) > 0;) msg.append(buf, static_cast<std::size_t>(n));
  ::close(pipe_fd[0]);
  int status = 0;
  ::waitpid(pid, &status, 0);
  if (!WIFEXITED(status)) return "child crashed";
  return WEXITSTATUS(status) == 0 ? "" : (msg.empty() ? "child failed" : msg);
}

class ReadOnlyStore : public ::testing::Test {
 protected:
  void SetUp() override {
    // nobody must be able to reach the files (mkdtemp makes 0700 folders).
    fs::permissions(tmp_.path(), fs::perms::owner_all | fs::perms::group_read | fs::perms::group_exec |
                                     fs::perms::others_read | fs::perms::others_exec);
  }
  // Restored so that TempDir can remove the folder.
  void TearDown() override {
    std::error_code ec;
    for (const auto& e : fs::recursive_directory_iterator(tmp_.path(), ec))
      if (e.is_directory()) fs::permissions(e.path(), fs::perms::owner_all, fs::perm_options::add, ec);
  }
  TempDir tmp_;
};

TEST_F(ReadOnlyStore, NeverChangesTheFileNorCreatesWalOrShm) {
  for (const Journal journal : {Journal::kWal, Journal::kRollback}) {
    SCOPED_TRACE(journal == Journal::kWal ? "wal" : "rollback");
    const fs::path db = tmp_.file(journal == Journal::kWal ? "wal.db" : "rollback.db");
    make_db(db, journal);
    ASSERT_FALSE(file_exists(db.string() + "-wal"));
    const std::string before = bytes_of(db);
    const auto mtime = fs::last_write_time(db);
    {
      Store s(db, ReadOnly{});
      ASSERT_EQ(s.list_sweeps().size(), 1u);
      EXPECT_EQ(s.list_runs().size(), 1u);
      EXPECT_FALSE(file_exists(db.string() + "-wal"));
      EXPECT_FALSE(file_exists(db.string() + "-shm"));
      // Writes are refused, not silently dropped.
      EXPECT_ANY_THROW(s.upsert_sweep("other", "", ""));
    }
    // The old open switched a rollback database to WAL (header bytes 18, 19)
    // and ran the migrations: a read must leave every byte as it was.
    EXPECT_TRUE(bytes_of(db) == before) << "the file changed";
    EXPECT_EQ(fs::last_write_time(db), mtime);
    EXPECT_FALSE(file_exists(db.string() + "-wal"));
    EXPECT_FALSE(file_exists(db.string() + "-shm"));
  }
}

TEST_F(ReadOnlyStore, SeesCommitsStillInTheWalOfAnOpenWriter) {
  const fs::path db = tmp_.file("live.db");
  Store writer(db);
  writer.upsert_sweep("first", "", "");
  ASSERT_TRUE(file_exists(db.string() + "-wal"));
  Store reader(db, ReadOnly{});
  EXPECT_EQ(reader.list_sweeps().size(), 1u);
  writer.upsert_sweep("second", "", "");
  EXPECT_EQ(reader.list_sweeps().size(), 2u);
}

TEST_F(ReadOnlyStore, OpensA0444FileInAWritableFolderWithoutWritePermission) {
  const fs::path dir = tmp_.file("open");
  fs::create_directory(dir);
  fs::permissions(dir, fs::perms::all);  // writable for nobody too
  const fs::path db = dir / "results.db";
  make_db(db, Journal::kWal);
  fs::permissions(db, fs::perms::owner_read | fs::perms::group_read | fs::perms::others_read);
  EXPECT_EQ(open_as_unprivileged(db, false), "");
  EXPECT_FALSE(file_exists(db.string() + "-wal"));
  EXPECT_EQ(open_as_unprivileged(db, true), "");
}

TEST_F(ReadOnlyStore, OpensWalAndRollbackDatabasesInAReadOnlyFolder) {
  for (const Journal journal : {Journal::kWal, Journal::kRollback}) {
    const std::string name = journal == Journal::kWal ? "wal" : "rollback";
    SCOPED_TRACE(name);
    const fs::path dir = tmp_.file("archive-" + name);
    fs::create_directory(dir);
    const fs::path db = dir / "results.db";
    make_db(db, journal);
    ASSERT_FALSE(file_exists(db.string() + "-wal"));
    ASSERT_FALSE(file_exists(db.string() + "-shm"));
    fs::permissions(db, fs::perms::owner_read | fs::perms::group_read | fs::perms::others_read);
    fs::permissions(dir, fs::perms::owner_read | fs::perms::owner_exec | fs::perms::group_read |
                             fs::perms::group_exec | fs::perms::others_read | fs::perms::others_exec);
    EXPECT_EQ(open_as_unprivileged(db, false), "");
    EXPECT_EQ(open_as_unprivileged(db, true), "");  // serve: the -shm cannot be created, so immutable
    EXPECT_FALSE(file_exists(db.string() + "-wal"));
    EXPECT_FALSE(file_exists(db.string() + "-shm"));
  }
}

// A database made by an older reglab: schema 3 as it was (the real v3 layout,
// built by running this build's migrations up to 3), with one sweep.
void make_v3_db(const fs::path& path) {
  SQLite::Database raw(path.string(), SQLite::OPEN_READWRITE | SQLite::OPEN_CREATE);
  raw.exec("PRAGMA foreign_keys = OFF");
  for (const Migration& m : migrations()) {
    if (m.version > 3) break;
    m.apply(raw);
  }
  raw.exec("INSERT OR REPLACE INTO meta (key, value) VALUES ('schema_version', '3')");
  raw.exec("INSERT INTO sweeps (name, description, toml, created_at) VALUES ('archived', '', '', '2026-12-01T00:00:00Z')");
}

std::string schema_version_of(const fs::path& db) {
  SQLite::Database raw(db.string(), SQLite::OPEN_READONLY);
  SQLite::Statement q(raw, "SELECT value FROM meta WHERE key = 'schema_version'");
  return q.executeStep() ? q.getColumn(0).getString() : "";
}

// `reglab compare` after upgrading reglab: the writable file is migrated once,
// then read.
TEST_F(ReadOnlyStore, MigratesAnOlderSchemaItMayWriteThenReadsIt) {
  const fs::path db = tmp_.file("old.db");
  make_v3_db(db);
  ASSERT_EQ(schema_version_of(db), "3");
  {
    Store s(db, ReadOnly{});
    ASSERT_EQ(s.list_sweeps().size(), 1u);
    EXPECT_THROW(s.upsert_sweep("new", "", ""), std::exception);  // still a read-only connection
  }
  EXPECT_EQ(schema_version_of(db), std::to_string(kSchemaVersion));
}

// An archived copy from an older reglab cannot be migrated where it lies: it is
// refused, saying why and what to do, and its bytes stay as they were.
TEST_F(ReadOnlyStore, RefusesAnOlderSchemaItCannotWrite) {
  const fs::path dir = tmp_.file("archive-old");
  fs::create_directory(dir);
  const fs::path db = dir / "results.db";
  make_v3_db(db);
  const std::string before = bytes_of(db);
  fs::permissions(db, fs::perms::owner_read | fs::perms::group_read | fs::perms::others_read);
  fs::permissions(dir, fs::perms::owner_read | fs::perms::owner_exec | fs::perms::group_read |
                           fs::perms::group_exec | fs::perms::others_read | fs::perms::others_exec);
  const std::string msg = open_as_unprivileged(db, false);
  EXPECT_NE(msg.find(db.string()), std::string::npos) << msg;
  EXPECT_NE(msg.find("older"), std::string::npos) << msg;
  EXPECT_NE(msg.find("writable copy"), std::string::npos) << msg;
  EXPECT_TRUE(bytes_of(db) == before) << "the file changed";  // it was not migrated
}

TEST_F(ReadOnlyStore, AMissingFileIsReportedAndNotCreated) {
  const fs::path db = tmp_.file("absent/results.db");
  try {
    Store s(db, ReadOnly{});
    FAIL() << "opened a missing database";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find(db.string()), std::string::npos) << e.what();
  }
  EXPECT_FALSE(fs::exists(db.parent_path()));
}

}  // namespace
}  // namespace reglab::store
