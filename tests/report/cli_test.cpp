// `reglab plot` and `reglab report` through the real binary, on a store the
// test writes itself (the contents of report_fixture.h).
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>

#include "e2e/cli_harness.h"
#include "report/report_fixture.h"
#include "store/store.h"

namespace reglab::testing {
namespace {

namespace fs = std::filesystem;
using testing_support::add_report_run;

class PlotCli : public ::testing::Test {
 protected:
  void SetUp() override {
    fs::create_directories(box_.db().parent_path());
    store::Store s(box_.db());
    const auto sweep = s.upsert_sweep("noisy", "CE vs label smoothing", "[sweep]\nname = \"noisy\"\n");
    add_report_run(s, sweep, "ce000000", testing_support::ce_config(0), "ce seed=0", "ce",
                   {{"test.acc", 1, 0.50}, {"test.acc", 2, 0.60}, {"test.ece", 2, 0.1}});
    add_report_run(s, sweep, "ce111111", testing_support::ce_config(1), "ce seed=1", "ce",
                   {{"test.acc", 1, 0.54}, {"test.acc", 2, 0.66}, {"test.ece", 2, 0.2}});
    add_report_run(s, sweep, "ls000000", testing_support::ls_config(0), "ls seed=0", "label_smoothing",
                   {{"test.acc", 1, 0.40}, {"test.acc", 2, 0.62}, {"test.ece", 2, 0.05}});
  }
  void TearDown() override { unsetenv("REGLAB_GNUPLOT"); }

  CliSandbox box_;
};

TEST_F(PlotCli, WritesAPngAndKeepsARunnableScript) {
  const fs::path png = box_.dir() / "figs" / "curves.png";
  const fs::path gp = box_.dir() / "curves.gp";
  const auto r = box_.run({"plot", "noisy", "--metric", "test.acc", "-o", png.string(), "--keep-script", gp.string()});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("2 group(s)"), std::string::npos) << r.out;
  const std::string bytes = CliSandbox::slurp(png);
  ASSERT_GT(bytes.size(), 8u);
  EXPECT_EQ(bytes.substr(0, 8), std::string("\x89PNG\r\n\x1a\n", 8));
  EXPECT_FALSE(fs::exists(png.string() + ".part"));
  // The kept script draws to the requested file on its own.
  const std::string script = CliSandbox::slurp(gp);
  EXPECT_NE(script.find("set output '" + fs::absolute(png).string() + "'"), std::string::npos) << script;
  EXPECT_NE(script.find("$group2 << EOD\n1 0.4 NaN NaN 1\n2 0.62 NaN NaN 1\nEOD\n"), std::string::npos) << script;
  fs::remove(png);
  const std::string cmd = "cd '" + box_.dir().string() + "' && gnuplot '" + gp.string() + "' 2>/dev/null";
  ASSERT_EQ(std::system(cmd.c_str()), 0);
  EXPECT_EQ(CliSandbox::slurp(png).substr(0, 4), "\x89PNG");
}

TEST_F(PlotCli, WritesAnSvgBarChart) {
  const fs::path svg = box_.dir() / "ece.svg";
  const auto r = box_.run({"plot", "noisy", "--metric", "test.ece", "--kind", "bar", "--band", "ci", "-o", svg.string()});
  ASSERT_EQ(r.code, 0) << r.err;
  const std::string text = CliSandbox::slurp(svg);
  EXPECT_NE(text.find("<svg"), std::string::npos);
  EXPECT_NE(text.find("label_smoothing (n=1)"), std::string::npos);
  EXPECT_NE(text.find("ce (n=2)"), std::string::npos);
  EXPECT_NE(text.find("0.1500"), std::string::npos);  // ce's mean ECE over its two runs
}

TEST_F(PlotCli, UnknownExtensionIsRefusedBeforeAnythingRuns) {
  const fs::path out = box_.dir() / "curves.jpg";
  const auto r = box_.run({"plot", "noisy", "-o", out.string()});
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("use .png or .svg"), std::string::npos) << r.err;
  EXPECT_FALSE(fs::exists(out));
}

TEST_F(PlotCli, BadSweepAndMetricNamesAreExplained) {
  const fs::path out = box_.dir() / "c.png";
  auto r = box_.run({"plot", "nosiy", "-o", out.string()});
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("unknown sweep 'nosiy'"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("noisy"), std::string::npos) << r.err;
  r = box_.run({"plot", "noisy", "--metric", "test.acc_typo", "-o", out.string()});
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("metric 'test.acc_typo' not found"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("test.acc, test.ece"), std::string::npos) << r.err;
  EXPECT_FALSE(fs::exists(out));
}

TEST_F(PlotCli, MissingOrFailingGnuplotIsExplained) {
  const fs::path out = box_.dir() / "c.png";
  setenv("REGLAB_GNUPLOT", "/nonexistent/gnuplot", 1);
  auto r = box_.run({"plot", "noisy", "-o", out.string()});
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("apt-get install gnuplot-nox"), std::string::npos) << r.err;
  EXPECT_FALSE(fs::exists(out));
  r = box_.run({"report", "noisy", "-o", (box_.dir() / "r.html").string()});
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("gnuplot-nox"), std::string::npos) << r.err;
  EXPECT_FALSE(fs::exists(box_.dir() / "r.html"));

  // A gnuplot that fails: its stderr reaches the user.
  const fs::path fake = box_.write("fake-gnuplot", "#!/bin/sh\necho 'line 3: undefined variable: oops' >&2\nexit 1\n");
  fs::permissions(fake, fs::perms::owner_all);
  setenv("REGLAB_GNUPLOT", fake.c_str(), 1);
  r = box_.run({"plot", "noisy", "-o", out.string()});
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("exited with status 1"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("line 3: undefined variable: oops"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("--keep-script"), std::string::npos) << r.err;
  EXPECT_FALSE(fs::exists(out));
}

TEST_F(PlotCli, ReportWritesOneSelfContainedPage) {
  const fs::path html = box_.dir() / "out" / "noisy.html";
  const auto r = box_.run({"report", "noisy", "-o", html.string()});
  ASSERT_EQ(r.code, 0) << r.err;
  const std::string page = CliSandbox::slurp(html);
  EXPECT_EQ(page.rfind("<!DOCTYPE html>", 0), 0u);
  EXPECT_NE(page.find("<h3 id=\"m-test-acc\">"), std::string::npos);
  EXPECT_NE(page.find("<h3 id=\"m-test-ece\">"), std::string::npos);
  EXPECT_NE(page.find("<svg"), std::string::npos);
  EXPECT_NE(page.find("0.6300 ± 0.0424"), std::string::npos);  // ce final test.acc: 0.60, 0.66
  EXPECT_EQ(page.find("http://"), std::string::npos);
  EXPECT_EQ(page.find("https://"), std::string::npos);
  EXPECT_FALSE(fs::exists(html.string() + ".part"));
}

TEST_F(PlotCli, HelpTeachesWithExamples) {
  for (const char* cmd : {"plot", "report"}) {
    const auto r = box_.run({cmd, "--help"});
    EXPECT_EQ(r.code, 0);
    EXPECT_NE(r.out.find("Examples:"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find(std::string("reglab ") + cmd + " quickstart"), std::string::npos) << r.out;
  }
}

}  // namespace
}  // namespace reglab::testing
