// Sampling: determinism, the KV-cached sampler against the naive one, the
// nucleus on a hand-computed distribution, log-probs, and end of sequence.
// Distributions with known probabilities come from a policy whose final
// LayerNorm has weight 0 (its output is its bias whatever the input), so the
// logits are a fixed vector we choose.
#include "models/policy.h"
#include "models/sampler.h"

#include <ATen/CPUGeneratorImpl.h>
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <stdexcept>
#include <vector>

#include "engine/policy_fixture.h"

namespace {

using reglab::models::choose_tokens;
using reglab::models::left_pad;
using reglab::models::nucleus_mask;
using reglab::models::Policy;
using reglab::models::PolicyOptions;
using reglab::models::sample;
using reglab::models::sample_naive;
using reglab::models::SampleResult;
using reglab::models::SamplerOptions;

constexpr std::int64_t kEos = 2;
constexpr std::int64_t kPad = 0;

at::Generator seeded(std::uint64_t seed) { return at::make_generator<at::CPUGeneratorImpl>(seed); }

PolicyOptions small_options(bool tied = true) { return reglab::testing::small_policy_options(64, tied); }

Policy random_policy(std::uint64_t seed) { return reglab::testing::random_small_policy(seed); }

// Logits = `logits` at every position, whatever the input.
Policy constant_policy(const std::vector<double>& logits) {
  torch::manual_seed(0);
  Policy policy(small_options(/*tied=*/false));
  torch::NoGradGuard no_grad;
  auto p = policy->named_parameters();
  p["final_norm.weight"].zero_();
  p["final_norm.bias"].zero_();
  p["final_norm.bias"][0] = 1.0;
  p["output.weight"].zero_();
  p["output.weight"].select(1, 0).copy_(torch::tensor(logits, torch::kFloat));
  return policy;
}

reglab::models::PaddedBatch prompts() {
  return left_pad({{1, 5, 6, 13, 7, 19}, {1, 9, 19}, {1, 4, 4, 4, 14, 3, 19}, {1, 12, 15, 8, 19}}, kPad);
}

SamplerOptions options(double temperature, double top_p, std::int64_t max_new) {
  SamplerOptions o;
  o.temperature = temperature;
  o.top_p = top_p;
  o.max_new_tokens = max_new;
  o.eos_id = kEos;
  o.pad_id = kPad;
  return o;
}

TEST(Sampler, LeftPadPutsPadsFirst) {
  auto b = left_pad({{4, 5}, {6, 7, 8}}, kPad);
  EXPECT_TRUE(torch::equal(b.tokens, torch::tensor({0, 4, 5, 6, 7, 8}, torch::kLong).view({2, 3})));
  EXPECT_TRUE(torch::equal(b.mask, torch::tensor({false, true, true, true, true, true}).view({2, 3})));
}

TEST(Sampler, SameSeedSameTokensOtherSeedOtherTokens) {
  auto policy = random_policy(1);
  auto batch = prompts();
  auto o = options(1.0, 1.0, 24);
  auto g1 = seeded(7), g2 = seeded(7), g3 = seeded(8);
  auto a = sample(policy, batch.tokens, batch.mask, o, g1);
  auto b = sample(policy, batch.tokens, batch.mask, o, g2);
  auto c = sample(policy, batch.tokens, batch.mask, o, g3);
  EXPECT_TRUE(torch::equal(a.response, b.response));
  EXPECT_TRUE(torch::equal(a.logprobs, b.logprobs));
  EXPECT_FALSE(a.response.sizes() == c.response.sizes() && torch::equal(a.response, c.response));
}

TEST(Sampler, KvCachedEqualsNaive) {
  auto policy = random_policy(2);
  auto batch = prompts();
  for (auto [t, top_p] : {std::pair{1.0, 1.0}, std::pair{0.7, 0.9}, std::pair{1.3, 0.5}}) {
    auto o = options(t, top_p, 30);
    auto g1 = seeded(11), g2 = seeded(11);
    auto kv = sample(policy, batch.tokens, batch.mask, o, g1);
    auto naive = sample_naive(policy, batch.tokens, batch.mask, o, g2);
    ASSERT_EQ(kv.response.sizes(), naive.response.sizes()) << "T " << t;
    EXPECT_TRUE(torch::equal(kv.response, naive.response)) << "T " << t;
    EXPECT_TRUE(torch::equal(kv.response_mask, naive.response_mask)) << "T " << t;
    EXPECT_LT((kv.logprobs - naive.logprobs).abs().max().item<double>(), 1e-5) << "T " << t;
    EXPECT_TRUE(torch::equal(kv.sequences, naive.sequences));
  }
  auto o = options(1.0, 1.0, 30);
  o.greedy = true;
  auto g1 = seeded(0), g2 = seeded(0);
  EXPECT_TRUE(torch::equal(sample(policy, batch.tokens, batch.mask, o, g1).response,
                           sample_naive(policy, batch.tokens, batch.mask, o, g2).response));
}

TEST(Sampler, TinyTemperatureAgreesWithGreedy) {
  auto policy = random_policy(3);
  auto batch = prompts();
  auto cold = options(1e-4, 1.0, 30);
  auto greedy = options(1.0, 1.0, 30);
  greedy.greedy = true;
  auto g1 = seeded(5), g2 = seeded(6);
  auto a = sample(policy, batch.tokens, batch.mask, cold, g1);
  auto b = sample(policy, batch.tokens, batch.mask, greedy, g2);
  ASSERT_EQ(a.response.sizes(), b.response.sizes());
  EXPECT_TRUE(torch::equal(a.response, b.response));
  // At T → 0 the chosen token carries nearly all the mass (a near tie of
  // logits, gap 1e-4, still leaves its rival e^-1 of it, so test the mean).
  auto p_chosen = (a.logprobs.exp() * a.response_mask).sum() / a.response_mask.sum();
  EXPECT_GT(p_chosen.item<double>(), 0.99);
}

TEST(Sampler, NucleusKeepsExactlyTheSmallestPrefixReachingTopP) {
  // Sorted: 0.5 (id 1), 0.2 (id 3), 0.15 (id 4), 0.1 (id 0), 0.05 (id 2); mass
  // before each: 0, 0.5, 0.7, 0.85, 0.95.
  auto probs = torch::tensor({0.1, 0.5, 0.05, 0.2, 0.15}, torch::kDouble).view({1, 5});
  auto keep = [&](double p) { return nucleus_mask(probs, p).view({5}); };
  EXPECT_TRUE(torch::equal(keep(0.75), torch::tensor({false, true, false, true, true})));
  EXPECT_TRUE(torch::equal(keep(0.5), torch::tensor({false, true, false, false, false})));  // 0.5 reaches 0.5
  EXPECT_TRUE(torch::equal(keep(0.51), torch::tensor({false, true, false, true, false})));
  EXPECT_TRUE(torch::equal(keep(0.1), torch::tensor({false, true, false, false, false})));
  EXPECT_TRUE(torch::equal(keep(1.0), torch::ones({5}, torch::kBool)));
}

TEST(Sampler, SamplesFromTheRenormalisedNucleus) {
  // 40,000 rows of the distribution above with top_p 0.75: ids 1, 3, 4 with
  // 0.5/0.85, 0.2/0.85, 0.15/0.85 = 0.5882, 0.2353, 0.1765; ids 0 and 2 never.
  // One row's frequency has standard deviation ≤ √(0.25/40000) = 0.0025.
  auto probs = torch::tensor({0.1, 0.5, 0.05, 0.2, 0.15}, torch::kDouble);
  auto logits = probs.log().to(torch::kFloat).unsqueeze(0).expand({40000, 5}).contiguous();
  auto o = options(1.0, 0.75, 1);
  auto g = seeded(3);
  auto choice = choose_tokens(logits, o, g);
  auto counts = torch::bincount(choice.tokens, {}, 5).to(torch::kDouble) / 40000.0;
  const std::vector<double> expected{0.0, 0.5 / 0.85, 0.0, 0.2 / 0.85, 0.15 / 0.85};
  for (int i = 0; i < 5; ++i) EXPECT_NEAR(counts[i].item<double>(), expected[i], 0.012) << "id " << i;
  EXPECT_EQ(counts[0].item<double>(), 0.0);
  EXPECT_EQ(counts[2].item<double>(), 0.0);
  // The log-prob is the untruncated log p at T = 1: log 0.5 for id 1.
  auto first_one = (choice.tokens == 1).nonzero()[0][0].item<std::int64_t>();
  EXPECT_NEAR(choice.logprobs[first_one].item<double>(), std::log(0.5), 1e-6);
}

TEST(Sampler, LogProbsAreTemperatureLogSoftmaxAtSampledIds) {
  auto policy = random_policy(4);
  auto batch = prompts();
  const double t = 0.8;
  auto o = options(t, 0.95, 20);
  auto g = seeded(9);
  auto r = sample(policy, batch.tokens, batch.mask, o, g, /*keep_logits=*/true);
  auto expected = torch::log_softmax(r.logits / t, -1).gather(-1, r.response.unsqueeze(-1)).squeeze(-1);
  EXPECT_LT(((r.logprobs - expected) * r.response_mask).abs().max().item<double>(), 1e-6);
  // And a full forward pass on the returned sequence reproduces them, as a
  // PPO loss recomputes them: logits at column T_p − 1 + j predict response j.
  torch::NoGradGuard no_grad;
  const auto tp = batch.tokens.size(1), n = r.response.size(1);
  auto full = policy->forward(r.sequences, r.attention_mask).logits.slice(1, tp - 1, tp - 1 + n);
  auto recomputed = torch::log_softmax(full / t, -1).gather(-1, r.response.unsqueeze(-1)).squeeze(-1);
  EXPECT_LT(((r.logprobs - recomputed) * r.response_mask).abs().max().item<double>(), 1e-5);
}

TEST(Sampler, EosStopsARowAndMasksTheRest) {
  // p(eos) = 0.25, p(id 5) = 0.75, everything else e^-40 relative.
  std::vector<double> logits(20, -40.0);
  logits[kEos] = std::log(0.25);
  logits[5] = std::log(0.75);
  auto policy = constant_policy(logits);
  auto batch = left_pad(std::vector<std::vector<std::int64_t>>(16, {1, 3, 19}), kPad);
  auto o = options(1.0, 1.0, 40);
  auto g = seeded(21);
  SampleResult r = sample(policy, batch.tokens, batch.mask, o, g);
  const auto b = r.response.size(0), n = r.response.size(1);
  ASSERT_LT(n, 40);  // every row met eos (chance of not: 16·0.75^40 ≈ 1e-4)
  std::int64_t longest = 0;
  for (std::int64_t i = 0; i < b; ++i) {
    std::int64_t eos_at = -1;
    for (std::int64_t j = 0; j < n; ++j) {
      const auto tok = r.response[i][j].item<std::int64_t>();
      const auto m = r.response_mask[i][j].item<double>();
      const auto lp = r.logprobs[i][j].item<double>();
      if (eos_at < 0) {
        EXPECT_EQ(m, 1.0);
        EXPECT_TRUE(tok == kEos || tok == 5) << tok;
        EXPECT_NEAR(lp, tok == kEos ? std::log(0.25) : std::log(0.75), 1e-6);
        if (tok == kEos) eos_at = j;
      } else {
        EXPECT_EQ(tok, kPad);
        EXPECT_EQ(m, 0.0);
        EXPECT_EQ(lp, 0.0);
      }
    }
    ASSERT_GE(eos_at, 0) << "row " << i;
    longest = std::max(longest, eos_at + 1);
  }
  EXPECT_EQ(n, longest);  // stops as soon as the last row ends
  EXPECT_GT(r.response_mask.sum(1).std().item<double>(), 0.0);  // rows ended at different steps

  // At T = 0.5 the kept probabilities are ∝ p²: 0.0625 : 0.5625 = 0.1 : 0.9.
  auto cold = options(0.5, 1.0, 40);
  auto g2 = seeded(22);
  auto c = sample(policy, batch.tokens, batch.mask, cold, g2);
  auto ids = c.response.masked_select(c.response_mask.gt(0));
  auto lps = c.logprobs.masked_select(c.response_mask.gt(0));
  for (std::int64_t k = 0; k < ids.size(0); ++k)
    EXPECT_NEAR(lps[k].item<double>(), ids[k].item<std::int64_t>() == kEos ? std::log(0.1) : std::log(0.9), 1e-5);

  // Greedy never picks eos here: every row runs the full length.
  auto greedy = options(1.0, 1.0, 12);
  greedy.greedy = true;
  auto g3 = seeded(0);
  auto gr = sample(policy, batch.tokens, batch.mask, greedy, g3);
  EXPECT_EQ(gr.response.size(1), 12);
  EXPECT_TRUE(torch::equal(gr.response, torch::full({16, 12}, 5, torch::kLong)));
  EXPECT_EQ(gr.response_mask.sum().item<double>(), 16.0 * 12.0);
}

TEST(Sampler, RejectsBadOptions) {
  auto policy = random_policy(5);
  auto batch = prompts();  // 7 columns; context 64
  auto g = seeded(0);
  EXPECT_THROW(sample(policy, batch.tokens, batch.mask, options(0.0, 1.0, 8), g), std::invalid_argument);
  EXPECT_THROW(sample(policy, batch.tokens, batch.mask, options(-1.0, 1.0, 8), g), std::invalid_argument);
  EXPECT_THROW(sample(policy, batch.tokens, batch.mask, options(1.0, 0.0, 8), g), std::invalid_argument);
  EXPECT_THROW(sample(policy, batch.tokens, batch.mask, options(1.0, 1.5, 8), g), std::invalid_argument);
  EXPECT_THROW(sample(policy, batch.tokens, batch.mask, options(1.0, 1.0, 58), g), std::invalid_argument);
  EXPECT_NO_THROW(sample(policy, batch.tokens, batch.mask, options(1.0, 1.0, 57), g));
  auto o = options(1.0, 1.0, 8);
  o.eos_id = 20;
  EXPECT_THROW(sample(policy, batch.tokens, batch.mask, o, g), std::invalid_argument);
}

}  // namespace
