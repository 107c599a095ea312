// Records are identities: the code that produced a run is recorded and
// changes are never reused silently; run folders are used only by the store
// and run that own them.
#include <gtest/gtest.h>

#include <fstream>

#include "e2e/cli_harness.h"
#include "store/run_folder.h"
#include "store/store.h"
#include "util/hash.h"
#include "util/process.h"

using reglab::testing::CliSandbox;
using reglab::testing::tiny_sweep;
namespace fs = std::filesystem;
using reglab::store::RunStatus;

namespace {

std::vector<reglab::store::RunRow> runs_of(const fs::path& db, const std::string& sweep) {
  reglab::store::Store s(db);
  auto sw = s.find_sweep(sweep);
  if (!sw) return {};
  return s.list_runs(sw->id);
}

int count(const std::vector<reglab::store::RunRow>& runs, RunStatus st) {
  int n = 0;
  for (const auto& r : runs) n += r.status == st ? 1 : 0;
  return n;
}

// A private copy of the fixture plugin `faulty`, found through
// REGLAB_PLUGIN_PATH, so that the test can change "its code".
fs::path private_plugin(const CliSandbox& box) {
  const fs::path dir = box.dir() / "plugins";
  fs::create_directories(dir);
  const fs::path copy = dir / "libreglab_fixture_faulty.so";
  fs::copy_file(fs::path(REGLAB_FIXTURE_PLUGIN_DIR) / "libreglab_fixture_faulty.so", copy);
  setenv("REGLAB_PLUGIN_PATH", dir.c_str(), 1);
  return copy;
}

// Bytes after an ELF file's sections change its digest, not its behaviour:
// a rebuilt plugin of the same declared version.
void change_code(const fs::path& library) { std::ofstream(library, std::ios::app | std::ios::binary) << "rebuilt"; }

const std::string kFaulty = "[[sweep.variants]]\nmethod = { name = \"faulty\" }\n";

TEST(Records, EachRunRecordsItsCodeIdentity) {
  CliSandbox box;
  const fs::path plugin = private_plugin(box);
  const auto file = box.write("id.toml", tiny_sweep("id", kFaulty, "", "[0]"));
  const auto r = box.run({"run", file.string(), "--no-compare"});
  ASSERT_EQ(r.code, 0) << r.err;
  const auto runs = runs_of(box.db(), "id");
  ASSERT_EQ(runs.size(), 1u);
  EXPECT_EQ(runs[0].method_digest, reglab::util::hash_file_hex(plugin));
  EXPECT_EQ(runs[0].reglab_digest, reglab::util::hash_file_hex(REGLAB_BINARY));
  EXPECT_FALSE(runs[0].method_version.empty());
  const auto show = box.run({"show", std::to_string(runs[0].id)});
  EXPECT_NE(show.out.find(runs[0].method_digest), std::string::npos) << show.out;
}

TEST(Records, AChangedPluginIsSaidAndItsTrialsRunAgainAsNewAttempts) {
  CliSandbox box;
  const fs::path plugin = private_plugin(box);
  const auto file = box.write("ch.toml", tiny_sweep("ch", kFaulty));
  ASSERT_EQ(box.run({"run", file.string(), "--no-compare"}).code, 0);
  const auto before = runs_of(box.db(), "ch");
  ASSERT_EQ(count(before, RunStatus::kCompleted), 2);
  change_code(plugin);

  // --rerun none keeps them, but says so before running anything.
  const auto kept = box.run({"run", file.string(), "--no-compare", "--rerun", "none"});
  EXPECT_EQ(kept.code, 0) << kept.err;
  EXPECT_NE(kept.err.find("code changed since these completed runs"), std::string::npos) << kept.err;
  EXPECT_NE(kept.err.find("2 run(s) of faulty"), std::string::npos) << kept.err;
  EXPECT_NE(kept.err.find("0 completed now, 2 already completed"), std::string::npos) << kept.err;

  // The default re-runs them; the old attempts stay, superseded.
  const auto again = box.run({"run", file.string(), "--no-compare"});
  ASSERT_EQ(again.code, 0) << again.err;
  EXPECT_NE(again.err.find("run again as new attempts"), std::string::npos) << again.err;
  EXPECT_NE(again.err.find("2 completed now"), std::string::npos) << again.err;
  const auto after = runs_of(box.db(), "ch");
  ASSERT_EQ(after.size(), 4u);
  EXPECT_EQ(count(after, RunStatus::kSuperseded), 2);
  EXPECT_EQ(count(after, RunStatus::kCompleted), 2);
  for (const auto& r : after) {
    if (r.status == RunStatus::kSuperseded) {
      EXPECT_NE(r.superseded_by, 0);
      EXPECT_NE(r.method_digest, reglab::util::hash_file_hex(plugin));
      // Its log went aside with its folder, still readable.
      EXPECT_TRUE(fs::exists(r.log_path)) << r.log_path;
    } else {
      EXPECT_EQ(r.method_digest, reglab::util::hash_file_hex(plugin));
      EXPECT_EQ(CliSandbox::slurp(r.log_path).find("resumed from"), std::string::npos)
          << "a new attempt must not resume the old code's checkpoint";
    }
  }
  // Nothing changed since: nothing runs.
  const auto third = box.run({"run", file.string(), "--no-compare"});
  EXPECT_NE(third.err.find("0 completed now, 2 already completed"), std::string::npos) << third.err;
  // --rerun all runs every completed trial again.
  const auto all = box.run({"run", file.string(), "--no-compare", "--rerun", "all"});
  EXPECT_NE(all.err.find("2 completed now"), std::string::npos) << all.err;
}

TEST(Records, CompareRefusesToPoolRunsOfDifferentCode) {
  CliSandbox box;
  const fs::path plugin = private_plugin(box);
  const auto file = box.write("pool.toml", tiny_sweep("pool", kFaulty));
  ASSERT_EQ(box.run({"run", file.string(), "--no-compare"}).code, 0);
  change_code(plugin);
  // A third seed runs with the new code, the first two are kept.
  ASSERT_EQ(box.run({"run", file.string(), "--no-compare", "--rerun", "none", "--set", "sweep.seeds=[0, 1, 2]"}).code, 0);
  const auto refused = box.run({"compare", "pool"});
  EXPECT_EQ(refused.code, 2) << refused.out << refused.err;
  EXPECT_NE(refused.err.find("pools runs of 2 code identities"), std::string::npos) << refused.err;
  EXPECT_NE(refused.err.find("--pool-code"), std::string::npos) << refused.err;
  const auto pooled = box.run({"compare", "pool", "--pool-code"});
  EXPECT_EQ(pooled.code, 0) << pooled.err;
  EXPECT_NE(pooled.out.find("faulty"), std::string::npos) << pooled.out;
}

TEST(Records, ASecondDatabaseNeverResumesTheFirstOnesFolders) {
  CliSandbox box;
  const auto file = box.write("two.toml", tiny_sweep("two", "[[sweep.variants]]\nmethod = { name = \"ce\" }\n"));
  ASSERT_EQ(box.run({"run", file.string(), "--no-compare"}).code, 0);
  const auto first = runs_of(box.db(), "two");
  ASSERT_EQ(first.size(), 2u);
  const fs::path folder = fs::path(first[0].log_path).parent_path();
  const std::string first_store = reglab::store::Store(box.db()).store_id();

  // Another database in the same folder: same run folders by key.
  const fs::path other = box.db().parent_path() / "other.db";
  std::vector<std::string> args = {REGLAB_BINARY, "--db", other.string(), "run", file.string(), "--no-compare"};
  const auto second = reglab::util::run_process(args);
  ASSERT_EQ(second.exit_code, 0) << second.err;
  EXPECT_NE(second.err.find("belongs to another store"), std::string::npos) << second.err;
  EXPECT_NE(second.err.find("moved it aside"), std::string::npos) << second.err;
  reglab::store::Store s2(other);
  const auto runs = s2.list_runs(s2.find_sweep("two")->id);
  ASSERT_EQ(runs.size(), 2u);
  for (const auto& r : runs) {
    EXPECT_EQ(r.status, RunStatus::kCompleted);
    EXPECT_EQ(s2.metrics(r.id, "test.acc").size(), 2u) << "the trial ran, it did not resume a finished checkpoint";
    EXPECT_EQ(CliSandbox::slurp(r.log_path).find("resumed from"), std::string::npos);
    const auto owner = reglab::store::read_run_folder_owner(fs::path(r.log_path).parent_path());
    ASSERT_TRUE(owner);
    EXPECT_EQ(owner->store_id, s2.store_id());
  }
  // The first store's folder was moved aside whole, with its owner file.
  fs::path aside = folder;
  aside += ".aside-1";
  ASSERT_TRUE(fs::exists(aside / "trial.log"));
  EXPECT_EQ(reglab::store::read_run_folder_owner(aside)->store_id, first_store);
}

TEST(Records, AFolderLeftByADeletedDatabaseIsNotResumed) {
  CliSandbox box;
  const auto file = box.write("del.toml", tiny_sweep("del", "[[sweep.variants]]\nmethod = { name = \"ce\" }\n", "", "[0]"));
  ASSERT_EQ(box.run({"run", file.string(), "--no-compare"}).code, 0);
  for (const char* suffix : {"", "-wal", "-shm"}) fs::remove(box.db().string() + suffix);
  const auto again = box.run({"run", file.string(), "--no-compare"});
  ASSERT_EQ(again.code, 0) << again.err;
  EXPECT_NE(again.err.find("moved it aside"), std::string::npos) << again.err;
  const auto runs = runs_of(box.db(), "del");
  ASSERT_EQ(runs.size(), 1u);
  EXPECT_EQ(reglab::store::Store(box.db()).metrics(runs[0].id, "test.acc").size(), 2u);
  EXPECT_EQ(CliSandbox::slurp(runs[0].log_path).find("resumed from"), std::string::npos);
}

}  // namespace
