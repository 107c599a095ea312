// paradigms/rlvr.h — reinforcement learning of the arithmetic policy with
// verifiable or label-free rewards (GRPO and its label-free relatives).
//
// A trial starts from the warm-up policy of its stage (init.from, an sft
// configuration; paradigms/sft.h). That policy is loaded twice: as the
// policy being trained and, frozen, as the reference of the KL term (and the
// embedder of rlvr.embedding = "policy_hidden"). One RL step s (0-based):
//   1. prompts: rlvr.prompts distinct problems of the rl pool (rlvr.pool
//      problems of the in-domain distribution, disjoint from the train and
//      eval pools), drawn with (seed, s);
//   2. votes: rlvr.votes responses per prompt from the current policy at
//      rlvr.temperature / rlvr.top_p, at most rlvr.max_new_tokens each;
//      answers parsed by data/arith.h (nullopt = invalid);
//   3. rewards: the method's rewards() once per prompt with all its votes
//      (RlvrGroup; the true answer only for methods that ask for it);
//   4. the batch: the first rlvr.trained votes of each prompt, with GRPO
//      advantages over each prompt's trained rows (reglab/rlvr.h,
//      epsilon 1e-6, rlvr.norm_adv_by_std);
//   5. the method's rlvr_extra_rows() may replace the batch's first rows
//      with rows it sampled through RlvrSampler (AEPO);
//   6. old log-probs (the policy before this step's updates) and reference
//      log-probs, log_softmax(logits / temperature) at each response token;
//   7. rlvr.ppo_epochs passes over the batch in its order, in mini-batches
//      of rlvr.minibatch rows (0 = all): policy_loss(), backward, the
//      gradient's global norm clipped to rlvr.grad_clip, an optimizer step
//      (skipped, as verl does, when that norm is not finite).
// Ground truth is read only for methods that ask for it and for metrics the
// method never sees.
//
// Metrics at step s + 1:
//   rlvr.reward           mean reward of the trained rows (before any edit)
//   rlvr.label_acc        fraction of prompts whose majority answer over the
//                         votes is the true one (the pseudo-label's accuracy)
//   rlvr.invalid_frac     votes without a parseable answer
//   rlvr.length           mean vote length in tokens (with <eos>)
//   rlvr.distinct_answers distinct answers among a prompt's votes, mean
//   rlvr.clip_frac        the method's clip fraction, mean over mini-batches
//   rlvr.kl               token-mean k3 KL to the reference, mean over mini-batches
//   rlvr.entropy          token-mean full-vocabulary entropy of logits / T, same
//   rlvr.loss, rlvr.grad_norm  mean over mini-batches
//   rlvr.replaced_rows    rows the method's edit replaced
//   time.step_s
// and at step 0, every rlvr.eval_every steps and after the last one:
//   eval.id.<m>, eval.ood.<m>  evaluate_policy (paradigms/policy_task.h),
//                         rlvr.eval_samples responses per prompt at the
//                         trial's temperature, the same draws at every
//                         evaluation (seeded by the trial's seed)
// A checkpoint (policy, optimizer, method state, step) is written with each
// evaluation; an interrupted trial resumes from it. The draws of step s
// depend only on (seed, s).
#pragma once

#include <torch/types.h>

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "models/policy.h"
#include "runner/trial_env.h"

namespace reglab::paradigms {

void run_rlvr(runner::TrialEnv& env);

// Loads a warm-up checkpoint's weights into `policy`. Throws
// std::runtime_error naming the file and the policy's vocabulary and shape
// when they do not fit (another vocabulary, width or depth).
void load_warmup_policy(const std::filesystem::path& file, models::Policy& policy);

// Response embeddings for rlvr.embedding = "char_ngram": counts of the
// response text's character trigrams (with the text's two ends marked),
// each hashed into one of `dims` buckets. [N, dims] float.
torch::Tensor char_ngram_embeddings(const std::vector<std::string>& texts, std::int64_t dims = 256);

}  // namespace reglab::paradigms
