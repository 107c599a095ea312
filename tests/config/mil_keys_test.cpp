// Keys of the mil paradigm: present (with defaults) only in mil trials,
// refused elsewhere, and checked against each other.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "config/schema.h"
#include "fake_methods.h"

namespace reglab::config {
namespace {

// The issues of a trial, without the one about the fake methods not
// declaring the mil paradigm (the key checks do not depend on it).
std::vector<std::string> issues_of(const std::string& text, Json* resolved = nullptr) {
  Document doc = parse_toml_string(text, "m.toml");
  std::vector<Issue> issues;
  validate_trial(doc.tree, doc.locations, test::fake_lookup, test::fake_names, issues);
  if (resolved) *resolved = doc.tree;
  std::vector<std::string> out;
  for (const Issue& issue : issues)
    if (issue.key != "method.name") out.push_back(issue.str());
  return out;
}

TEST(MilKeys, BelongToTheMilParadigmOnly) {
  EXPECT_EQ(key_paradigms("data.bags.targets"), static_cast<std::uint32_t>(kMil));
  EXPECT_EQ(key_paradigms("model.mil.heads"), static_cast<std::uint32_t>(kMil));
  EXPECT_EQ(key_paradigms("task.bags_per_step"), static_cast<std::uint32_t>(kMil));
  EXPECT_EQ(key_paradigms("task.epochs"), 0u);
  // The image classifier's keys apply to the image paradigms, not to the policy ones.
  EXPECT_EQ(key_paradigms("model.hidden"), static_cast<std::uint32_t>(kClassify | kMil | kTta));
}

TEST(MilKeys, AMilTrialGetsTheirDefaults) {
  Json resolved;
  EXPECT_TRUE(issues_of("task.paradigm = \"mil\"\n[method]\nname = \"ce\"\n", &resolved).empty());
  EXPECT_EQ(resolved["data"]["bags"]["targets"], Json::array({9}));
  EXPECT_EQ(resolved["data"]["bags"]["size_mean"], 10.0);
  EXPECT_EQ(resolved["data"]["bags"]["size_std"], 2.0);
  EXPECT_EQ(resolved["data"]["bags"]["min_size"], 1);
  EXPECT_EQ(resolved["data"]["bags"]["train"], 200);
  EXPECT_EQ(resolved["data"]["bags"]["test"], 50);
  EXPECT_EQ(resolved["model"]["mil"]["attention"], "gated");
  EXPECT_EQ(resolved["model"]["mil"]["heads"], 1);
  EXPECT_EQ(resolved["model"]["mil"]["attention_hidden"], 128);
  EXPECT_EQ(resolved["task"]["bags_per_step"], 1);
  EXPECT_EQ(resolved["task"]["schedule_per_step"], true);
}

TEST(MilKeys, AreRefusedInAClassifyTrial) {
  Json resolved;
  const std::vector<std::string> issues =
      issues_of("[data]\nbags = { train = 10 }\n[method]\nname = \"ce\"\n", &resolved);
  ASSERT_EQ(issues.size(), 1u);
  EXPECT_EQ(issues[0], "m.toml:2:18: key 'data.bags.train': only applies to the paradigm mil (this trial's "
                       "task.paradigm is \"classify\")");
  EXPECT_EQ(resolved["data"]["bags"].size(), 1u);  // nothing filled in beside it
  EXPECT_FALSE(resolved["model"].contains("mil"));
}

TEST(MilKeys, EmptyBagsOutOfRangeTargetsAndIndivisibleHeads) {
  const std::vector<std::string> issues = issues_of(
      "task.paradigm = \"mil\"\n"                               // 1
      "data.bags.min_size = 0\n"                                // 2
      "data.bags.targets = [9, -1]\n"                           // 3
      "model.hidden = [100]\n"                                  // 4
      "model.mil.heads = 8\n"                                   // 5
      "[method]\nname = \"ce\"\n");
  ASSERT_EQ(issues.size(), 3u) << ::testing::PrintToString(issues);
  EXPECT_EQ(issues[0], "m.toml:2:22: key 'data.bags.min_size': expected a value >= 1, got 0");
  EXPECT_EQ(issues[1], "m.toml:3:25: key 'data.bags.targets': element 1: expected a value in [0, 9], got -1");
  EXPECT_EQ(issues[2], "m.toml:5:19: key 'model.mil.heads': 8 heads do not divide the instance embedding size 100 "
                       "(the last of model.hidden): each head attends over an equal slice of it");
}

TEST(MilKeys, CrossChecksWithDefaults) {
  // The default width (256) and 3 heads: reported at the heads.
  EXPECT_EQ(issues_of("task.paradigm = \"mil\"\nmodel.mil.heads = 3\n[method]\nname = \"ce\"\n").size(), 1u);
  EXPECT_TRUE(issues_of("task.paradigm = \"mil\"\nmodel.mil.heads = 4\n[method]\nname = \"ce\"\n").empty());
  const std::vector<std::string> empty_targets =
      issues_of("task.paradigm = \"mil\"\ndata.bags.targets = []\n[method]\nname = \"ce\"\n");
  ASSERT_EQ(empty_targets.size(), 1u);
  EXPECT_NE(empty_targets[0].find("key 'data.bags.targets': lists no class"), std::string::npos);
  const std::vector<std::string> no_width =
      issues_of("task.paradigm = \"mil\"\nmodel.hidden = []\n[method]\nname = \"ce\"\n");
  ASSERT_EQ(no_width.size(), 1u);
  EXPECT_NE(no_width[0].find("key 'model.hidden': the mil paradigm needs at least one width"), std::string::npos);
  const std::vector<std::string> noise =
      issues_of("task.paradigm = \"mil\"\ndata.noise = { kind = \"symmetric\", rate = 0.2 }\n[method]\nname = \"ce\"\n");
  ASSERT_EQ(noise.size(), 1u);
  EXPECT_NE(noise[0].find("key 'data.noise.kind': label noise is not available in the mil paradigm"),
            std::string::npos);
}

}  // namespace
}  // namespace reglab::config
