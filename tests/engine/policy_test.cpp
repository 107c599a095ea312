// The rlvr policy: shapes and parameter count (worked out by hand), causality,
// padding invariance, KV-cache decoding against full recomputation, and the
// forward pass against an independent composition written from the
// architecture's description (explicit per-head loops, no shared code).
#include "models/policy.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <stdexcept>
#include <string>
#include <vector>

#include "engine/policy_fixture.h"

namespace {

using reglab::models::KvCache;
using reglab::models::Policy;
using reglab::models::PolicyOptions;
using reglab::models::positions_from_mask;

PolicyOptions small_options() { return reglab::testing::small_policy_options(/*context=*/32); }

// Larger weights than the default initialisation, so that logits differ by
// far more than float rounding and a wrong mask or position shows.
void scramble(Policy& policy, std::uint64_t seed) {
  torch::manual_seed(seed);
  torch::NoGradGuard no_grad;
  for (auto& p : policy->parameters()) p.normal_(0.0, 0.3);
}

std::int64_t parameter_count(const Policy& policy) {
  std::int64_t n = 0;
  for (const auto& p : policy->parameters()) n += p.numel();
  return n;
}

TEST(Policy, ShapesAndParameterCount) {
  torch::manual_seed(0);
  Policy tied(small_options());
  // Embeddings 20·32 + 32·32 = 640 + 1024; per block LN 64 + qkv 32·96+96 =
  // 3168 + proj 32·32+32 = 1056 + LN 64 + fc1 32·128+128 = 4224 + fc2
  // 128·32+32 = 4128 = 12704, two blocks 25408; final LN 64. 27136 in all.
  EXPECT_EQ(parameter_count(tied), 27136);
  auto untied_options = small_options();
  untied_options.tie_embeddings = false;
  Policy untied(untied_options);
  EXPECT_EQ(parameter_count(untied), 27136 + 20 * 32);

  auto out = tied->forward(torch::randint(0, 20, {3, 7}));
  EXPECT_EQ(out.logits.sizes(), (std::vector<std::int64_t>{3, 7, 20}));
  EXPECT_EQ(out.hidden.sizes(), (std::vector<std::int64_t>{3, 7, 32}));
}

TEST(Policy, HiddenIsWhatTheHeadReads) {
  torch::manual_seed(1);
  Policy tied(small_options());
  scramble(tied, 2);
  auto tokens = torch::randint(0, 20, {2, 5});
  auto out = tied->forward(tokens);
  auto params = tied->named_parameters();
  EXPECT_TRUE(torch::allclose(out.logits, torch::matmul(out.hidden, params["token_embedding.weight"].t()), 1e-5,
                              1e-5));
  auto o = small_options();
  o.tie_embeddings = false;
  Policy untied(o);
  auto u = untied->forward(tokens);
  EXPECT_TRUE(torch::allclose(u.logits, torch::matmul(u.hidden, untied->named_parameters()["output.weight"].t()),
                              1e-5, 1e-5));
}

TEST(Policy, PositionsCountRealTokensOnly) {
  auto mask = torch::tensor({0, 0, 1, 1, 1, 1, 1, 0, 1}, torch::kBool).view({1, 9});
  // Leading pads sit at 0; a pad after real tokens repeats the last position.
  auto expected = torch::tensor({0, 0, 0, 1, 2, 3, 4, 4, 5}, torch::kLong).view({1, 9});
  EXPECT_TRUE(torch::equal(positions_from_mask(mask), expected));
}

TEST(Policy, ChangingALaterTokenLeavesEarlierLogits) {
  torch::manual_seed(3);
  Policy policy(small_options());
  scramble(policy, 4);
  auto a = torch::randint(3, 20, {2, 10});
  auto b = a.clone();
  b.index_put_({torch::indexing::Slice(), 6}, (a.index({torch::indexing::Slice(), 6}) + 1) % 20);
  auto la = policy->forward(a).logits;
  auto lb = policy->forward(b).logits;
  auto before = torch::indexing::Slice(0, 6);
  EXPECT_LT((la.index({torch::indexing::Slice(), before}) - lb.index({torch::indexing::Slice(), before}))
                .abs()
                .max()
                .item<double>(),
            1e-6);
  EXPECT_GT((la.select(1, 6) - lb.select(1, 6)).abs().max().item<double>(), 1e-3);
}

TEST(Policy, LeftPaddedRowComputesWhatItComputesAlone) {
  torch::manual_seed(5);
  Policy policy(small_options());
  scramble(policy, 6);
  auto short_row = torch::randint(3, 20, {1, 5});
  auto long_row = torch::randint(3, 20, {1, 8});
  auto batch = torch::cat({torch::cat({torch::zeros({1, 3}, torch::kLong), short_row}, 1), long_row}, 0);
  auto mask = torch::ones({2, 8}, torch::kBool);
  mask.index_put_({0, torch::indexing::Slice(0, 3)}, false);
  auto padded = policy->forward(batch, mask).logits;
  auto alone_short = policy->forward(short_row).logits;
  auto alone_long = policy->forward(long_row).logits;
  EXPECT_TRUE(torch::allclose(padded[0].slice(0, 3, 8), alone_short[0], 1e-5, 1e-5));
  EXPECT_TRUE(torch::allclose(padded[1], alone_long[0], 1e-5, 1e-5));
  EXPECT_FALSE(torch::isnan(padded).any().item<bool>());  // pad queries attend to themselves
}

TEST(Policy, KvCacheDecodeEqualsFullRecomputationOnPaddedBatch) {
  torch::manual_seed(7);
  Policy policy(small_options());
  scramble(policy, 8);
  // Three prompts of lengths 6, 3 and 1, left-padded to 6.
  auto prompts = torch::randint(3, 20, {3, 6});
  auto mask = torch::ones({3, 6}, torch::kBool);
  mask.index_put_({1, torch::indexing::Slice(0, 3)}, false);
  mask.index_put_({2, torch::indexing::Slice(0, 5)}, false);
  prompts.masked_fill_(mask.logical_not(), 0);
  auto next = torch::randint(3, 20, {3, 7});

  torch::NoGradGuard no_grad;
  KvCache cache;
  auto pre = policy->prefill(prompts, mask, cache, 6 + 7);
  auto full = policy->forward(prompts, mask);
  EXPECT_TRUE(torch::allclose(pre.logits.masked_select(mask.unsqueeze(-1)),
                              full.logits.masked_select(mask.unsqueeze(-1)), 1e-5, 1e-5));
  auto sequence = prompts;
  auto seq_mask = mask;
  for (std::int64_t step = 0; step < 7; ++step) {
    auto token = next.select(1, step);
    auto dec = policy->decode(token, cache);
    sequence = torch::cat({sequence, token.unsqueeze(1)}, 1);
    seq_mask = torch::cat({seq_mask, torch::ones({3, 1}, torch::kBool)}, 1);
    auto ref = policy->forward(sequence, seq_mask);
    EXPECT_LT((dec.logits.select(1, 0) - ref.logits.select(1, -1)).abs().max().item<double>(), 1e-5)
        << "step " << step;
    EXPECT_LT((dec.hidden.select(1, 0) - ref.hidden.select(1, -1)).abs().max().item<double>(), 1e-5)
        << "step " << step;
  }
  EXPECT_EQ(cache.length, 13);
  EXPECT_THROW(policy->decode(next.select(1, 0), cache), std::invalid_argument);  // full
}

// An independent composition of the architecture from its parameters:
// per-head loops, explicit masks, layer norm and GELU written out.
torch::Tensor reference_logits(Policy& policy, const torch::Tensor& tokens, std::int64_t heads) {
  auto p = policy->named_parameters();
  const auto t = tokens.size(0);
  auto layer_norm = [](const torch::Tensor& x, const torch::Tensor& w, const torch::Tensor& b) {
    auto mean = x.mean(-1, true);
    auto var = (x - mean).pow(2).mean(-1, true);
    return (x - mean) / torch::sqrt(var + 1e-5) * w + b;
  };
  auto gelu = [](const torch::Tensor& x) { return 0.5 * x * (1.0 + torch::erf(x / std::sqrt(2.0))); };
  auto x = p["token_embedding.weight"].index_select(0, tokens) +
           p["position_embedding.weight"].slice(0, 0, t);  // [T, D]
  const auto d = x.size(1), dh = d / heads;
  for (int l = 0;; ++l) {
    const std::string b = "blocks." + std::to_string(l) + ".";
    if (!p.contains(b + "qkv.weight")) break;
    auto h = layer_norm(x, p[b + "norm1.weight"], p[b + "norm1.bias"]);
    auto qkv = torch::matmul(h, p[b + "qkv.weight"].t()) + p[b + "qkv.bias"];
    std::vector<torch::Tensor> outs;
    for (std::int64_t hd = 0; hd < heads; ++hd) {
      auto q = qkv.slice(1, hd * dh, (hd + 1) * dh);
      auto k = qkv.slice(1, d + hd * dh, d + (hd + 1) * dh);
      auto v = qkv.slice(1, 2 * d + hd * dh, 2 * d + (hd + 1) * dh);
      auto s = torch::matmul(q, k.t()) / std::sqrt(static_cast<double>(dh));
      auto future = torch::ones({t, t}, torch::kBool).triu(1);
      outs.push_back(torch::matmul(torch::softmax(s.masked_fill(future, -1e30), -1), v));
    }
    x = x + torch::matmul(torch::cat(outs, 1), p[b + "proj.weight"].t()) + p[b + "proj.bias"];
    auto m = layer_norm(x, p[b + "norm2.weight"], p[b + "norm2.bias"]);
    m = gelu(torch::matmul(m, p[b + "fc1.weight"].t()) + p[b + "fc1.bias"]);
    x = x + torch::matmul(m, p[b + "fc2.weight"].t()) + p[b + "fc2.bias"];
  }
  auto h = layer_norm(x, p["final_norm.weight"], p["final_norm.bias"]);
  return torch::matmul(h, p["token_embedding.weight"].t());
}

TEST(Policy, ForwardMatchesAnIndependentComposition) {
  torch::manual_seed(9);
  Policy policy(small_options());
  scramble(policy, 10);
  torch::NoGradGuard no_grad;
  auto tokens = torch::randint(0, 20, {9});
  auto ours = policy->forward(tokens.unsqueeze(0)).logits[0];
  auto ref = reference_logits(policy, tokens, 4);
  EXPECT_LT((ours - ref).abs().max().item<double>(), 1e-4);
}

TEST(Policy, GradientsFlowThroughAPaddedBatch) {
  torch::manual_seed(11);
  Policy policy(small_options());
  auto tokens = torch::randint(3, 20, {2, 6});
  auto mask = torch::ones({2, 6}, torch::kBool);
  mask.index_put_({0, torch::indexing::Slice(0, 4)}, false);
  auto out = policy->forward(tokens, mask);
  torch::log_softmax(out.logits, -1).masked_select(mask.unsqueeze(-1)).sum().backward();
  for (const auto& [name, p] : policy->named_parameters().pairs()) {
    ASSERT_TRUE(p.grad().defined()) << name;
    EXPECT_TRUE(torch::isfinite(p.grad()).all().item<bool>()) << name;
  }
  // Positions 0..5 are used (row 1 has six real tokens), 6..31 never.
  auto g = policy->named_parameters()["position_embedding.weight"].grad();
  EXPECT_GT(g.slice(0, 0, 6).abs().sum(1).min().item<double>(), 0.0);
  EXPECT_EQ(g.slice(0, 6, 32).abs().sum().item<double>(), 0.0);
}

TEST(Policy, RejectsBadOptionsAndOverlongInput) {
  auto o = small_options();
  o.heads = 5;  // does not divide 32
  EXPECT_THROW(Policy{o}, std::invalid_argument);
  o = small_options();
  o.vocab_size = 1;
  EXPECT_THROW(Policy{o}, std::invalid_argument);
  Policy policy(small_options());
  EXPECT_THROW(policy->forward(torch::zeros({1, 33}, torch::kLong)), std::invalid_argument);
  KvCache cache;
  EXPECT_THROW(policy->prefill(torch::zeros({1, 4}, torch::kLong), torch::ones({1, 4}, torch::kBool), cache, 33),
               std::invalid_argument);
}

}  // namespace
