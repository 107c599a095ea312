// paradigms/policy_task.h — what the sft and rlvr paradigms share: the
// policy and task settings of a trial, sequences of prompt + response tokens
// as padded tensors, and the evaluation of a policy on held-out prompts.
//
// Sequences. A row is a prompt (<bos> a OP b '\n') and a response (scratchpad
// '#' answer <eos>, or whatever the policy wrote). pack_rows() lays a list of
// rows out as one [B, P + R] tensor: prompts LEFT-padded to the longest
// prompt P (the policy's convention, models/policy.h), responses
// RIGHT-padded to the longest response R, the attention mask true at real
// tokens only. Column P − 1 + t holds the logits that predict response token
// t, so the response's log-probs are one gather from columns [P − 1, P + R − 1).
// Right padding never changes a real token's output: attention is causal.
//
// Evaluation (evaluate_policy), on a list of problems:
//   greedy_acc         one greedy response per prompt, fraction correct
//   pass_at_1 ...      n = eval_samples responses per prompt at the
//   pass_at_<k>        temperature; unbiased pass@k (metrics/passk.h) for
//                      k = 1, 2, 4, ... up to n, and k = n, mean over prompts
//   maj_at_<n>         the majority answer of the n is correct, mean
//   entropy            mean over sampled response tokens of the full-vocabulary
//                      entropy of softmax(logits / T)
//   length             mean sampled response length in tokens (with <eos>)
//   invalid_frac       sampled responses without a parseable final answer
//   distinct_answers   distinct final answers per prompt (invalid = one more), mean
//   distinct_scratchpads  distinct reasoning parts per prompt, mean
// Sampling is seeded by `seed`, so two evaluations of the same weights agree.
#pragma once

#include <ATen/core/Generator.h>
#include <torch/types.h>

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "config/config.h"
#include "data/arith.h"
#include "models/policy.h"
#include "models/sampler.h"

namespace reglab::paradigms {

// The policy of a trial's [policy] table; the vocabulary is the task's.
models::PolicyOptions policy_options_from(const config::Json& policy_table);

struct PolicyTask {
  data::arith::ArithConfig in_domain;
  data::arith::ArithConfig out_of_domain;
  std::int64_t eval_prompts = 200;
  // The longest response any of the two distributions can need (with <eos>).
  std::int64_t max_response_tokens() const;
};
// Throws std::invalid_argument naming the key on an unknown operation.
PolicyTask policy_task_from(const config::Json& arith_table);

// The evaluation prompts of both domains: disjoint from the train and rl
// pools (data/arith.h); fixed by the trial's seed.
struct EvalSets {
  std::vector<data::arith::Problem> in_domain;
  std::vector<data::arith::Problem> out_of_domain;
};
EvalSets eval_sets(const PolicyTask& task, std::uint64_t seed);

struct TokenRow {
  std::vector<std::int64_t> prompt;
  std::vector<std::int64_t> response;
};

struct PackedRows {
  torch::Tensor tokens;           // int64 [B, P + R]
  torch::Tensor attention_mask;   // bool [B, P + R]
  torch::Tensor response;         // int64 [B, R]: response tokens, pad after each row's end
  torch::Tensor response_mask;    // float [B, R]: 1 at response tokens
  std::int64_t prompt_width = 0;  // P
};
PackedRows pack_rows(const std::vector<TokenRow>& rows, torch::Device device);

// The logits that predict each response token: [B, R, V] from the policy's
// output on packed.tokens ([B, P + R, V]).
torch::Tensor response_logits(const torch::Tensor& sequence_logits, const PackedRows& packed);

// log_softmax(logits / T) at the response tokens: [B, R, V] -> [B, R], 0
// where the response mask is 0. Differentiable.
torch::Tensor token_log_probs(const torch::Tensor& scaled_logits, const PackedRows& packed);

// Prompts of `problems` as left-padded token rows for the sampler.
models::PaddedBatch prompt_batch(const std::vector<data::arith::Problem>& problems, std::int64_t repeats,
                                 torch::Device device);

// The tokens of row i of a sampled response matrix, up to and including <eos>.
std::vector<std::int64_t> response_row(const torch::Tensor& response, const torch::Tensor& response_mask,
                                       std::int64_t i);

struct EvalOptions {
  double temperature = 1.0;
  double top_p = 1.0;
  std::int64_t samples = 16;  // n per prompt
  std::int64_t max_new_tokens = 48;
  std::int64_t batch_prompts = 64;  // prompts sampled together
  std::uint64_t seed = 0;
};

// Metric name (without prefix) -> value. The policy is put in eval mode and
// back in train mode; runs without gradient.
std::map<std::string, double> evaluate_policy(models::Policy& policy, const std::vector<data::arith::Problem>& problems,
                                              const EvalOptions& options);

// A generator on `device` seeded with `seed`: a fresh one on the CPU, the
// device's default one (re-seeded) elsewhere.
at::Generator seeded_generator(torch::Device device, std::uint64_t seed);

// Distinct values in a list of optional answers (nullopt counts as one value).
std::int64_t distinct_answers(const std::vector<std::optional<std::int64_t>>& answers);

}  // namespace reglab::paradigms
