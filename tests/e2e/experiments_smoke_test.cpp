// Every sweep in experiments/ runs end to end in a smoke mode: the real data
// and plugins, one seed, one epoch, a few hundred samples.
#include <gtest/gtest.h>

#include "e2e/cli_harness.h"
#include "store/store.h"

using reglab::testing::CliSandbox;
namespace fs = std::filesystem;

TEST(Experiments, EverySweepRunsInSmokeMode) {
  std::vector<fs::path> files;
  for (const auto& e : fs::directory_iterator(fs::path(REGLAB_PROJECT_SOURCE_DIR) / "experiments"))
    if (e.path().extension() == ".toml") files.push_back(e.path());
  ASSERT_FALSE(files.empty());
  for (const fs::path& file : files) {
    SCOPED_TRACE(file.string());
    CliSandbox box;
    auto r = box.run({"run", file.string(), "--set", "sweep.seeds=[0]", "--set", "task.epochs=1", "--set",
                      "data.limit=300", "--set", "data.test_limit=300", "-j", "2"});
    ASSERT_EQ(r.code, 0) << r.err;
    EXPECT_NE(r.out.find("test.acc"), std::string::npos) << r.out;
    reglab::store::Store s(box.db());
    auto sweeps = s.list_sweeps();
    ASSERT_EQ(sweeps.size(), 1u);
    for (const auto& run : s.list_runs(sweeps[0].id)) {
      EXPECT_EQ(run.status, reglab::store::RunStatus::kCompleted) << run.error;
      EXPECT_EQ(s.metrics(run.id, "test.acc").size(), 1u);
    }
  }
}
