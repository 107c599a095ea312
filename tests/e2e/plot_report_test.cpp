// `reglab plot` and `reglab report` on a store written by a real sweep: the
// trials train, fail and log as in use, then both commands read the result.
#include <gtest/gtest.h>

#include <fmt/format.h>

#include <filesystem>
#include <string>

#include "e2e/cli_harness.h"
#include "store/store.h"

using reglab::testing::CliSandbox;
using reglab::testing::tiny_sweep;
namespace fs = std::filesystem;

namespace {

// Two methods at a sane learning rate, and a learning rate so large that the
// loss turns NaN and those trials fail.
const char* kVariants =
    "grid = { \"optim.lr\" = [0.1, 1e12] }\n"
    "[[sweep.variants]]\nmethod = { name = \"ce\" }\n"
    "[[sweep.variants]]\nmethod = { name = \"label_smoothing\", epsilon = 0.1 }\n";

// The mean final test.acc of the completed runs of one method, from the store.
double mean_final_acc(const fs::path& db, const std::string& method, int& n) {
  reglab::store::Store s(db);
  double sum = 0;
  n = 0;
  for (const auto& r : s.list_runs(s.find_sweep("viz")->id)) {
    if (r.status != reglab::store::RunStatus::kCompleted || r.method_name != method) continue;
    sum += *s.summary(r.id, "test.acc", "final");
    ++n;
  }
  return sum / n;
}

}  // namespace

TEST(PlotReport, DrawAndReportARealSweep) {
  CliSandbox box;
  const auto file = box.write("viz.toml", tiny_sweep("viz", kVariants));
  const auto run = box.run({"run", file.string(), "-j", "2", "--no-compare"});
  ASSERT_EQ(run.code, 4) << run.err;  // the four lr=1e12 trials fail

  const fs::path png = box.dir() / "acc.png";
  auto r = box.run({"plot", "viz", "--metric", "test.acc", "--where", "optim.lr=0.1", "-o", png.string()});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(CliSandbox::slurp(png).substr(0, 8), std::string("\x89PNG\r\n\x1a\n", 8));

  const fs::path svg = box.dir() / "loss.svg";
  r = box.run({"plot", "viz", "--metric", "train.loss", "--band", "ci", "-o", svg.string()});
  ASSERT_EQ(r.code, 0) << r.err;
  const std::string curves = CliSandbox::slurp(svg);
  EXPECT_NE(curves.find("ce (n=2)"), std::string::npos) << curves.substr(0, 400);
  EXPECT_NE(curves.find("label_smoothing (n=2)"), std::string::npos);

  const fs::path html = box.dir() / "viz.html";
  r = box.run({"report", "viz", "-o", html.string()});
  ASSERT_EQ(r.code, 0) << r.err;
  const std::string page = CliSandbox::slurp(html);
  for (const char* method : {"ce", "label_smoothing"}) {
    int n = 0;
    const double mean = mean_final_acc(box.db(), method, n);
    EXPECT_EQ(n, 2);
    // The group's row of the test.acc table: its name, then the mean of the stored finals.
    const std::string row = fmt::format("</span>{}", method);
    const auto at = page.find(row, page.find("<h3 id=\"m-test-acc\">"));
    ASSERT_NE(at, std::string::npos) << method;
    EXPECT_NE(page.substr(at, 200).find(fmt::format("{:.4f} ± ", mean)), std::string::npos)
        << page.substr(at, 200);
  }
  // The failed trials, with the NaN error the runner stored.
  EXPECT_NE(page.find("optim.lr=1000000000000.0 seed=1"), std::string::npos);
  EXPECT_NE(page.find("nan at epoch"), std::string::npos);
  EXPECT_NE(page.find("<svg"), std::string::npos);
  EXPECT_EQ(page.find("https://"), std::string::npos);
  EXPECT_EQ(page.find("<script"), std::string::npos);
}
