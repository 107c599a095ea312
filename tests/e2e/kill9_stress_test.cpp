// kill -9 of the coordinator at random moments of a 12-trial sweep, each time
// followed at once by the same command: the run leases (runner/lease.h) must
// let the second command see exactly which trials are still running, so that
// every trial completes exactly once, none is left 'running', and no command
// exits 0 while a trial is unfinished. Before the leases, the second command
// trusted kill(pid, 0) of the dying workers and skipped their trials in 8 of
// 20 tries while exiting 0.
#include <gtest/gtest.h>

#include <sys/file.h>

#include <map>
#include <random>

#include "e2e/cli_harness.h"
#include "store/store.h"
#include "util/util.h"

using reglab::testing::CliSandbox;
using reglab::testing::tiny_sweep;
namespace fs = std::filesystem;

namespace {

int count_of(const std::string& text, const std::string& what) {
  int n = 0;
  for (std::size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

TEST(Kill9Stress, EveryTrialCompletesExactlyOnceAfterRandomKills) {
  // The moments are drawn from a fixed seed, so a failure can be replayed.
  std::mt19937 rng(20261206);
  std::uniform_int_distribution<int> moment_ms(50, 4000);
  const std::string variants =
      "[[sweep.variants]]\nmethod = { name = \"ce\" }\n"
      "[[sweep.variants]]\nmethod = { name = \"label_smoothing\", epsilon = 0.1 }\n";
  int killed_mid_run = 0;
  for (int round = 0; round < 20; ++round) {
    SCOPED_TRACE("round " + std::to_string(round));
    CliSandbox box;
    const fs::path file = box.write("k9.toml", tiny_sweep("k9", variants, "", "[0, 1, 2, 3, 4, 5]"));
    const std::vector<std::string> args = {"run", file.string(), "-j", "2", "--no-compare", "--progress", "plain"};
    const int ms = moment_ms(rng);
    const pid_t first = box.start(args, "first");
    ASSERT_GT(first, 0);
    std::this_thread::sleep_for(std::chrono::milliseconds(ms));
    const bool was_running = ::kill(first, 0) == 0;
    ::kill(first, SIGKILL);
    box.wait(first, "first");
    // At once: the dying workers may still be exiting.
    const auto second = box.run(args);
    if (was_running) ++killed_mid_run;
    ASSERT_TRUE(fs::exists(box.db())) << "killed at " << ms << " ms";
    reglab::store::Store store(box.db());
    const auto sweep = store.find_sweep("k9");
    ASSERT_TRUE(sweep) << second.err;
    const auto runs = store.list_runs(sweep->id);
    std::map<std::string, int> completed_per_key;
    int unfinished = 0;
    for (const auto& r : runs) {
      EXPECT_NE(r.status, reglab::store::RunStatus::kRunning) << "run " << r.id << " left running (killed at " << ms
                                                               << " ms)\n" << second.err;
      if (r.status == reglab::store::RunStatus::kCompleted) {
        ++completed_per_key[r.key];
        // One worker finished it, once: its log says "completed" at most once.
        EXPECT_LE(count_of(CliSandbox::slurp(r.log_path), " completed"), 1) << r.log_path;
      } else {
        ++unfinished;
      }
    }
    EXPECT_EQ(runs.size(), 12u);
    for (const auto& [key, n] : completed_per_key) EXPECT_EQ(n, 1) << key;
    EXPECT_EQ(second.code == 0, unfinished == 0) << "exit " << second.code << " with " << unfinished
                                                  << " unfinished (killed at " << ms << " ms)\n" << second.err;
    EXPECT_EQ(unfinished, 0) << "killed at " << ms << " ms\n" << second.err;
  }
  // The moments must really land while the first command works.
  EXPECT_GE(killed_mid_run, 15);
}

// A run left 'running' whose recorded pid is alive but is not its worker (a
// reused pid, a worker that is still exiting): before the leases the next
// command trusted kill(pid, 0), skipped the run and exited 0 with it
// unfinished. Its lease is free, so it is resumed.
TEST(Leases, ARunningRunWithALivePidButAFreeLeaseIsResumed) {
  CliSandbox box;
  const fs::path file = box.write("pid.toml", tiny_sweep("pid", "[[sweep.variants]]\nmethod = { name = \"ce\" }\n"));
  const std::vector<std::string> args = {"run", file.string(), "--no-compare"};
  ASSERT_EQ(box.run(args).code, 0);
  const pid_t alive = ::fork();
  if (alive == 0) {
    ::pause();
    ::_exit(0);
  }
  std::int64_t id = 0;
  {
    reglab::store::Store store(box.db());
    const auto runs = store.list_runs(store.find_sweep("pid")->id);
    id = runs.at(0).id;
    store.reset_run(id, "");
    store.mark_running(id, alive, reglab::util::hostname(), "", runs.at(0).log_path);
  }
  const auto again = box.run(args);
  ::kill(alive, SIGKILL);
  ::waitpid(alive, nullptr, 0);
  EXPECT_EQ(again.code, 0) << again.err;
  EXPECT_NE(again.err.find("leases were free"), std::string::npos) << again.err;
  reglab::store::Store store(box.db());
  EXPECT_EQ(store.get_run(id)->status, reglab::store::RunStatus::kCompleted) << again.err;
}

// A run whose lease another process holds is running, whatever its pid says:
// it is left alone, and the command's exit code and summary count it.
TEST(Leases, ARunWhoseLeaseIsHeldIsLeftAloneAndCountedAsUnfinished) {
  CliSandbox box;
  const fs::path file = box.write("held.toml", tiny_sweep("held", "[[sweep.variants]]\nmethod = { name = \"ce\" }\n"));
  const std::vector<std::string> args = {"run", file.string(), "--no-compare"};
  ASSERT_EQ(box.run(args).code, 0);
  std::int64_t id = 0;
  fs::path lease;
  {
    reglab::store::Store store(box.db());
    const auto runs = store.list_runs(store.find_sweep("held")->id);
    id = runs.at(0).id;
    store.reset_run(id, "");
    store.mark_running(id, 1, "another-host", "", runs.at(0).log_path);
    lease = fs::path(runs.at(0).log_path).parent_path() / "lease";
  }
  const int fd = ::open(lease.c_str(), O_RDWR | O_CREAT, 0644);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(::flock(fd, LOCK_EX | LOCK_NB), 0);
  const auto again = box.run(args);
  EXPECT_EQ(again.code, 1) << again.err;
  EXPECT_NE(again.err.find("1 running in another reglab process (not finished here)"), std::string::npos) << again.err;
  {
    reglab::store::Store store(box.db());
    EXPECT_EQ(store.get_run(id)->status, reglab::store::RunStatus::kRunning);
  }
  ::close(fd);  // the holder is gone: the next command resumes it
  const auto third = box.run(args);
  EXPECT_EQ(third.code, 0) << third.err;
  reglab::store::Store store(box.db());
  EXPECT_EQ(store.get_run(id)->status, reglab::store::RunStatus::kCompleted);
}

}  // namespace
