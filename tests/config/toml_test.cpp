// Parsing TOML into trees with positions, extends chains, --set values and tree helpers.
#include <gtest/gtest.h>

#include "config/config.h"
#include "fake_methods.h"

namespace reglab::config {
namespace {

using test::data_file;
using test::data_name;

std::string what_of(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const ConfigError& err) {
    return err.what();
  }
  return "<no ConfigError>";
}

// Built field by field: GCC 12 warns (falsely) about brace-initialised
// aggregates holding strings at -O3.
SourceLocation loc(const std::string& file, int line, int column) {
  SourceLocation out;
  out.file = file;
  out.line = line;
  out.column = column;
  return out;
}

Issue issue(SourceLocation where, const std::string& key, const std::string& message, const std::string& suggestion) {
  Issue out;
  out.where = std::move(where);
  out.key = key;
  out.message = message;
  out.suggestion = suggestion;
  return out;
}

TEST(SourceLocation, Formats) {
  EXPECT_EQ((SourceLocation{"a.toml", 3, 7}.str()), "a.toml:3:7");
  EXPECT_EQ((SourceLocation{"a.toml", 0, 0}.str()), "a.toml");
  EXPECT_EQ(SourceLocation{}.str(), "<command line>");
}

TEST(Issue, FormatsWithAndWithoutSuggestion) {
  Issue plain = issue(loc("path/to/file.toml", 12, 5), "optim.lr", "expected a float, got string \"fast\"", "");
  EXPECT_EQ(plain.str(), "path/to/file.toml:12:5: key 'optim.lr': expected a float, got string \"fast\"");
  Issue suggested = issue(loc("f.toml", 2, 1), "optim.lrr", "unknown key", "optim.lr");
  EXPECT_EQ(suggested.str(), "f.toml:2:1: key 'optim.lrr': unknown key (did you mean 'optim.lr'?)");
  Issue keyless = issue(loc("f.toml", 1, 2), "", "TOML syntax error: x", "");
  EXPECT_EQ(keyless.str(), "f.toml:1:2: TOML syntax error: x");
}

TEST(ConfigError, ListsEveryIssueOnItsOwnLine) {
  ConfigError err({issue(loc("a.toml", 1, 1), "x", "bad", ""), issue(SourceLocation{}, "y", "worse", "z")});
  EXPECT_STREQ(err.what(), "a.toml:1:1: key 'x': bad\n<command line>: key 'y': worse (did you mean 'z'?)");
  EXPECT_EQ(err.issues().size(), 2u);
}

TEST(ParseToml, ValuesAndPositionsFromFile) {
  Document doc = load_toml_file(data_file("basic.toml"));
  const std::string f = data_name("basic.toml");
  EXPECT_EQ(doc.tree["seed"], 7);
  EXPECT_EQ(doc.tree["task"]["epochs"], 3);
  EXPECT_EQ(doc.tree["data"]["noise"]["kind"], "symmetric");
  EXPECT_TRUE(doc.tree["data"]["noise"]["rate"].is_number_float());
  EXPECT_EQ(doc.tree["model"]["hidden"], Json::array({128, 64}));
  EXPECT_EQ(doc.tree["method"]["name"], "label_smoothing");

  EXPECT_EQ(doc.locations.at("seed").str(), f + ":2:8");
  EXPECT_EQ(doc.locations.at("task.epochs").str(), f + ":5:10");
  EXPECT_EQ(doc.locations.at("task").str(), f + ":4:1");
  EXPECT_EQ(doc.locations.at("data.noise.rate").str(), f + ":11:14");
  EXPECT_EQ(doc.locations.at("model.hidden.1").str(), f + ":14:16");
  EXPECT_EQ(doc.locations.at("optim.lr").str(), f + ":17:6");
  EXPECT_EQ(doc.locations.at("method.epsilon").str(), f + ":22:11");
  EXPECT_EQ(doc.locations.at("").str(), f);
  EXPECT_EQ(doc.path, data_file("basic.toml"));
  EXPECT_NE(doc.text.find("noise.rate = 0.2"), std::string::npos);
}

TEST(ParseToml, SweepKeysGetPositionsToo) {
  const std::string text =
      "[sweep]\n"
      "grid = { \"optim.lr\" = [0.1, 0.01] }\n"
      "[[sweep.variants]]\n"
      "method.name = \"ce\"\n"
      "[[sweep.variants]]\n"
      "method = { name = \"ls\", lr = 2 }\n";
  Document doc = parse_toml_string(text, "s.toml");
  EXPECT_EQ(doc.locations.at("sweep.grid.optim.lr").str(), "s.toml:2:23");
  EXPECT_EQ(doc.locations.at("sweep.grid.optim.lr.1").str(), "s.toml:2:29");
  EXPECT_EQ(doc.locations.at("sweep.variants.0.method.name").str(), "s.toml:4:15");
  EXPECT_EQ(doc.locations.at("sweep.variants.1.method.lr").str(), "s.toml:6:30");
  EXPECT_EQ(doc.tree["sweep"]["grid"]["optim.lr"], Json::array({0.1, 0.01}));
}

TEST(ParseToml, FloatsRoundTripInDump) {
  Document doc = parse_toml_string("a = 0.1\nb = 1e-8\nc = 3.0\nd = 0.3\n", "f.toml");
  EXPECT_EQ(doc.tree.dump(), R"({"a":0.1,"b":1e-08,"c":3.0,"d":0.3})");
}

TEST(ParseToml, SyntaxErrorNamesFileLineColumn) {
  const std::string msg = what_of([] { load_toml_file(data_file("syntax_error.toml")); });
  EXPECT_EQ(msg.rfind(data_name("syntax_error.toml") + ":3:12: TOML syntax error: ", 0), 0u) << msg;
}

TEST(ParseToml, MissingFileIsAConfigError) {
  const std::string msg = what_of([] { load_toml_file(data_file("nope.toml")); });
  EXPECT_NE(msg.find("nope.toml"), std::string::npos) << msg;
  EXPECT_NE(msg.find("cannot read"), std::string::npos) << msg;
}

TEST(Extends, MergesOverBaseAndKeepsPositions) {
  Document doc = load_toml_file(data_file("child.toml"));
  EXPECT_FALSE(doc.tree.contains("extends"));
  EXPECT_EQ(doc.tree["task"]["epochs"], 5);
  EXPECT_EQ(doc.tree["task"]["batch_size"], 32);
  EXPECT_EQ(doc.tree["optim"]["lr"], 0.01);
  EXPECT_EQ(doc.tree["optim"]["momentum"], 0.5);
  EXPECT_EQ(doc.tree["optim"]["milestones"], Json::array({3}));  // lists replace, never merge
  EXPECT_EQ(doc.tree["model"]["hidden"], Json::array({32}));
  EXPECT_EQ(doc.tree["method"]["name"], "ce");

  EXPECT_EQ(doc.locations.at("task.epochs").str(), data_name("base.toml") + ":3:10");
  EXPECT_EQ(doc.locations.at("optim.momentum").str(), data_name("base.toml") + ":8:12");
  EXPECT_EQ(doc.locations.at("optim.lr").str(), data_name("child.toml") + ":4:6");
  EXPECT_EQ(doc.locations.at("optim.milestones").str(), data_name("child.toml") + ":5:14");
  EXPECT_EQ(doc.locations.count("optim.milestones.1"), 0u);  // the base's second element is gone
  EXPECT_EQ(doc.locations.count("extends"), 0u);
  EXPECT_EQ(doc.text.find("extends"), 0u);  // the file's own text, not its base's
}

TEST(Extends, ChainsWithPathsRelativeToEachFile) {
  Document doc = load_toml_file(data_file("sub/grandchild.toml"));
  EXPECT_EQ(doc.tree["task"]["epochs"], 9);
  EXPECT_EQ(doc.tree["optim"]["lr"], 0.01);
  EXPECT_EQ(doc.tree["optim"]["momentum"], 0.5);
  EXPECT_EQ(doc.locations.at("task.epochs").str(), data_name("sub/grandchild.toml") + ":2:15");
  EXPECT_EQ(doc.locations.at("optim.lr").str(), data_name("child.toml") + ":4:6");
}

TEST(Extends, CycleIsReportedAtTheExtendsKey) {
  const std::string msg = what_of([] { load_toml_file(data_file("cycle_a.toml")); });
  EXPECT_EQ(msg, data_name("cycle_b.toml") +
                     ":1:11: key 'extends': extends cycle: cycle_a.toml -> cycle_b.toml -> cycle_a.toml");
}

TEST(Extends, MissingBaseNamesIt) {
  const std::string msg = what_of([] { load_toml_file(data_file("missing_base.toml")); });
  EXPECT_EQ(msg.rfind(data_name("missing_base.toml") + ":2:11: key 'extends': cannot read base file '" +
                          data_name("does_not_exist.toml") + "'",
                      0),
            0u)
      << msg;
}

TEST(Extends, MustBeAString) {
  const std::string msg = what_of([] { parse_toml_string("extends = 3\n", "e.toml"); });
  EXPECT_NE(msg.find("e.toml:1:11: key 'extends': expected the path of a base TOML file"), std::string::npos)
      << msg;
}

TEST(ParseCliValue, ReadsLikeTheRightHandSideOfToml) {
  EXPECT_TRUE(parse_cli_value("0.1").is_number_float());
  EXPECT_EQ(parse_cli_value("0.1"), 0.1);
  EXPECT_TRUE(parse_cli_value("3").is_number_integer());
  EXPECT_EQ(parse_cli_value("3"), 3);
  EXPECT_EQ(parse_cli_value("1e-3"), 0.001);
  EXPECT_EQ(parse_cli_value("true"), true);
  EXPECT_EQ(parse_cli_value("[1, 2]"), Json::array({1, 2}));
  EXPECT_EQ(parse_cli_value("\"x y\""), "x y");
  EXPECT_EQ(parse_cli_value("cosine"), "cosine");
  EXPECT_EQ(parse_cli_value(" adam "), "adam");
  EXPECT_EQ(parse_cli_value("{ a = 1 }"), (Json{{"a", 1}}));
  EXPECT_THROW(parse_cli_value("[1,"), std::invalid_argument);
  EXPECT_THROW(parse_cli_value("\"open"), std::invalid_argument);
  EXPECT_THROW(parse_cli_value(""), std::invalid_argument);
}

TEST(Tree, MergeIntoMergesTablesAndReplacesTheRest) {
  Json base = {{"a", {{"x", 1}, {"y", 2}}}, {"l", {1, 2, 3}}, {"s", "keep"}};
  merge_into(base, Json{{"a", {{"y", 20}, {"z", 30}}}, {"l", {9}}});
  EXPECT_EQ(base, (Json{{"a", {{"x", 1}, {"y", 20}, {"z", 30}}}, {"l", {9}}, {"s", "keep"}}));
  merge_into(base, Json{{"a", 5}});
  EXPECT_EQ(base["a"], 5);
}

TEST(Tree, DottedPaths) {
  Json tree = Json::object();
  set_path(tree, "optim.lr", 0.5);
  set_path(tree, "data.noise.kind", "symmetric");
  EXPECT_EQ(tree, (Json{{"optim", {{"lr", 0.5}}}, {"data", {{"noise", {{"kind", "symmetric"}}}}}}));
  ASSERT_NE(get_path(tree, "data.noise.kind"), nullptr);
  EXPECT_EQ(*get_path(tree, "data.noise.kind"), "symmetric");
  EXPECT_EQ(get_path(tree, "data.noise.rate"), nullptr);
  EXPECT_EQ(get_path(tree, "optim.lr.x"), nullptr);
  EXPECT_TRUE(erase_path(tree, "optim.lr"));
  EXPECT_FALSE(erase_path(tree, "optim.lr"));
  EXPECT_EQ(get_path(tree, "optim.lr"), nullptr);
  set_path(tree, "optim.x", 2);
  set_path(tree, "optim.x.deep", 1);  // a scalar in the way becomes a table
  EXPECT_EQ(tree["optim"]["x"], (Json{{"deep", 1}}));
}

TEST(Tree, FlattenKeepsListsAsLeaves) {
  Json tree = {{"a", {{"b", 1}, {"c", {1, 2}}}}, {"d", "x"}};
  auto flat = flatten(tree);
  ASSERT_EQ(flat.size(), 3u);
  EXPECT_EQ(flat.at("a.b"), 1);
  EXPECT_EQ(flat.at("a.c"), Json::array({1, 2}));
  EXPECT_EQ(flat.at("d"), "x");
}

TEST(Tree, OverlayLocationsMergesTablesAndReplacesLists) {
  SourceMap where = {{"", {"base.toml", 0, 0}},
                     {"optim.lr", {"base.toml", 2, 1}},
                     {"optim.momentum", {"base.toml", 3, 1}},
                     {"model.hidden", {"base.toml", 5, 1}},
                     {"model.hidden.0", {"base.toml", 5, 2}},
                     {"model.hidden.1", {"base.toml", 5, 5}}};
  SourceMap over_where = {{"v.optim", {"o.toml", 1, 1}},
                          {"v.optim.lr", {"o.toml", 2, 6}},
                          {"v.model.hidden", {"o.toml", 4, 1}},
                          {"v.model.hidden.0", {"o.toml", 4, 2}}};
  Json over = {{"optim", {{"lr", 1.0}}}, {"model", {{"hidden", {7}}}}};
  overlay_locations(where, over, over_where, "v", "");
  EXPECT_EQ(where.at("optim.lr").str(), "o.toml:2:6");
  EXPECT_EQ(where.at("optim.momentum").str(), "base.toml:3:1");
  EXPECT_EQ(where.at("model.hidden.0").str(), "o.toml:4:2");
  EXPECT_EQ(where.count("model.hidden.1"), 0u);
  EXPECT_EQ(where.at("").str(), "base.toml");
}

TEST(Locate, FallsBackToTheEnclosingTableThenTheFile) {
  SourceMap where = {{"", {"f.toml", 0, 0}}, {"optim", {"f.toml", 4, 1}}};
  EXPECT_EQ(locate(where, "optim.lr").str(), "f.toml:4:1");
  EXPECT_EQ(locate(where, "task.epochs").str(), "f.toml");
  EXPECT_EQ(locate(SourceMap{}, "x").str(), "<command line>");
}

}  // namespace
}  // namespace reglab::config
