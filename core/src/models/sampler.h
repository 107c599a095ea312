// models/sampler.h — batched generation from a Policy.
//
// `sample` prefills the left-padded prompts into a KV cache and then decodes
// one column per step; `sample_naive` runs the whole sequence through
// Policy::forward at every step (the baseline of tools/bench/rlvr_sampling).
// Both make the same choices from the same logits and the same random draws,
// so for one seed they return the same tokens (up to ties decided by float
// rounding, which the tests do not meet).
//
// One step, for every row:
//   p = softmax(logits / T)                             T = temperature > 0
//   nucleus (top_p < 1): sort p descending; keep a token iff the mass of the
//     tokens before it in that order is < top_p (the smallest prefix whose mass
//     reaches top_p; the most likely token is always kept)
//   greedy: argmax(logits), no random draw;
//   else: u ~ U[0, 1) from the generator, one per row per step (finished rows
//     included, so the stream of draws does not depend on when rows finish),
//     and the token is the first v (in vocabulary order) whose cumulative kept
//     mass exceeds u · (total kept mass). Vocabulary order, not sorted order,
//     keeps the choice stable under tiny changes of p.
//   log-prob = log_softmax(logits / T)[token]: the temperature distribution
//     before nucleus truncation (what a PPO loss recomputes from the policy),
//     also for greedy.
// A row that emits `eos_id` is finished: the EOS token is part of its response
// (mask 1); later columns hold `pad_id` with mask 0 and log-prob 0. Generation
// stops when every row has finished or after max_new_tokens columns, so the
// result has N ≤ max_new_tokens columns. Finished rows keep being fed pad_id as
// real (mask true) columns, as policy.h describes; their outputs are ignored.
//
// The generator must live on the prompts' device. Runs under NoGradGuard. Throws std::invalid_argument on bad options or when
// the prompts plus max_new_tokens do not fit the policy's context.
#pragma once

#include "models/policy.h"

#include <ATen/core/Generator.h>
#include <torch/types.h>

#include <cstdint>
#include <vector>

namespace reglab::models {

struct SamplerOptions {
  double temperature = 1.0;          // > 0
  bool greedy = false;
  double top_p = 1.0;                // (0, 1]
  std::int64_t max_new_tokens = 48;  // ≥ 1
  std::int64_t eos_id = -1;          // required, < vocab_size
  std::int64_t pad_id = -1;          // required, < vocab_size
};

struct SampleResult {
  torch::Tensor sequences;       // int64 [B, T_p + N]: the prompts as given, then the generated columns
  torch::Tensor attention_mask;  // bool [B, T_p + N]: the prompt mask, then true (see policy.h)
  torch::Tensor response;        // int64 [B, N]: generated tokens, pad_id after the row's EOS
  torch::Tensor response_mask;   // float [B, N]: 1 at generated tokens up to and including EOS
  torch::Tensor logprobs;        // float [B, N]: log_softmax(logits / T) at the token; 0 where the mask is 0
  torch::Tensor logits;          // float [B, N, V] raw logits of each step (only with keep_logits)
};

struct PaddedBatch {
  torch::Tensor tokens;  // int64 [B, T]
  torch::Tensor mask;    // bool [B, T]
};

// Left-pads token rows to the longest one. Throws on an empty batch.
PaddedBatch left_pad(const std::vector<std::vector<std::int64_t>>& rows, std::int64_t pad_id);

// prompts int64 [B, T_p] left-padded with mask bool [B, T_p].
SampleResult sample(Policy& policy, const torch::Tensor& prompts, const torch::Tensor& prompt_mask,
                    const SamplerOptions& options, at::Generator& generator, bool keep_logits = false);
SampleResult sample_naive(Policy& policy, const torch::Tensor& prompts, const torch::Tensor& prompt_mask,
                          const SamplerOptions& options, at::Generator& generator, bool keep_logits = false);

// The nucleus as defined above: probs [B, V] -> bool [B, V], true = kept.
torch::Tensor nucleus_mask(const torch::Tensor& probs, double top_p);

// One step's choice: logits [B, V] -> tokens int64 [B] and their log-probs [B].
struct StepChoice {
  torch::Tensor tokens;
  torch::Tensor logprobs;
};
StepChoice choose_tokens(const torch::Tensor& logits, const SamplerOptions& options, at::Generator& generator);

}  // namespace reglab::models
