// The probe for rlvr methods: rewards from groups of answers and the policy
// loss of given logits, without a policy. Expected values are worked out by
// hand below; the request is checked before any hook runs.
#include <gtest/gtest.h>

#include <cmath>
#include <nlohmann/json.hpp>
#include <string>

#include "methods/method_harness.h"
#include "probe/probe.h"

namespace reglab::testing {
namespace {

using nlohmann::json;

std::string error_of(const json& request) {
  try {
    probe::run_probe(request);
  } catch (const std::exception& e) {
    return e.what();
  }
  return "(no error)";
}

// One response of one token over a two-token vocabulary, logits [0, 0], the
// sampled token 1, old = reference log-prob log(1/2), advantage 1. Ratio 1
// and k3 KL 0, so grpo's token loss (entropy coefficient 0) is −A·ρ = −1,
// aggregated as the fork's token-mean Σ/(Σmask + 1e-8), and its gradient
// −A·dρ/dz = −(onehot(1) − softmax(z)) = [0.5, −0.5] over the same
// denominator; the KL term's gradient 1 − e^(ref − lp) vanishes at ref = lp.
json one_token_loss() {
  const double half = std::log(0.5);
  return {{"logits", {{{0.0, 0.0}}}}, {"tokens", {{1}}},     {"old_log_prob", {{half}}},
          {"ref_log_prob", {{half}}}, {"advantages", {1.0}}, {"response_mask", {{1}}}};
}

TEST(RlvrProbe, GrpoRewardsWithTheTruthAndAHandWorkedLoss) {
  const json out = probe::run_probe(
      {{"method", "grpo"},
       {"paradigm", "rlvr"},
       {"steps", {{{"groups", {{{"answers", {3, nullptr, 4, 3}}, {"truth", 3}}}}, {"loss", one_token_loss()}}}}});
  EXPECT_EQ(out.at("paradigm"), "rlvr");
  EXPECT_EQ(out.at("requirements").at("ground_truth"), true);
  EXPECT_EQ(out.at("requirements").at("embeddings"), false);
  const json& step = out.at("steps").at(0);
  EXPECT_EQ(step.at("rewards"), json({{1.0, 0.0, 0.0, 1.0}}));
  const double denominator = 1.0 + 1e-8;
  EXPECT_NEAR(step.at("loss").get<double>(), -1.0 / denominator, 1e-15);
  EXPECT_NEAR(step.at("clip_fraction").get<double>(), 0.0, 1e-12);
  const json& grad = step.at("grad_logits");
  EXPECT_NEAR(grad[0][0][0].get<double>(), 0.5 / denominator, 1e-15);
  EXPECT_NEAR(grad[0][0][1].get<double>(), -0.5 / denominator, 1e-15);
}

// TTRL never sees the truth: the majority (12, three votes of five, "no
// answer" one) is the label, whatever truth the request gives.
TEST(RlvrProbe, TtrlVotesWithoutTheTruth) {
  const json out = probe::run_probe(
      {{"method", "ttrl"}, {"steps", {{{"groups", {{{"answers", {12, 12, nullptr, 7, 12}}, {"truth", 7}}}}}}}});
  EXPECT_EQ(out.at("requirements").at("ground_truth"), false);
  EXPECT_EQ(out.at("steps").at(0).at("rewards"), json({{1.0, 1.0, 0.0, 0.0, 1.0}}));
  EXPECT_FALSE(out.at("steps").at(0).contains("loss"));
}

TEST(RlvrProbe, MalformedRequestsAreRefused) {
  EXPECT_NE(error_of({{"method", "grpo"}, {"steps", {{{"groups", {{{"answers", {1, 2}}}}}}}}})
                .find("steps[0].groups[0].truth is missing: the method reads the true answer"),
            std::string::npos);
  EXPECT_NE(error_of({{"method", "evol_rl"}, {"steps", {{{"groups", {{{"answers", {1, 2}}}}}}}}})
                .find("steps[0].groups[0].embeddings is missing"),
            std::string::npos);
  EXPECT_NE(error_of({{"method", "evol_rl"},
                      {"steps", {{{"groups", {{{"answers", {1, 2}}, {"embeddings", {{1.0, 0.0}}}}}}}}}})
                .find("embeddings must be [N, D] with one row per answer (N = 2)"),
            std::string::npos);
  EXPECT_NE(error_of({{"method", "ttrl"}, {"steps", {{{"groups", {{{"answers", {1, "x"}}}}}}}}})
                .find("answers[1] must be an integer or null"),
            std::string::npos);
  json loss = one_token_loss();
  loss["tokens"] = {{2}};
  EXPECT_NE(error_of({{"method", "ttrl"}, {"steps", {{{"loss", loss}}}}}).find("tokens must hold integers in [0, 2)"),
            std::string::npos);
  loss = one_token_loss();
  loss["advantages"] = {1.0, 2.0};
  EXPECT_NE(error_of({{"method", "ttrl"}, {"steps", {{{"loss", loss}}}}}).find("advantages must be [B] with B = 1"),
            std::string::npos);
  loss = one_token_loss();
  loss["old_log_prob"] = {{0.1, 0.2}};
  EXPECT_NE(error_of({{"method", "ttrl"}, {"steps", {{{"loss", loss}}}}}).find("old_log_prob must be [B, T] = [1, 1]"),
            std::string::npos);
  EXPECT_NE(error_of({{"method", "ttrl"}, {"steps", {json::object()}}}).find("has neither groups nor loss"),
            std::string::npos);
  EXPECT_NE(error_of({{"method", "ttrl"}, {"votes", 3}, {"steps", {{{"loss", one_token_loss()}}}}}).find("votes"),
            std::string::npos);
  EXPECT_NE(error_of({{"method", "tent"}, {"paradigm", "rlvr"}, {"steps", json::array()}})
                .find("does not support the rlvr paradigm"),
            std::string::npos);
}

}  // namespace
}  // namespace reglab::testing
