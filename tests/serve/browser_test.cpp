// The dashboard in a real browser: Debian's headless Chromium, driven by
// tests/browser/dashboard.mjs (Playwright core), against a real
// `reglab serve` over a real store. Screenshots land in
// <build>/tests/artifacts/.
#include <gtest/gtest.h>

#include <filesystem>

#include "serve/serve_fixture.h"
#include "store/temp_db.h"
#include "util/process.h"

namespace reglab::serve {
namespace {

TEST(DashboardInBrowser, ListsFiltersDrawsEscapesAndUpdatesLive) {
  testing_support::TempDir dir;
  const auto db = dir.file("r.db");
  testing_support::write_demo_store(db, dir.file("logs"));
  testing_support::ServerProcess server(db, dir.path());
  const std::filesystem::path artifacts = std::filesystem::path(REGLAB_TEST_BINARY_DIR) / "artifacts";
  std::filesystem::create_directories(artifacts);
  const util::ProcessResult r = util::run_process(
      {"node", std::string(REGLAB_TEST_SOURCE_DIR) + "/browser/dashboard.mjs", server.url(), db.string(), artifacts.string()});
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("ok: the runs table updates by itself"), std::string::npos) << r.out;
  EXPECT_TRUE(std::filesystem::exists(artifacts / "dashboard-compare.png"));
}

}  // namespace
}  // namespace reglab::serve
