// report::build_report and its escaping: tables against hand-computed
// statistics (see report_fixture.h), structure, offline-ness, and script and
// HTML payloads stored in configs, errors, logs and sweep texts.
#include "report/html.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cctype>
#include <fstream>
#include <regex>
#include <set>
#include <string>
#include <vector>

#include "report/report_fixture.h"
#include "util/util.h"

namespace reglab::report {
namespace {

using testing_support::add_report_run;
using testing_support::ReportStore;

// "" when every tag is closed in order (void elements and "/>" aside) and no
// '<' starts anything but a tag; else what is wrong.
std::string nesting_problem(const std::string& html) {
  static const std::set<std::string> kVoid = {"meta", "br", "hr", "img", "input", "link"};
  std::vector<std::string> stack;
  for (std::size_t i = html.find('<'); i != std::string::npos; i = html.find('<', i)) {
    const auto j = html.find('>', i);
    if (j == std::string::npos) return std::string("unterminated tag at ") + std::to_string(i);
    const std::string tag = html.substr(i + 1, j - i - 1);
    i = j + 1;
    if (!tag.empty() && tag[0] == '!') continue;  // DOCTYPE
    const bool closing = !tag.empty() && tag[0] == '/';
    std::size_t k = closing ? 1 : 0;
    std::string name;
    while (k < tag.size() && (std::isalnum(static_cast<unsigned char>(tag[k])) || tag[k] == ':' || tag[k] == '-')) {
      name += tag[k++];
    }
    if (name.empty()) return std::string("a '<' that starts no tag: <") + tag.substr(0, 40);
    if (closing) {
      if (stack.empty() || stack.back() != name) {
        return "</" + name + "> closes <" + (stack.empty() ? std::string("nothing") : stack.back()) + ">";
      }
      stack.pop_back();
    } else if (tag.back() != '/' && kVoid.count(name) == 0) {
      stack.push_back(name);
    }
  }
  return stack.empty() ? "" : "<" + stack.back() + "> never closed";
}

std::string strip_tags(const std::string& s) {
  std::string out;
  bool tag = false;
  for (char c : s) {
    if (c == '<') tag = true;
    else if (c == '>') {
      tag = false;
      out += '|';
    } else if (!tag) out += c;
  }
  return out;
}

// The rows (as "cell|cell|..." text) of the first table after `marker`.
std::vector<std::string> table_rows_after(const std::string& html, const std::string& marker) {
  const auto at = html.find(marker);
  EXPECT_NE(at, std::string::npos) << marker;
  if (at == std::string::npos) return {};
  const auto body = html.find("<tbody>", at);
  const auto end = html.find("</tbody>", body);
  std::vector<std::string> rows;
  for (auto tr = html.find("<tr", body); tr != std::string::npos && tr < end; tr = html.find("<tr", tr + 1)) {
    const auto close = html.find("</tr>", tr);
    std::string cells;
    for (const auto& part : util::split(strip_tags(html.substr(tr, close - tr)), '|')) {
      const std::string cell = util::trim(part);
      if (cell.empty()) continue;
      if (!cells.empty()) cells += '|';
      cells += cell;
    }
    rows.push_back(html.substr(tr, 16).find("best") != std::string::npos ? "BEST " + cells : cells);
  }
  return rows;
}

std::string lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

TEST(HtmlEscape, EveryMarkupCharacterBecomesAReference) {
  EXPECT_EQ(html_escape("<script>alert(1)</script>"), "&lt;script&gt;alert(1)&lt;/script&gt;");
  EXPECT_EQ(html_escape("\"><img src=x onerror=alert(1)>"), "&quot;&gt;&lt;img src=x onerror=alert(1)&gt;");
  EXPECT_EQ(html_escape("' onmouseover='alert(1)"), "&#39; onmouseover=&#39;alert(1)");
  EXPECT_EQ(html_escape("&lt; is already escaped"), "&amp;lt; is already escaped");
  EXPECT_EQ(html_escape("plain text, 0.82 ± 0.02 ◀"), "plain text, 0.82 ± 0.02 ◀");
  EXPECT_EQ(html_escape(""), "");
}

TEST(InlineSvg, PrefixesIdsAndDropsTheDocumentWrapping) {
  const std::string svg =
      "<?xml version=\"1.0\" encoding=\"utf-8\"  standalone=\"no\"?>\n"
      "<svg \n width=\"600\" height=\"400\"\n xmlns=\"http://www.w3.org/2000/svg\"\n"
      " xmlns:xlink=\"http://www.w3.org/1999/xlink\"\n>\n<title>Gnuplot</title>\n"
      "<g id=\"gnuplot_canvas\"><defs><path id='gpPt0' d='M0,0'/><use xlink:href='#gpPt0' id='gpPt6'/>"
      "<clipPath id=\"c1\"/></defs><rect clip-path=\"url(#c1)\"/>"
      "<text>id='x' href='#y' url(#z) &lt;b&gt;</text></g>\n</svg>\n";
  const std::string out = inline_svg(svg, "p2-");
  EXPECT_EQ(out.rfind("<svg", 0), 0u) << out;
  EXPECT_EQ(out.find("<?xml"), std::string::npos);
  EXPECT_EQ(out.find("http"), std::string::npos) << out;
  EXPECT_EQ(out.find("<title>"), std::string::npos);
  EXPECT_NE(out.find("id=\"p2-gnuplot_canvas\""), std::string::npos) << out;
  EXPECT_NE(out.find("<path id='p2-gpPt0'"), std::string::npos);
  EXPECT_NE(out.find("<use xlink:href='#p2-gpPt0' id='p2-gpPt6'/>"), std::string::npos) << out;
  EXPECT_NE(out.find("clip-path=\"url(#p2-c1)\""), std::string::npos);
  EXPECT_NE(out.find("<text>id='x' href='#y' url(#z) &lt;b&gt;</text>"), std::string::npos) << out;
  EXPECT_NE(out.find("width=\"600\" height=\"400\""), std::string::npos);
  EXPECT_THROW(inline_svg("no svg here", "p"), std::runtime_error);
}

class ReportTest : public ReportStore {
 protected:
  std::string report(bool plots = false) {
    ReportOptions o;
    o.sweep = "noisy";
    o.plots = plots;
    o.gnuplot = "gnuplot";
    return build_report(*store_, o);
  }
};

TEST_F(ReportTest, ComparisonTablesHaveTheHandCheckedNumbers) {
  const std::string html = report();
  const auto acc = table_rows_after(html, "<h3 id=\"m-test-acc\">");
  ASSERT_EQ(acc.size(), 2u);
  // label_smoothing finals 0.80 0.76 0.66; ce finals 0.70 0.74 (failed run left out).
  EXPECT_EQ(acc[0], "BEST label_smoothing ◀ best|0.7400 ± 0.0721|±0.1791|3|0.6600|0.8000");
  EXPECT_EQ(acc[1], "ce|0.7200 ± 0.0283|±0.2541|2|0.7000|0.7400");
  const auto nll = table_rows_after(html, "<h3 id=\"m-test-nll\">");
  ASSERT_EQ(nll.size(), 2u);
  // Lower is better: label_smoothing 0.5 0.7 0.75 first, ce 0.6 0.8.
  EXPECT_EQ(nll[0], "BEST label_smoothing ◀ best|0.6500 ± 0.1323|±0.3286|3|0.5000|0.7500");
  EXPECT_EQ(nll[1], "ce|0.7000 ± 0.1414|±1.2706|2|0.6000|0.8000");
  EXPECT_NE(html.find("final, lower is better"), std::string::npos);
  // Only the metrics the runs have: no ECE or AURC tables.
  EXPECT_EQ(html.find("m-test-ece"), std::string::npos);
  EXPECT_EQ(html.find("m-test-aurc"), std::string::npos);
}

// --lower-is-better: the report ranks every table as asked and says so;
// the declared directions are only the default.
TEST_F(ReportTest, DirectionOverrideRanksEveryTable) {
  ReportOptions o;
  o.sweep = "noisy";
  o.plots = false;
  o.direction = MetricDirection::kLower;
  const std::string html = build_report(*store_, o);
  const auto acc = table_rows_after(html, "<h3 id=\"m-test-acc\">");
  ASSERT_EQ(acc.size(), 2u);
  EXPECT_EQ(acc[0], "BEST ce ◀ best|0.7200 ± 0.0283|±0.2541|2|0.7000|0.7400");
  EXPECT_EQ(html.find("final, higher is better"), std::string::npos);
}

TEST_F(ReportTest, IsWellFormedAndHasEverySection) {
  const std::string html = report();
  EXPECT_EQ(nesting_problem(html), "");
  EXPECT_EQ(html.rfind("<!DOCTYPE html>", 0), 0u);
  for (const char* id : {"comparison", "curves", "differences", "failures", "runs", "environment", "toml"}) {
    EXPECT_NE(html.find("<section id=\"" + std::string(id) + "\">"), std::string::npos) << id;
  }
  EXPECT_NE(html.find("<h1>Sweep noisy</h1>"), std::string::npos);
  EXPECT_NE(html.find("CE vs label smoothing under noise"), std::string::npos);
  EXPECT_NE(html.find("name = &quot;noisy&quot;\nseeds = [0, 1, 2]"), std::string::npos);
  EXPECT_NE(html.find("6 runs: completed (5), failed (1)"), std::string::npos);
  EXPECT_NE(html.find("Curves left out (--no-plots)"), std::string::npos);
}

TEST_F(ReportTest, ConfigDifferencesPerGroup) {
  const std::string html = report();
  const auto rows = table_rows_after(html, "<section id=\"differences\">");
  ASSERT_EQ(rows.size(), 2u);
  // Columns: group, runs, seeds, then the varying keys but the grouping one: method.epsilon.
  EXPECT_NE(html.find("<th>seeds</th><th>method.epsilon</th></tr>"), std::string::npos);
  EXPECT_EQ(rows[0], "ce|2|0, 1|(unset)");
  EXPECT_EQ(rows[1], "label_smoothing|3|0, 1, 2|0.1");
  EXPECT_EQ(varying_keys(*store_, sweep_), (std::vector<std::string>{"method.epsilon", "method.name"}));
  // epsilon follows from the method, so it does not split the groups.
  EXPECT_EQ(default_grouping(*store_, sweep_), std::vector<std::string>{"method.name"});
}

TEST_F(ReportTest, GroupingSplitsByAGridKey) {
  const auto sweep = store_->upsert_sweep("grid", "", "");
  for (int seed : {0, 1}) {
    for (const char* lr : {"0.1", "0.01"}) {
      add_report_run(*store_, sweep, std::string("g") + lr + std::to_string(seed),
                     R"({"method":{"name":"ce"},"optim":{"lr":)" + std::string(lr) + R"(},"seed":)" +
                         std::to_string(seed) + "}",
                     "ce", "ce", {{"test.acc", 1, 0.5}});
    }
  }
  EXPECT_EQ(default_grouping(*store_, sweep), (std::vector<std::string>{"method.name", "optim.lr"}));
  ReportOptions o;
  o.sweep = "grid";
  o.plots = false;
  const std::string html = build_report(*store_, o);
  const auto rows = table_rows_after(html, "<h3 id=\"m-test-acc\">");
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[0], "BEST method.name=ce optim.lr=0.01 ◀ best|0.5000 ± 0.0000|±0.0000|2|0.5000|0.5000");
}

TEST_F(ReportTest, FailedRunsShowTheirErrorAndLogTail) {
  const std::string html = report();
  const auto at = html.find("<section id=\"failures\">");
  const std::string failures = html.substr(at, html.find("</section>", at) - at);
  EXPECT_NE(failures.find("Run 6: method.name=ce seed=2"), std::string::npos) << failures;
  EXPECT_NE(failures.find("failed after 1 attempt(s) on labhost"), std::string::npos);
  EXPECT_NE(failures.find("<pre>non-finite loss at epoch 2</pre>"), std::string::npos);
  EXPECT_NE(failures.find("epoch 2 loss nan\nfatal: loss is NaN at epoch 2\n"), std::string::npos);
}

TEST_F(ReportTest, EnvironmentListsHostsRevisionsAndPlugins) {
  const std::string html = report();
  const auto rows = table_rows_after(html, "<section id=\"environment\">");
  ASSERT_EQ(rows.size(), 4u);
  EXPECT_EQ(rows[0], "hosts|labhost (6)");
  EXPECT_EQ(rows[1], "git revisions|abc123def456 (6)");
  EXPECT_EQ(rows[2], "method plugins|ce 1.0.0 (3), label_smoothing 1.2.0 (3)");
}

TEST_F(ReportTest, WithCurvesItStaysOfflineAndWellFormed) {
  const std::string html = report(true);
  EXPECT_EQ(nesting_problem(html), "");
  // One inline SVG per metric, no images or scripts from anywhere.
  std::size_t svgs = 0;
  for (auto at = html.find("<svg"); at != std::string::npos; at = html.find("<svg", at + 1)) ++svgs;
  EXPECT_EQ(svgs, 2u);
  EXPECT_EQ(html.find("http://"), std::string::npos);
  EXPECT_EQ(html.find("https://"), std::string::npos);
  EXPECT_EQ(lower(html).find("<script"), std::string::npos);
  EXPECT_EQ(html.find("src="), std::string::npos);
  EXPECT_EQ(html.find("@import"), std::string::npos);
  const std::regex ref(R"re((?:href|src)\s*=\s*["']([^"']*)["'])re");
  std::size_t refs = 0;
  for (auto it = std::sregex_iterator(html.begin(), html.end(), ref); it != std::sregex_iterator(); ++it, ++refs) {
    EXPECT_EQ((*it)[1].str().rfind('#', 0), 0u) << "external reference " << (*it)[0];
  }
  EXPECT_GT(refs, 7u);  // the section links and gnuplot's point symbols
  const std::regex url(R"(url\(([^)]*)\))");
  for (auto it = std::sregex_iterator(html.begin(), html.end(), url); it != std::sregex_iterator(); ++it) {
    EXPECT_EQ((*it)[1].str().rfind('#', 0), 0u) << (*it)[0];
  }
  EXPECT_NE(html.find("Content-Security-Policy\" content=\"default-src 'none'"), std::string::npos);
  // Several plots share the page: every id is unique.
  const std::regex id(R"re(\sid=["']([^"']*)["'])re");
  std::set<std::string> ids;
  for (auto it = std::sregex_iterator(html.begin(), html.end(), id); it != std::sregex_iterator(); ++it) {
    EXPECT_TRUE(ids.insert((*it)[1].str()).second) << "duplicate id " << (*it)[1];
  }
  EXPECT_TRUE(ids.count("p1-gpPt0") && ids.count("p2-gpPt0"));
  // The legend labels are in the curves.
  EXPECT_NE(html.find("label_smoothing (n=3)"), std::string::npos);
}

TEST_F(ReportTest, ScriptInTheStoreIsShownAsText) {
  const std::string payload = "<script>alert(1)</script>";
  const auto sweep = store_->upsert_sweep("xss", payload + " description", "# " + payload + "\n[sweep]\n");
  const auto config = [&](int seed, const std::string& note) {
    return R"({"data":{"note":")" + note + R"("},"method":{"name":"ce"},"seed":)" + std::to_string(seed) + "}";
  };
  add_report_run(*store_, sweep, "x0x0x0x0", config(0, payload), payload, "ce", {{"test.acc", 1, 0.5}});
  add_report_run(*store_, sweep, "x1x1x1x1", config(1, "plain"), "plain \"><img src=x onerror=alert(1)>", "ce",
                 {{"test.acc", 1, 0.6}});
  const auto log = dir_.file("xss.log");
  std::ofstream(log) << "</pre><script>alert(2)</script>\n";
  add_report_run(*store_, sweep, "x2x2x2x2", config(2, "plain"), "failing", "ce", {{"test.acc", 1, 0.7}},
                 store::RunStatus::kFailed, "boom " + payload, log.string());

  ReportOptions o;
  o.sweep = "xss";
  o.gnuplot = "gnuplot";  // the payload is a group label: it goes through gnuplot too
  const std::string html = build_report(*store_, o);
  EXPECT_EQ(default_grouping(*store_, sweep), (std::vector<std::string>{"method.name", "data.note"}));
  const std::string l = lower(html);
  EXPECT_EQ(l.find("<script"), std::string::npos);
  EXPECT_EQ(l.find("<img"), std::string::npos);
  EXPECT_EQ(nesting_problem(html), "");
  const std::string shown = "&lt;script&gt;alert(1)&lt;/script&gt;";
  EXPECT_NE(html.find(shown + " description"), std::string::npos);  // sweep description
  EXPECT_NE(html.find("# " + shown), std::string::npos);             // TOML
  EXPECT_NE(html.find("boom " + shown), std::string::npos);          // error
  EXPECT_NE(html.find("&lt;/pre&gt;&lt;script&gt;alert(2)"), std::string::npos);  // log tail
  EXPECT_NE(html.find("&quot;&gt;&lt;img src=x onerror=alert(1)&gt;"), std::string::npos);  // run label
  EXPECT_NE(html.find("method.name=ce data.note=" + shown), std::string::npos);  // group label in tables
}

TEST_F(ReportTest, ASweepWithOnlyFailuresStillReports) {
  const auto sweep = store_->upsert_sweep("broken", "", "");
  add_report_run(*store_, sweep, "b0b0b0b0", testing_support::ce_config(0), "ce seed=0", "ce", {},
                 store::RunStatus::kFailed, "plugin crashed");
  ReportOptions o;
  o.sweep = "broken";
  const std::string html = build_report(*store_, o);  // plots on: nothing to draw, gnuplot not run
  EXPECT_NE(html.find("No completed run has logged a metric yet."), std::string::npos);
  EXPECT_NE(html.find("plugin crashed"), std::string::npos);
  EXPECT_EQ(nesting_problem(html), "");
}

TEST_F(ReportTest, UnknownSweepIsNamed) {
  ReportOptions o;
  o.sweep = "noisyy";
  try {
    build_report(*store_, o);
    FAIL() << "expected an error";
  } catch (const std::runtime_error& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find("unknown sweep 'noisyy'"), std::string::npos) << m;
    EXPECT_NE(m.find("did you mean 'noisy'"), std::string::npos) << m;
  }
}

TEST_F(ReportTest, MissingGnuplotIsAClearError) {
  ReportOptions o;
  o.sweep = "noisy";
  o.gnuplot = "/nonexistent/gnuplot";
  try {
    build_report(*store_, o);
    FAIL() << "expected an error";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("gnuplot-nox"), std::string::npos) << e.what();
  }
  o.plots = false;
  EXPECT_NO_THROW(build_report(*store_, o));
}

}  // namespace
}  // namespace reglab::report
