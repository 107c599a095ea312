// Golden tests for plugins/evol_rl/novelty.h, EVOL-RL's group reward.
//
// Verified against YujunZhou/EVOL-RL @ 19896e0,
// verl/verl/workers/reward_manager/semantic_novelty.py: the methods
// _compute_novelty_rewards, _compute_similarity_based_rewards,
// _extract_after_think and _check_boxed_content_has_numbers of
// SemanticTTRLRewardManager, loaded on their own from the file and run with
// Debian's /usr/bin/python3 (numpy, python3-torch 1.13) on a stand-in object
// whose embedding call returns the float32 rows written in each test. Each
// valid response was the text "resp<letter> \boxed{<answer>}" and each invalid
// one "resp<letter> no answer" (no \boxed, so the official check marks it
// invalid). The base rewards passed in were TTRL's (PRIME-RL/TTRL @ 3e2cc93,
// ttt_metrics.py): Counter over the extracted answers ("" for none),
// most_common(1) as the label, 1.0 where the answer equals it, else 0.0.
//
// Where the summary of the method and the code could be read differently,
// the code decides (and these tests hold the code's numbers):
//   - a group of a single response returns its base reward (1.0);
//   - "no answer" takes part in the vote, so it can win; the valid responses
//     are then all in the minority;
//   - "all equal" compares the raw novelties exactly (max == min).
#include <gtest/gtest.h>

#include <torch/types.h>

#include <cmath>
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "../../plugins/evol_rl/novelty.h"

namespace reglab::testing {
namespace {

using Answers = std::vector<std::optional<std::string>>;

torch::Tensor rows(const std::vector<std::vector<float>>& r) {
  std::vector<float> flat;
  for (const auto& row : r) flat.insert(flat.end(), row.begin(), row.end());
  return torch::tensor(flat, torch::kFloat).reshape({static_cast<std::int64_t>(r.size()), -1});
}

void expect_rewards(const evol_rl::GroupRewards& got, const std::vector<double>& expected) {
  ASSERT_EQ(got.reward.size(), expected.size());
  for (std::size_t i = 0; i < expected.size(); ++i) EXPECT_NEAR(got.reward[i], expected[i], 1e-6) << "response " << i;
}

TEST(EvolRlNovelty, MixedGroupWithAnInvalidResponse) {
  // Label "12" (three votes): majority {0, 1, 3}, minority {2, 5}, 4 invalid.
  // Response 2's cosine with 0 is negative and is clipped to 0.
  const Answers a = {"12", "12", "7", "12", std::nullopt, "7"};
  const auto r = evol_rl::novelty_rewards(a, rows({{1.0f, 0.2f, 0.0f}, {0.9f, 0.4f, 0.1f}, {-1.0f, 0.5f, 0.3f},
                                                   {0.5f, 0.5f, 0.5f}, {0.3f, -0.2f, 0.9f}, {0.2f, 1.0f, -0.4f}}));
  expect_rewards(r, {0.614310165, 0.5, -0.5, 1.0, -1.0, -1.0});
  EXPECT_EQ(r.majority, (std::vector<bool>{true, true, false, true, false, false}));
  EXPECT_TRUE(std::isnan(r.novelty[4]));
}

TEST(EvolRlNovelty, RawNoveltyByHand) {
  // Valid rows e0 = (1, 0), e1 = (0.8, 0.6), e2 = (0.6, 0.8): s01 = 0.8,
  // s02 = 0.6, s12 = 0.96. Majority {0, 1}: u0 = 1 − (0.5·0.8 + 0.5·0.8) = 0.2,
  // u1 = 1 − (0.5·0.8 + 0.5·0.96) = 0.12; minority {2} alone: the mean runs
  // over both, u2 = 1 − (0.5·0.78 + 0.5·0.96) = 0.13. Rewards: ũ0 = 1 → 1.0,
  // ũ1 = 0 → 0.5, minority alone → −0.5 (also the official code's output).
  const Answers a = {"1", "1", "2"};
  const auto r = evol_rl::novelty_rewards(a, rows({{1, 0}, {0.8f, 0.6f}, {0.6f, 0.8f}}));
  expect_rewards(r, {1.0, 0.5, -0.5});
  EXPECT_NEAR(r.novelty[0], 0.2, 1e-6);
  EXPECT_NEAR(r.novelty[1], 0.12, 1e-6);
  EXPECT_NEAR(r.novelty[2], 0.13, 1e-6);
}

TEST(EvolRlNovelty, TieInTheVoteGoesToTheFirstSeen) {
  const Answers a = {"7", "12", "12", "7"};
  const auto r = evol_rl::novelty_rewards(a, rows({{1, 0, 0}, {0.8f, 0.6f, 0}, {0, 1, 0}, {0.6f, 0, 0.8f}}));
  expect_rewards(r, {0.5, -1.0, -0.5, 1.0});
  EXPECT_EQ(r.majority, (std::vector<bool>{true, false, false, true}));
}

TEST(EvolRlNovelty, OneValidResponseGivesEveryoneMinusOne) {
  const Answers a = {std::nullopt, "3", std::nullopt};
  expect_rewards(evol_rl::novelty_rewards(a, rows({{1, 0}, {0, 1}, {1, 1}})), {-1.0, -1.0, -1.0});
  const Answers none = {std::nullopt, std::nullopt};
  expect_rewards(evol_rl::novelty_rewards(none, rows({{1, 0}, {0, 1}})), {-1.0, -1.0});
}

TEST(EvolRlNovelty, NoAnswerWinsTheVote) {
  // "no answer" has two votes: the valid pair {1, 3} is the minority; as a
  // pair its novelties are equal, hence −0.75 each.
  const Answers a = {std::nullopt, "3", std::nullopt, "4"};
  const auto r = evol_rl::novelty_rewards(a, rows({{1, 0, 0}, {0.6f, 0.8f, 0}, {0, 0, 1}, {0.28f, 0.96f, 0}}));
  expect_rewards(r, {-1.0, -0.75, -1.0, -0.75});
  EXPECT_EQ(r.majority, (std::vector<bool>{true, false, true, false}));
}

TEST(EvolRlNovelty, AllNoveltiesEqualGiveTheMidpoints) {
  const Answers a = {"1", "1", "1", "2", "2"};
  const auto r = evol_rl::novelty_rewards(a, rows({{0.3f, 0.4f}, {0.3f, 0.4f}, {0.3f, 0.4f}, {0.3f, 0.4f}, {0.3f, 0.4f}}));
  expect_rewards(r, {0.75, 0.75, 0.75, -0.75, -0.75});
}

TEST(EvolRlNovelty, MajorityAloneGetsOne) {
  // Three different answers: "1" wins the three-way tie and is alone.
  const Answers a = {"1", "2", "3"};
  const auto r = evol_rl::novelty_rewards(a, rows({{1, 0, 0}, {0.6f, 0.8f, 0}, {0.8f, 0, 0.6f}}));
  expect_rewards(r, {1.0, -0.5, -1.0});
}

TEST(EvolRlNovelty, GroupOfOneKeepsTheVoteReward) {
  const std::vector<std::optional<std::int64_t>> a = {5};
  expect_rewards(evol_rl::novelty_rewards(a, rows({{1, 2}})), {1.0});
}

TEST(EvolRlNovelty, RejectsMismatchedEmbeddings) {
  const Answers a = {"1", "2"};
  EXPECT_THROW(evol_rl::novelty_rewards(a, rows({{1, 0}})), std::invalid_argument);
  EXPECT_THROW(evol_rl::novelty_rewards(Answers{}, torch::zeros({0, 2})), std::invalid_argument);
}

}  // namespace
}  // namespace reglab::testing
