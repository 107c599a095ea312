// Keys of the tta paradigm (tta.*) and data.classes: where they apply, their
// defaults, and the checks validation makes before anything runs.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "config/schema.h"
#include "fake_methods.h"

namespace reglab::config {
namespace {

std::vector<std::string> issues_of(const std::string& text, Json* resolved = nullptr) {
  Document doc = parse_toml_string(text, "t.toml");
  std::vector<Issue> issues;
  validate_trial(doc.tree, doc.locations, test::fake_lookup, test::fake_names, issues);
  if (resolved) *resolved = doc.tree;
  std::vector<std::string> out;
  for (const Issue& issue : issues) out.push_back(issue.str());
  return out;
}

// A valid tta trial (the fake `tent` declares the tta paradigm), then `extra`.
std::string tta_trial(const std::string& extra) {
  return "task.paradigm = \"tta\"\ninit.from = \"stage.toml\"\n[method]\nname = \"tent\"\n" + extra;
}

::testing::AssertionResult has(const std::vector<std::string>& issues, const std::string& fragment) {
  std::string all;
  for (const auto& i : issues) {
    if (i.find(fragment) != std::string::npos) return ::testing::AssertionSuccess();
    all += "\n  " + i;
  }
  return ::testing::AssertionFailure() << "no issue contains \"" << fragment << "\"; issues:" << all;
}

TEST(TtaKeys, BelongToTheTtaParadigmAndGetTheirDefaults) {
  EXPECT_EQ(key_paradigms("tta.severity"), static_cast<std::uint32_t>(kTta));
  EXPECT_EQ(key_paradigms("data.classes"), static_cast<std::uint32_t>(kClassify | kTta));
  Json resolved;
  EXPECT_TRUE(issues_of(tta_trial(""), &resolved).empty());
  EXPECT_EQ(resolved["tta"]["protocol"], "standard");
  EXPECT_EQ(resolved["tta"]["severity"], 5);
  EXPECT_EQ(resolved["tta"]["batch_size"], 200);
  EXPECT_EQ(resolved["tta"]["held_out"], 2000);
  EXPECT_EQ(resolved["tta"]["unknown_ratio"], 0.0);
  EXPECT_EQ(resolved["tta"]["corruptions"], Json::array());
  EXPECT_FALSE(resolved["data"].contains("classes"));
  // A classify trial neither gets nor accepts them.
  Json classify;
  EXPECT_TRUE(issues_of("[method]\nname = \"ce\"\n", &classify).empty());
  EXPECT_FALSE(classify.contains("tta"));
  EXPECT_FALSE(classify["data"].contains("classes"));
  const auto refused = issues_of("tta.severity = 3\n[method]\nname = \"ce\"\n");
  ASSERT_EQ(refused.size(), 1u);
  EXPECT_EQ(refused[0].rfind("t.toml:1:", 0), 0u) << refused[0];
  EXPECT_NE(refused[0].find("key 'tta.severity': only applies to the paradigm tta (this trial's "
                            "task.paradigm is \"classify\")"),
            std::string::npos)
      << refused[0];
  // data.classes is a classify option too.
  EXPECT_TRUE(issues_of("[data]\nclasses = [3, 1]\n[method]\nname = \"ce\"\n").empty());
}

TEST(TtaKeys, ATtaTrialNeedsASourceStage) {
  const auto issues = issues_of("task.paradigm = \"tta\"\n[method]\nname = \"tent\"\n");
  ASSERT_EQ(issues.size(), 1u);
  EXPECT_NE(issues[0].find("key 'init.from': a tta trial adapts a trained source model"), std::string::npos)
      << issues[0];
}

TEST(TtaKeys, BadValuesNameFileLineAndKey) {
  EXPECT_TRUE(has(issues_of(tta_trial("[tta]\nseverity = 0\n")), "t.toml:6:"));
  EXPECT_TRUE(has(issues_of(tta_trial("[tta]\nseverity = 0\n")), "key 'tta.severity': expected a value in [1, 5], got 0"));
  EXPECT_TRUE(has(issues_of(tta_trial("[tta]\ncorruptions = [\"fog\", \"fogg\"]\n")),
                  "key 'tta.corruptions': element 1: expected one of"));
  EXPECT_TRUE(has(issues_of(tta_trial("[tta]\ncorruptions = [\"fog\", \"fog\"]\n")),
                  "key 'tta.corruptions': corruption \"fog\" is listed twice"));
  EXPECT_TRUE(has(issues_of(tta_trial("[tta]\nprotocol = \"episodic\"\n")), "key 'tta.protocol': expected one of"));
  EXPECT_TRUE(has(issues_of(tta_trial("[data]\ndataset = \"synthetic\"\n")),
                  "key 'data.dataset': the tta paradigm corrupts Fashion-MNIST test images"));
  EXPECT_TRUE(has(issues_of(tta_trial("[tta]\nunknown_ratio = 0.2\n")),
                  "key 'tta.unknown_ratio': mixes in samples of the classes the source model never saw"));
  EXPECT_TRUE(issues_of(tta_trial("[tta]\nunknown_ratio = 0.2\n[data]\nclasses = [0, 1, 2]\n")).empty());
  EXPECT_TRUE(has(issues_of(tta_trial("[tta]\nunknown_ratio = 0.95\n[data]\nclasses = [0, 1]\n")),
                  "key 'tta.unknown_ratio': expected a value in [0.0, 0.9], got 0.95"));
  EXPECT_TRUE(has(issues_of(tta_trial("[tta]\nheld_out = 500\n[data]\ntest_limit = 500\n")),
                  "key 'tta.held_out': sets aside 500 test samples but data.test_limit keeps only 500"));
}

TEST(DataClassesKey, OutOfRangeRepeatedOrTooFewClassesAreRefused) {
  const auto out_of_range = issues_of("[data]\nclasses = [0, 10]\n[method]\nname = \"ce\"\n");
  ASSERT_EQ(out_of_range.size(), 1u);
  EXPECT_EQ(out_of_range[0].rfind("t.toml:2:", 0), 0u) << out_of_range[0];
  EXPECT_NE(out_of_range[0].find("key 'data.classes': class 10 is out of range: the dataset has 10 classes (0..9)"),
            std::string::npos)
      << out_of_range[0];
  EXPECT_TRUE(has(issues_of("[data]\nclasses = [2, 2]\n[method]\nname = \"ce\"\n"), "class 2 is listed twice"));
  EXPECT_TRUE(has(issues_of("[data]\nclasses = [4]\n[method]\nname = \"ce\"\n"), "a classifier needs at least 2"));
  EXPECT_TRUE(has(issues_of("[data]\nclasses = [-1, 2]\n[method]\nname = \"ce\"\n"), "expected a value >= 0"));
  // Synthetic data has data.synthetic.classes classes.
  EXPECT_TRUE(has(issues_of("[data]\ndataset = \"synthetic\"\nclasses = [0, 4]\n[method]\nname = \"ce\"\n"),
                  "the dataset has 4 classes"));
  EXPECT_TRUE(issues_of("[data]\ndataset = \"synthetic\"\nclasses = [0, 3]\n[method]\nname = \"ce\"\n").empty());
  // Not in mil trials.
  EXPECT_TRUE(has(issues_of("task.paradigm = \"mil\"\n[data]\nclasses = [0, 1]\n[method]\nname = \"ce\"\n"),
                  "key 'data.classes': only applies to the paradigm classify, tta"));
}

}  // namespace
}  // namespace reglab::config
