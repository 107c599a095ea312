// report::curves and the gnuplot scripts, against statistics worked out by
// hand (see report_fixture.h), and real gnuplot runs.
#include "report/plot.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <sstream>
#include <string>
#include <vector>

#include "report/gnuplot.h"
#include "report/report_fixture.h"
#include "util/util.h"

namespace reglab::report {
namespace {

using testing_support::ReportStore;

// The rows of datablock `$name` in a script, split on blanks.
std::vector<std::vector<std::string>> datablock(const std::string& script, const std::string& name) {
  const std::string open = "$" + name + " << EOD\n";
  const auto start = script.find(open);
  EXPECT_NE(start, std::string::npos) << "no datablock " << name << " in\n" << script;
  if (start == std::string::npos) return {};
  const auto end = script.find("\nEOD\n", start);
  std::istringstream in(script.substr(start + open.size(), end - start - open.size() + 1));
  std::vector<std::vector<std::string>> rows;
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream fields(line);
    std::vector<std::string> row;
    std::string f;
    while (fields >> f) row.push_back(f);
    rows.push_back(row);
  }
  return rows;
}

double num(const std::string& s) { return s == "NaN" ? NAN : std::stod(s); }

// One datablock row: step, mean, band low, band high, n.
void expect_row(const std::vector<std::string>& row, int step, double mean, double lo, double hi, int n) {
  ASSERT_EQ(row.size(), 5u);
  EXPECT_EQ(row[0], std::to_string(step));
  EXPECT_NEAR(num(row[1]), mean, 1e-9) << "step " << step;
  EXPECT_NEAR(num(row[2]), lo, 1e-9) << "step " << step;
  EXPECT_NEAR(num(row[3]), hi, 1e-9) << "step " << step;
  EXPECT_EQ(row[4], std::to_string(n));
}

class PlotTest : public ReportStore {
 protected:
  PlotOptions options(const std::string& metric = "test.acc") {
    PlotOptions o;
    o.sweep = "noisy";
    o.metric = metric;
    return o;
  }
};

TEST_F(PlotTest, CurvesHaveTheMeanAndSpreadAtEachStep) {
  const auto cs = curves(*store_, options());
  ASSERT_EQ(cs.size(), 2u);  // the failed ce run is not counted
  EXPECT_EQ(cs[0].values, std::vector<std::string>{"ce"});
  EXPECT_EQ(cs[0].runs, 2);
  ASSERT_EQ(cs[0].points.size(), 3u);
  EXPECT_NEAR(cs[0].points[0].mean, 0.52, 1e-12);
  EXPECT_NEAR(cs[0].points[0].std, 0.0282842712, 1e-9);
  EXPECT_NEAR(cs[0].points[0].ci95, 0.2541240948, 1e-9);
  EXPECT_NEAR(cs[0].points[1].mean, 0.63, 1e-12);
  EXPECT_NEAR(cs[0].points[1].std, 0.0424264069, 1e-9);

  EXPECT_EQ(cs[1].values, std::vector<std::string>{"label_smoothing"});
  EXPECT_EQ(cs[1].runs, 3);
  ASSERT_EQ(cs[1].points.size(), 3u);
  EXPECT_EQ(cs[1].points[0].n, 3);
  EXPECT_NEAR(cs[1].points[0].mean, 0.42, 1e-12);
  EXPECT_NEAR(cs[1].points[0].std, 0.02, 1e-12);
  EXPECT_NEAR(cs[1].points[0].ci95, 0.0496827542, 1e-9);
  EXPECT_EQ(cs[1].points[2].step, 3);
  EXPECT_EQ(cs[1].points[2].n, 2);  // the third seed stopped at step 2
  EXPECT_NEAR(cs[1].points[2].mean, 0.78, 1e-12);
}

TEST_F(PlotTest, LineScriptHoldsTheDataAndLabels) {
  const PlotData d = load_plot(*store_, options());
  const std::string s = plot_script(d, ImageFormat::kPng, "/tmp/out dir/it's.png");
  const auto ce = datablock(s, "group1");
  ASSERT_EQ(ce.size(), 3u);
  expect_row(ce[0], 1, 0.52, 0.4917157288, 0.5482842712, 2);
  expect_row(ce[1], 2, 0.63, 0.5875735931, 0.6724264069, 2);
  expect_row(ce[2], 3, 0.72, 0.6917157288, 0.7482842712, 2);
  const auto ls = datablock(s, "group2");
  ASSERT_EQ(ls.size(), 3u);
  expect_row(ls[0], 1, 0.42, 0.40, 0.44, 3);
  expect_row(ls[1], 2, 0.62, 0.58, 0.66, 3);
  expect_row(ls[2], 3, 0.78, 0.7517157288, 0.8082842712, 2);

  EXPECT_NE(s.find("set output '/tmp/out dir/it''s.png'\n"), std::string::npos) << s;
  EXPECT_NE(s.find("pngcairo"), std::string::npos);
  EXPECT_NE(s.find("set xlabel 'epoch'\n"), std::string::npos);
  EXPECT_NE(s.find("set ylabel 'test.acc'\n"), std::string::npos);
  EXPECT_NE(s.find("set key title 'method.name'\n"), std::string::npos);
  EXPECT_NE(s.find("set title 'noisy: test.acc, mean ± std over runs'\n"), std::string::npos) << s;
  EXPECT_NE(s.find("title 'ce (n=2)'"), std::string::npos);
  EXPECT_NE(s.find("title 'label_smoothing (n=3)'"), std::string::npos);
  EXPECT_NE(s.find("with filledcurves"), std::string::npos);
  EXPECT_NE(s.find("set termoption noenhanced"), std::string::npos);
}

TEST_F(PlotTest, CiBandUsesTheStudentInterval) {
  PlotOptions o = options();
  o.band = "ci";
  o.x = "step";
  const std::string s = plot_script(load_plot(*store_, o), ImageFormat::kSvg, "x.svg");
  const auto ce = datablock(s, "group1");
  ASSERT_EQ(ce.size(), 3u);
  expect_row(ce[0], 1, 0.52, 0.2658759052, 0.7741240948, 2);
  const auto ls = datablock(s, "group2");
  expect_row(ls[0], 1, 0.42, 0.3703172458, 0.4696827542, 3);
  expect_row(ls[1], 2, 0.62, 0.5206344915, 0.7193655085, 3);
  EXPECT_NE(s.find("set terminal svg"), std::string::npos);
  EXPECT_NE(s.find("set xlabel 'step'\n"), std::string::npos);
  EXPECT_NE(s.find("95% CI"), std::string::npos);
}

TEST_F(PlotTest, ABandNeedsTwoRuns) {
  PlotOptions o = options();
  o.where = {{"seed", "0"}};
  const std::string s = plot_script(load_plot(*store_, o), ImageFormat::kSvg, "x.svg");
  const auto ce = datablock(s, "group1");
  ASSERT_EQ(ce.size(), 3u);
  EXPECT_EQ(ce[0][2], "NaN");
  EXPECT_EQ(ce[0][3], "NaN");
  EXPECT_EQ(ce[0][4], "1");
  EXPECT_NE(s.find("set datafile missing 'NaN'"), std::string::npos);
  EXPECT_NE(s.find("set title 'noisy: test.acc, mean ± std over runs, where seed=0'"), std::string::npos) << s;
}

TEST_F(PlotTest, BarScriptHasFinalMeansAndErrorBars) {
  PlotOptions o = options();
  o.kind = "bar";
  const std::string s = plot_script(load_plot(*store_, o), ImageFormat::kPng, "x.png");
  const auto bars = datablock(s, "bars");
  ASSERT_EQ(bars.size(), 2u);
  // Best first, like `reglab compare`: label_smoothing 0.74 ± 0.0721, ce 0.72 ± 0.0283.
  EXPECT_EQ(bars[0][0], "0");
  EXPECT_NEAR(num(bars[0][1]), 0.74, 1e-9);
  EXPECT_NEAR(num(bars[0][2]), 0.0721110255, 1e-9);
  EXPECT_EQ(bars[0][3], "3");
  EXPECT_NEAR(num(bars[1][1]), 0.72, 1e-9);
  EXPECT_NEAR(num(bars[1][2]), 0.0282842712, 1e-9);
  // Colours follow group-value order (ce first), as in the line plot.
  EXPECT_EQ(std::stol(bars[1][4]), std::stol(std::string(group_colour(0)).substr(1), nullptr, 16));
  EXPECT_EQ(std::stol(bars[0][4]), std::stol(std::string(group_colour(1)).substr(1), nullptr, 16));
  EXPECT_NE(s.find("set xtics ('label_smoothing (n=3)' 0, 'ce (n=2)' 1)"), std::string::npos) << s;
  EXPECT_NE(s.find("set ylabel 'test.acc (final)'"), std::string::npos);
  EXPECT_NE(s.find("boxerrorbars"), std::string::npos);
  EXPECT_NE(s.find("set yrange [0:*]"), std::string::npos);  // bars start at zero

  o.band = "ci";
  o.metric = "test.nll";
  const auto nll = datablock(plot_script(load_plot(*store_, o), ImageFormat::kPng, "x.png"), "bars");
  ASSERT_EQ(nll.size(), 2u);
  EXPECT_NEAR(num(nll[0][1]), 0.65, 1e-9);  // lower is better: label_smoothing first
  EXPECT_NEAR(num(nll[0][2]), 0.3286205304, 1e-9);
  EXPECT_NEAR(num(nll[1][1]), 0.70, 1e-9);
  EXPECT_NEAR(num(nll[1][2]), 1.2706204740, 1e-9);
}

TEST_F(PlotTest, GroupLabels) {
  EXPECT_EQ(group_label({"method.name"}, {"ce"}), "ce");
  EXPECT_EQ(group_label({"method.name", "optim.lr"}, {"ce", "0.1"}), "method.name=ce optim.lr=0.1");
  EXPECT_EQ(group_label({"method.name", "method.epsilon"}, {"ce", "(unset)"}), "method.name=ce");
}

TEST_F(PlotTest, TwoKeysNameEachValueInTheLegend) {
  PlotOptions o = options();
  o.by = {"method.name", "optim.lr"};
  const std::string s = plot_script(load_plot(*store_, o), ImageFormat::kPng, "x.png");
  EXPECT_NE(s.find("title 'method.name=ce optim.lr=0.1 (n=2)'"), std::string::npos) << s;
  EXPECT_EQ(s.find("set key title"), std::string::npos);
}

TEST_F(PlotTest, BadNamesGiveClearErrors) {
  auto message = [&](PlotOptions o) -> std::string {
    try {
      load_plot(*store_, o);
    } catch (const std::exception& e) {
      return e.what();
    }
    return "(no error)";
  };
  PlotOptions o = options();
  o.sweep = "noisyy";
  std::string m = message(o);
  EXPECT_NE(m.find("unknown sweep 'noisyy'"), std::string::npos) << m;
  EXPECT_NE(m.find("did you mean 'noisy'"), std::string::npos) << m;

  o = options("test.acc_top1");
  m = message(o);
  EXPECT_NE(m.find("metric 'test.acc_top1' not found"), std::string::npos) << m;
  EXPECT_NE(m.find("test.acc, test.nll"), std::string::npos) << m;

  o = options();
  o.by = {"method.nam"};
  m = message(o);
  EXPECT_NE(m.find("'method.nam'"), std::string::npos) << m;
  EXPECT_NE(m.find("did you mean 'method.name'"), std::string::npos) << m;

  o = options();
  o.band = "iqr";
  m = message(o);
  EXPECT_NE(m.find("--band must be one of std, ci, got 'iqr'"), std::string::npos) << m;
}

// --- gnuplot itself ----------------------------------------------------------

TEST(Gnuplot, QuoteDoublesQuotesAndFlattensLines) {
  EXPECT_EQ(gnuplot_quote("ce"), "'ce'");
  EXPECT_EQ(gnuplot_quote("it's"), "'it''s'");
  EXPECT_EQ(gnuplot_quote("a\nplot 'x'\r"), "'a plot ''x'' '");
  EXPECT_EQ(gnuplot_quote("@GPVAL_TERM $d \\"), "'@GPVAL_TERM $d \\'");
}

TEST(Gnuplot, FormatFromTheExtension) {
  EXPECT_EQ(image_format("a/b.png"), ImageFormat::kPng);
  EXPECT_EQ(image_format("B.PNG"), ImageFormat::kPng);
  EXPECT_EQ(image_format("c.svg"), ImageFormat::kSvg);
  for (const char* bad : {"c.jpg", "curves", "c.png.bak"}) {
    try {
      image_format(bad);
      ADD_FAILURE() << bad;
    } catch (const std::invalid_argument& e) {
      const std::string m = e.what();
      EXPECT_NE(m.find(bad), std::string::npos) << m;
      EXPECT_NE(m.find(".png or .svg"), std::string::npos) << m;
    }
  }
}

std::uint32_t big_endian(const std::string& s, std::size_t at) {
  std::uint32_t v = 0;
  for (std::size_t i = 0; i < 4; ++i) v = (v << 8) | static_cast<unsigned char>(s[at + i]);
  return v;
}

TEST_F(PlotTest, GnuplotDrawsAPng) {
  const PlotData d = load_plot(*store_, options());
  const std::string png =
      render([&d](const std::filesystem::path& out) { return plot_script(d, ImageFormat::kPng, out); },
             ImageFormat::kPng, "gnuplot");
  ASSERT_GT(png.size(), 24u);
  EXPECT_EQ(png.substr(0, 8), std::string("\x89PNG\r\n\x1a\n", 8));
  EXPECT_EQ(png.substr(12, 4), "IHDR");
  EXPECT_EQ(big_endian(png, 16), 960u);  // width
  EXPECT_EQ(big_endian(png, 20), 600u);  // height
  EXPECT_GT(png.size(), 10000u);         // more than a blank canvas
}

// The text of every <text> element of an SVG document.
std::vector<std::string> svg_texts(const std::string& svg) {
  std::vector<std::string> out;
  for (std::size_t at = svg.find("<text"); at != std::string::npos; at = svg.find("<text", at + 1)) {
    const auto open_end = svg.find('>', at);
    const auto close = svg.find("</text>", open_end);
    if (open_end == std::string::npos || close == std::string::npos) break;
    std::string t = svg.substr(open_end + 1, close - open_end - 1);
    // gnuplot wraps some text in <tspan>s: keep the characters only.
    std::string plain;
    bool tag = false;
    for (char c : t) {
      if (c == '<') tag = true;
      else if (c == '>') tag = false;
      else if (!tag) plain += c;
    }
    out.push_back(util::trim(plain));
  }
  return out;
}

bool contains(const std::vector<std::string>& v, const std::string& s) {
  return std::find(v.begin(), v.end(), s) != v.end();
}

TEST_F(PlotTest, GnuplotDrawsAnSvgWithTheLegend) {
  const PlotData d = load_plot(*store_, options());
  const std::string svg =
      render([&d](const std::filesystem::path& out) { return plot_script(d, ImageFormat::kSvg, out); },
             ImageFormat::kSvg, "gnuplot");
  ASSERT_NE(svg.find("<svg"), std::string::npos);
  EXPECT_NE(svg.find("</svg>"), std::string::npos);
  const auto texts = svg_texts(svg);
  EXPECT_TRUE(contains(texts, "ce (n=2)")) << svg;
  EXPECT_TRUE(contains(texts, "label_smoothing (n=3)"));
  EXPECT_TRUE(contains(texts, "method.name"));  // legend title
  EXPECT_TRUE(contains(texts, "epoch"));        // axis labels
  EXPECT_TRUE(contains(texts, "test.acc"));
  EXPECT_TRUE(contains(texts, "noisy: test.acc, mean ± std over runs"));

  PlotOptions o = options();
  o.kind = "bar";
  const PlotData b = load_plot(*store_, o);
  const std::string bars =
      render([&b](const std::filesystem::path& out) { return plot_script(b, ImageFormat::kSvg, out); },
             ImageFormat::kSvg, "gnuplot");
  const auto bar_texts = svg_texts(bars);
  EXPECT_TRUE(contains(bar_texts, "label_smoothing (n=3)")) << bars;
  EXPECT_TRUE(contains(bar_texts, "0.7400"));  // the value over the bar
  EXPECT_TRUE(contains(bar_texts, "0.7200"));
}

TEST(Gnuplot, MissingProgramSaysHowToInstallIt) {
  try {
    render([](const std::filesystem::path&) { return std::string("plot x\n"); }, ImageFormat::kPng,
           "/nonexistent/gnuplot");
    FAIL() << "expected an error";
  } catch (const std::runtime_error& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find("/nonexistent/gnuplot"), std::string::npos) << m;
    EXPECT_NE(m.find("gnuplot-nox"), std::string::npos) << m;
  }
}

TEST(Gnuplot, AFailingScriptQuotesGnuplotsError) {
  try {
    render(
        [](const std::filesystem::path& out) {
          return "set terminal svg\nset output " + gnuplot_quote(out.string()) + "\nplot $nosuchblock using 1:2\n";
        },
        ImageFormat::kSvg, "gnuplot");
    FAIL() << "expected an error";
  } catch (const std::runtime_error& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find("exited with status"), std::string::npos) << m;
    EXPECT_NE(m.find("nosuchblock"), std::string::npos) << m;  // gnuplot's own words
  }
}

TEST(Gnuplot, NoImageIsAnError) {
  try {
    render([](const std::filesystem::path&) { return std::string("print 1\n"); }, ImageFormat::kSvg, "gnuplot");
    FAIL() << "expected an error";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("wrote no image"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace reglab::report
