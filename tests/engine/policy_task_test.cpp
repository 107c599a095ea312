// What the sft and rlvr paradigms share: packing prompt + response rows,
// the log-probs read from a packed forward pass (checked against the
// sampler's own), the evaluation metrics' invariants, the character n-gram
// embedding, and loading a warm-up checkpoint that does not fit.
#include "paradigms/policy_task.h"

#include <ATen/CPUGeneratorImpl.h>
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <filesystem>
#include <stdexcept>

#include "data/arith.h"
#include "engine/policy_fixture.h"
#include "paradigms/checkpoint.h"
#include "paradigms/rlvr.h"
#include "store/temp_db.h"

namespace {

namespace arith = reglab::data::arith;
using reglab::models::Policy;
using reglab::models::PolicyOptions;
using reglab::paradigms::PackedRows;
using reglab::paradigms::TokenRow;

PolicyOptions options(std::int64_t vocab = arith::kVocabSize) {
  return reglab::testing::small_policy_options(64, true, vocab);
}

Policy random_policy(std::uint64_t seed) { return reglab::testing::random_small_policy(seed); }

TEST(PolicyTask, PackRowsLeftPadsPromptsAndRightPadsResponses) {
  const std::vector<TokenRow> rows = {{{1, 4, 13, 5, 19}, {7, 2}}, {{1, 6, 19}, {3, 8, 9, 2}}};
  const PackedRows p = reglab::paradigms::pack_rows(rows, torch::kCPU);
  EXPECT_EQ(p.prompt_width, 5);
  ASSERT_EQ(p.tokens.sizes(), (std::vector<std::int64_t>{2, 9}));
  const std::vector<std::int64_t> row1 = {0, 0, 1, 6, 19, 3, 8, 9, 2};
  const std::vector<std::int64_t> row0 = {1, 4, 13, 5, 19, 7, 2, 0, 0};
  for (std::int64_t j = 0; j < 9; ++j) {
    EXPECT_EQ(p.tokens[0][j].item<std::int64_t>(), row0[j]) << j;
    EXPECT_EQ(p.tokens[1][j].item<std::int64_t>(), row1[j]) << j;
  }
  const std::vector<bool> mask0 = {true, true, true, true, true, true, true, false, false};
  const std::vector<bool> mask1 = {false, false, true, true, true, true, true, true, true};
  for (std::int64_t j = 0; j < 9; ++j) {
    EXPECT_EQ(p.attention_mask[0][j].item<bool>(), mask0[j]) << j;
    EXPECT_EQ(p.attention_mask[1][j].item<bool>(), mask1[j]) << j;
  }
  EXPECT_EQ(p.response_mask.sum(1)[0].item<float>(), 2.0f);
  EXPECT_EQ(p.response_mask.sum(1)[1].item<float>(), 4.0f);
  EXPECT_EQ(p.response[0][2].item<std::int64_t>(), arith::kPad);
}

// The log-probs of a packed forward pass at temperature T are the ones the
// sampler recorded while generating the same tokens: the column alignment
// (column P − 1 + t predicts response token t) and the padding are right.
TEST(PolicyTask, PackedLogProbsEqualTheSamplersOwn) {
  Policy policy = random_policy(3);
  policy->eval();
  const std::vector<arith::Problem> problems = {{arith::Op::add, 345, 678}, {arith::Op::add, 7, 5}};
  const auto prompts = reglab::paradigms::prompt_batch(problems, 3, torch::kCPU);
  reglab::models::SamplerOptions so;
  so.temperature = 0.7;
  so.max_new_tokens = 20;
  so.eos_id = arith::kEos;
  so.pad_id = arith::kPad;
  auto gen = at::make_generator<at::CPUGeneratorImpl>(11);
  const auto out = reglab::models::sample(policy, prompts.tokens, prompts.mask, so, gen);
  std::vector<TokenRow> rows;
  for (std::int64_t i = 0; i < 6; ++i) {
    rows.push_back({arith::prompt_tokens(problems[static_cast<std::size_t>(i / 3)]),
                    reglab::paradigms::response_row(out.response, out.response_mask, i)});
  }
  const PackedRows packed = reglab::paradigms::pack_rows(rows, torch::kCPU);
  torch::NoGradGuard no_grad;
  const torch::Tensor z =
      reglab::paradigms::response_logits(policy->forward(packed.tokens, packed.attention_mask).logits, packed);
  const torch::Tensor lp = reglab::paradigms::token_log_probs(z / 0.7, packed);
  const std::int64_t width = packed.response.size(1);
  ASSERT_LE(width, out.logprobs.size(1));
  EXPECT_TRUE(torch::allclose(lp, out.logprobs.narrow(1, 0, width), 1e-5, 1e-5))
      << (lp - out.logprobs.narrow(1, 0, width)).abs().max().item<double>();
  // Nothing beyond a row's end: the response mask zeroes it.
  EXPECT_EQ((lp * (1 - packed.response_mask)).abs().sum().item<double>(), 0.0);
}

TEST(PolicyTask, EvaluationMetricsAreConsistent) {
  Policy policy = random_policy(5);
  const arith::ArithConfig config{{arith::Op::add}, 1, 2};
  const auto problems = arith::generate_pool(config, arith::Pool::eval, 12, 0);
  reglab::paradigms::EvalOptions eo;
  eo.samples = 8;
  eo.max_new_tokens = 24;
  eo.seed = 9;
  eo.batch_prompts = 5;  // several chunks
  const auto a = reglab::paradigms::evaluate_policy(policy, problems, eo);
  const auto b = reglab::paradigms::evaluate_policy(policy, problems, eo);
  EXPECT_EQ(a, b) << "the same seed gives the same draws";
  for (const char* key : {"greedy_acc", "pass_at_1", "pass_at_2", "pass_at_4", "pass_at_8", "maj_at_8", "entropy",
                          "length", "invalid_frac", "distinct_answers", "distinct_scratchpads"})
    EXPECT_EQ(a.count(key), 1u) << key;
  EXPECT_LE(a.at("pass_at_1"), a.at("pass_at_2"));
  EXPECT_LE(a.at("pass_at_2"), a.at("pass_at_4"));
  EXPECT_LE(a.at("pass_at_4"), a.at("pass_at_8"));
  EXPECT_GE(a.at("distinct_answers"), 1.0);
  EXPECT_LE(a.at("distinct_answers"), 8.0);
  EXPECT_GT(a.at("entropy"), 0.0);
  EXPECT_LE(a.at("entropy"), std::log(20.0) + 1e-6);
  EXPECT_GE(a.at("length"), 1.0);
  EXPECT_LE(a.at("length"), 24.0);
  // A random policy almost never writes a parseable answer.
  EXPECT_GT(a.at("invalid_frac"), 0.5);
  EXPECT_TRUE(policy->is_training()) << "evaluation puts the policy back in train mode";
}

TEST(PolicyTask, DistinctAnswersCountsNoAnswerOnce) {
  using A = std::optional<std::int64_t>;
  EXPECT_EQ(reglab::paradigms::distinct_answers({A(3), A(3), std::nullopt, A(4), std::nullopt}), 3);
  EXPECT_EQ(reglab::paradigms::distinct_answers({A(1)}), 1);
}

TEST(PolicyTask, CharacterTrigramsCountEveryWindowOnce) {
  const torch::Tensor e = reglab::paradigms::char_ngram_embeddings({"abc", "abc", "5+7+0=12#12", ""}, 64);
  ASSERT_EQ(e.sizes(), (std::vector<std::int64_t>{4, 64}));
  // "^abc$" has the windows ^ab, abc, bc$; "^$" has none.
  EXPECT_EQ(e[0].sum().item<float>(), 3.0f);
  EXPECT_TRUE(torch::equal(e[0], e[1]));
  EXPECT_EQ(e[2].sum().item<float>(), 11.0f);
  EXPECT_EQ(e[3].sum().item<float>(), 0.0f);
}

TEST(PolicyTask, AWarmUpCheckpointOfAnotherVocabularyIsNamed) {
  reglab::testing_support::TempDir dir;
  const auto file = dir.path() / "model.pt";
  {
    torch::manual_seed(0);
    Policy other(options(/*vocab=*/30));
    torch::optim::SGD opt(other->parameters(), torch::optim::SGDOptions(0.1));
    reglab::paradigms::save_checkpoint(file, *other, opt, {}, {1, 1});
  }
  Policy policy(options());
  try {
    reglab::paradigms::load_warmup_policy(file, policy);
    FAIL() << "a 30-token checkpoint loaded into a 20-token policy";
  } catch (const std::runtime_error& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find(file.string()), std::string::npos) << what;
    EXPECT_NE(what.find("vocabulary 20 tokens"), std::string::npos) << what;
    EXPECT_NE(what.find("'token_embedding.weight' has shape [30, 32] in the checkpoint, the model expects [20, 32]"),
              std::string::npos)
        << what;
  }
  // The same shape loads, and the weights are the saved ones.
  const auto same = dir.path() / "same.pt";
  torch::manual_seed(1);
  Policy saved(options());
  {
    torch::optim::SGD opt(saved->parameters(), torch::optim::SGDOptions(0.1));
    reglab::paradigms::save_checkpoint(same, *saved, opt, {}, {1, 1});
  }
  Policy fresh(options());
  reglab::paradigms::load_warmup_policy(same, fresh);
  EXPECT_TRUE(torch::equal(fresh->parameters()[0], saved->parameters()[0]));
}

}  // namespace
