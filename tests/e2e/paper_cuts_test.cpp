// A newcomer's first hour (issue 17, part 6): exit codes and messages of user
// errors, data checked before anything is stored, read-only databases,
// tools/reglab from the caller's folder, and an installed `reglab methods`.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <regex>

#include "cli_harness.h"
#include "store/store.h"

namespace reglab::testing {
namespace {

std::string quoted(const fs::path& p) { return "'" + p.string() + "'"; }

// Runs `command` with sh; stdout and stderr are captured.
CliResult shell(const CliSandbox& box, const std::string& command) {
  const fs::path out = box.dir() / "shell.out", err = box.dir() / "shell.err";
  const int status = std::system((command + " >" + quoted(out) + " 2>" + quoted(err) + " </dev/null").c_str());
  CliResult r;
  r.code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  r.out = CliSandbox::slurp(out);
  r.err = CliSandbox::slurp(err);
  return r;
}

bool starts_with(const std::string& s, const std::string& prefix) { return s.rfind(prefix, 0) == 0; }

TEST(UserErrors, AMissingSweepFileExits2NamingTheFile) {
  CliSandbox box;
  const fs::path missing = box.dir() / "my_sweep.toml";
  CliResult r = box.run({"run", missing.string()});
  EXPECT_EQ(r.code, 2) << r.err;  // CLI11's ExistingFile check exited 105
  EXPECT_TRUE(starts_with(r.err, "reglab: " + missing.string() + ": ")) << r.err;
  EXPECT_NE(r.err.find("does not exist"), std::string::npos) << r.err;
  EXPECT_FALSE(fs::exists(box.db()));
}

TEST(UserErrors, EveryKindExits2WithOneMessageStyle) {
  CliSandbox box;
  // Bad TOML: the location first, after the program's name.
  const fs::path bad = box.write("bad.toml", "[task]\nepochs = = 3\n");
  CliResult r = box.run({"run", bad.string()});
  EXPECT_EQ(r.code, 2) << r.err;
  EXPECT_TRUE(std::regex_search(r.err, std::regex("^reglab: " + std::regex_replace(bad.string(), std::regex(R"([.^$|()\[\]{}*+?\\])"), R"(\$&)") +
                                                  ":2:[0-9]+: "))) << r.err;
  // An unknown key: file:line:col, the key, a suggestion.
  const fs::path typo = box.write("typo.toml", tiny_sweep("typo", "[method]\nname = \"ce\"\n", "[optim.extra]\n") +
                                                   "[model2]\nx = 1\n");
  r = box.run({"run", typo.string()});
  EXPECT_EQ(r.code, 2) << r.err;
  EXPECT_TRUE(starts_with(r.err, "reglab: " + typo.string() + ":")) << r.err;
  // Command-line mistakes: CLI11's own codes (106, 109, ...) are not used.
  r = box.run({"ls", "--no-such-option"});
  EXPECT_EQ(r.code, 2) << r.err;
  EXPECT_TRUE(starts_with(r.err, "reglab: ")) << r.err;
  r = box.run({"show"});
  EXPECT_EQ(r.code, 2) << r.err;
  EXPECT_TRUE(starts_with(r.err, "reglab: ")) << r.err;
  // Unknown run, unknown sweep, a file that is not a database.
  { store::Store s(box.db()); s.upsert_sweep("there", "", ""); }
  r = box.run({"show", "999"});
  EXPECT_EQ(r.code, 2) << r.err;
  EXPECT_TRUE(starts_with(r.err, "reglab: no run '999'")) << r.err;
  r = box.run({"compare", "not_there"});
  EXPECT_EQ(r.code, 2) << r.err;
  EXPECT_TRUE(starts_with(r.err, "reglab: ")) << r.err;
  EXPECT_NE(r.err.find("not_there"), std::string::npos) << r.err;
  const fs::path junk = box.write("junk.db", "this is not an SQLite file, but long enough to have a header............");
  r = shell(box, quoted(REGLAB_BINARY) + " --db " + quoted(junk) + " ls");  // box.run passes its own --db
  EXPECT_EQ(r.code, 2) << r.err;
  EXPECT_TRUE(starts_with(r.err, "reglab: ")) << r.err;
  EXPECT_NE(r.err.find(junk.string()), std::string::npos) << r.err;
  // --help and --version still exit 0.
  EXPECT_EQ(box.run({"--version"}).code, 0);
  EXPECT_EQ(box.run({"ls", "--help"}).code, 0);
}

TEST(Validation, AMissingDataRootIsFoundBeforeAnythingIsStored) {
  CliSandbox box;
  const fs::path root = box.dir() / "no-fashion-mnist-here";
  const fs::path sweep = box.write("fm.toml", "[sweep]\nname = \"fm\"\n\n[method]\nname = \"ce\"\n\n[data]\n"
                                              "dataset = \"fashion-mnist\"\nroot = \"" + root.string() + "\"\n");
  CliResult r = box.run({"run", sweep.string()});
  EXPECT_EQ(r.code, 2) << r.err;
  EXPECT_NE(r.err.find("reglab: " + sweep.string() + ":9:"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("data.root"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find(root.string()), std::string::npos) << r.err;
  // Not a sweep row, not a pending run: the database was never opened.
  EXPECT_FALSE(fs::exists(box.db()));
}

// ls, show, compare, plot inputs: an archived database (0444 file in a 0555
// folder) is read as an unprivileged user and left exactly as it was.
TEST(ReadOnly, QueryCommandsReadAnArchivedDatabase) {
  CliSandbox box;
  const fs::path archive = box.dir() / "archive";
  const fs::path db = archive / "reglab.db";
  {
    // Rollback journal: the old open switched it to WAL, changing its header.
    store::Store s(db, store::Journal::kRollback);
    const auto sweep = s.upsert_sweep("archived", "", "");
    const auto id = s.ensure_run(sweep, "abcdef0123456789", "ce", R"({"method":{"name":"ce"},"seed":0})", "ce");
    s.mark_running(id, 1, "host", "rev", "");
    s.add_metrics(id, {{"test.acc", 0, 0.5}, {"test.acc", 1, 0.75}});
    s.mark_finished(id, store::RunStatus::kCompleted, "");
  }
  const std::string before = CliSandbox::slurp(db);
  chmod(db.c_str(), 0444);
  chmod(archive.c_str(), 0555);
  // Root ignores modes: run the commands as nobody where we can.
  std::string as_user;
  if (geteuid() == 0 && std::system("command -v setpriv >/dev/null 2>&1") == 0)
    as_user = "setpriv --reuid=65534 --regid=65534 --clear-groups ";
  for (const std::vector<std::string>& cmd :
       std::vector<std::vector<std::string>>{{"ls"}, {"ls", "archived"}, {"show", "1"}, {"compare", "archived"}}) {
    std::string line = as_user + quoted(REGLAB_BINARY) + " --db " + quoted(db);
    for (const auto& a : cmd) line += " " + a;
    SCOPED_TRACE(line);
    CliResult r = shell(box, line);
    EXPECT_EQ(r.code, 0) << r.err;
    EXPECT_NE(r.out.find(cmd[0] == "show" ? "abcdef0123456789" : cmd.size() == 1 ? "archived" : "0.75"),
              std::string::npos) << r.out;
  }
  EXPECT_TRUE(CliSandbox::slurp(db) == before) << "a read-only command changed the database";
  EXPECT_FALSE(fs::exists(db.string() + "-wal"));
  EXPECT_FALSE(fs::exists(db.string() + "-shm"));
  chmod(archive.c_str(), 0755);
}

// tools/reglab runs from the caller's folder: a relative sweep file and a
// relative --db mean what they say there. REGLAB_SKIP_SETUP=1 keeps dpkg, apt
// and npm out of it; the build step is Ninja's no-op on the built tree.
TEST(Launcher, RunsFromTheCallersFolder) {
  CliSandbox box;
  box.write("my.toml", tiny_sweep("launcher", "[method]\nname = \"ce\"\n", "", "[0]"));
  CliResult r = shell(box, "cd " + quoted(box.dir()) + " && REGLAB_SKIP_SETUP=1 REGLAB_BUILD_DIR=" +
                               quoted(REGLAB_BUILD_DIR) + " " + quoted(fs::path(REGLAB_PROJECT_SOURCE_DIR) / "tools/reglab") +
                               " --db mine/results.db run my.toml --no-compare --progress plain");
  ASSERT_EQ(r.code, 0) << r.err;
  ASSERT_TRUE(fs::exists(box.dir() / "mine" / "results.db")) << r.err;
  EXPECT_FALSE(fs::exists(fs::path(REGLAB_PROJECT_SOURCE_DIR) / "mine"));
  store::Store s(box.dir() / "mine" / "results.db", store::ReadOnly{});
  ASSERT_TRUE(s.find_sweep("launcher"));
  EXPECT_EQ(s.list_runs().size(), 1u);
}

// An installed reglab uses its install's plugins: none is listed as failed
// (or even shadowed) because the build tree holds a copy of the same plugin.
TEST(Install, InstalledMethodsListNoFailures) {
  CliSandbox box;
  const fs::path prefix = box.dir() / "prefix";
  CliResult r = shell(box, quoted(REGLAB_CMAKE_COMMAND) + " --install " + quoted(REGLAB_BUILD_DIR) + " --prefix " +
                               quoted(prefix));
  ASSERT_EQ(r.code, 0) << r.out << r.err;
  r = shell(box, "env -u REGLAB_PLUGIN_PATH " + quoted(prefix / "bin" / "reglab") + " methods");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("\nce "), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find("failed to load"), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find("shadowed"), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find(std::string(REGLAB_BUILD_DIR) + "/plugins"), std::string::npos) << r.out;
}

}  // namespace
}  // namespace reglab::testing
