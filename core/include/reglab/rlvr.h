// reglab/rlvr.h — the numerical core that GRPO, TTRL, EVOL-RL, AEPO and EPO
// share: group-relative advantages, the dual-clip PPO policy loss, the loss
// aggregation modes, the k3 KL to the reference policy, the full-vocabulary
// token entropy and the majority vote over extracted answers.
//
// Each function computes what the official code computes, including its
// clamps, epsilons and reductions. Two versions of that code matter here:
//   Convention::fork     the verl 0.2 copy inside YujunZhou/EVOL-RL @ 19896e0
//                        (verl/verl/trainer/ppo/core_algos.py), which the
//                        EVOL-RL and TTRL results were produced with; default;
//   Convention::b178a3c  volcengine/verl @ b178a3c (verl/trainer/ppo/core_algos.py).
// They agree on every well-formed input (log-ratios within ±20, every row
// with at least one response token) and differ only at the edges:
//   - b178a3c clamps the PPO log-ratio and the k3 log-ratio to ±20 before
//     exp; the fork does not, so there a log-ratio beyond float's exp range
//     (≈ 88) gives an infinite ratio and a NaN gradient at that token.
//   - agg token-mean: fork Σ(x·m)/(Σm + 1e-8); b178a3c Σ(x·m)/Σm and x is
//     zeroed outside the mask first (a NaN there cannot leak in).
//   - agg seq-mean-*: the fork averages over every row (a row without tokens
//     counts as 0 in token-sum and is NaN in token-mean); b178a3c averages
//     over rows with at least one token and adds 1e-8 to a row's count.
// Dr. GRPO's "no std division" is a b178a3c option; it is offered under both.
//
// The majority vote follows PRIME-RL/TTRL @ 3e2cc93 (ttrl/ttt_metrics.py):
// Counter(answers).most_common(1), so ties go to the answer seen first, and
// "no answer" is a vote like any other (TTRL's extractor yields "" then, and
// "" == "" grades as correct, so when "no answer" wins, the responses without
// one are rewarded). Answers are std::optional<A>, nullopt = no answer.
//
// Header-only; tensors in, tensors out, differentiable where the official
// code is. Arguments outside their range throw std::invalid_argument.
#pragma once

#include <torch/types.h>
#include <torch/utils.h>

#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace reglab::rlvr {

enum class Convention { fork, b178a3c };

// verl's loss_agg_mode.
enum class AggMode { token_mean, seq_mean_token_sum, seq_mean_token_mean };

inline AggMode agg_mode_from_name(std::string_view name) {
  if (name == "token-mean") return AggMode::token_mean;
  if (name == "seq-mean-token-sum") return AggMode::seq_mean_token_sum;
  if (name == "seq-mean-token-mean") return AggMode::seq_mean_token_mean;
  throw std::invalid_argument("rlvr: unknown loss aggregation mode '" + std::string(name) +
                              "' (token-mean | seq-mean-token-sum | seq-mean-token-mean)");
}

inline std::string agg_mode_name(AggMode mode) {
  switch (mode) {
    case AggMode::token_mean: return "token-mean";
    case AggMode::seq_mean_token_sum: return "seq-mean-token-sum";
    case AggMode::seq_mean_token_mean: return "seq-mean-token-mean";
  }
  return "?";
}

namespace detail {

inline void require_same_shape(const torch::Tensor& a, const torch::Tensor& b, const char* what) {
  if (!a.defined() || !b.defined() || a.sizes() != b.sizes())
    throw std::invalid_argument(std::string("rlvr: ") + what + ": shapes differ");
}

inline void require_2d(const torch::Tensor& t, const char* what) {
  if (!t.defined() || t.dim() != 2) throw std::invalid_argument(std::string("rlvr: ") + what + " must be [B, T]");
}

}  // namespace detail

// ---------------------------------------------------------------- aggregation

// verl's agg_loss: a scalar from a per-token matrix `loss_mat` [B, T] and
// the response mask [B, T] (1 at response tokens, 0 at padding), on one
// micro-batch (data-parallel size 1). Differentiable in loss_mat. Both
// versions' FSDP actor (dp_actor.py) then multiply each micro-batch's loss
// by 1/gradient_accumulation before backward; b178a3c's global token counts
// (global_batch_info) are filled only by its newer engine path.
//   token-mean           mean over all response tokens of the batch
//   seq-mean-token-sum   mean over rows of the row's token sum
//   seq-mean-token-mean  mean over rows of the row's token mean
// Edge behaviour per Convention (see the top of this file).
inline torch::Tensor agg_loss(const torch::Tensor& loss_mat, const torch::Tensor& mask, AggMode mode,
                              Convention convention = Convention::fork) {
  detail::require_2d(loss_mat, "agg_loss: loss_mat");
  detail::require_same_shape(loss_mat, mask, "agg_loss: loss_mat and mask");
  const torch::Tensor m = mask.to(loss_mat.scalar_type());
  const bool fork = convention == Convention::fork;
  // b178a3c's masked_sum: values outside the mask are replaced by 0 first.
  const torch::Tensor x = fork ? loss_mat : torch::where(mask.to(torch::kBool), loss_mat, torch::zeros_like(loss_mat));
  switch (mode) {
    case AggMode::token_mean:
      if (fork) return (x * m).sum() / (m.sum() + 1e-8);
      return (x * m).sum() / m.sum();
    case AggMode::seq_mean_token_sum: {
      const torch::Tensor seq = (loss_mat * m).sum(-1);
      if (fork) return seq.mean();
      const torch::Tensor keep = (m.sum(-1) > 0).to(seq.scalar_type());
      return torch::where(keep.to(torch::kBool), seq, torch::zeros_like(seq)).mul(keep).sum() / keep.sum();
    }
    case AggMode::seq_mean_token_mean: {
      const torch::Tensor count = m.sum(-1);
      if (fork) return ((loss_mat * m).sum(-1) / count).mean();
      const torch::Tensor seq = (loss_mat * m).sum(-1) / (count + 1e-8);
      const torch::Tensor keep = (count > 0).to(seq.scalar_type());
      return torch::where(keep.to(torch::kBool), seq, torch::zeros_like(seq)).mul(keep).sum() / keep.sum();
    }
  }
  throw std::invalid_argument("rlvr: agg_loss: unknown mode");
}

// ------------------------------------------------------------- advantages

struct AdvantageOptions {
  double epsilon = 1e-6;
  bool normalize_by_std = true;  // false: Dr. GRPO (subtract the group mean only)
};

// verl's compute_grpo_outcome_advantage on one scalar score per response.
// scores [N] (float); group_ids[i] names response i's group (its prompt);
// groups are sets of equal ids, not necessarily contiguous.
//   A_i = (r_i − mean_g) / (std_g + ε), std unbiased (torch.std);
//   a group of one: mean 0, std 1, so A_i = r_i / (1 + ε).
// A group of two or more equal scores gives A = 0. Computed without
// gradient in the scores' dtype, as verl does. Returns [N].
inline torch::Tensor grpo_advantages(const torch::Tensor& scores, const std::vector<std::int64_t>& group_ids,
                                     const AdvantageOptions& options = {}) {
  if (!scores.defined() || scores.dim() != 1)
    throw std::invalid_argument("rlvr: grpo_advantages: scores must be [N]");
  if (static_cast<std::int64_t>(group_ids.size()) != scores.size(0))
    throw std::invalid_argument("rlvr: grpo_advantages: one group id per score");
  if (!(options.epsilon >= 0.0)) throw std::invalid_argument("rlvr: grpo_advantages: epsilon must be >= 0");
  torch::NoGradGuard no_grad;
  const torch::Tensor s = scores.detach();
  std::map<std::int64_t, std::vector<std::int64_t>> members;
  for (std::size_t i = 0; i < group_ids.size(); ++i) members[group_ids[i]].push_back(static_cast<std::int64_t>(i));
  torch::Tensor out = s.clone();
  for (const auto& [id, rows] : members) {
    (void)id;
    const torch::Tensor idx = torch::tensor(rows, torch::TensorOptions().dtype(torch::kLong).device(s.device()));
    const torch::Tensor g = s.index_select(0, idx);
    torch::Tensor mean, std;
    if (rows.size() == 1) {
      mean = torch::zeros({}, s.options());
      std = torch::ones({}, s.options());
    } else {
      mean = g.mean();
      std = g.std(/*unbiased=*/true);
    }
    const torch::Tensor a = options.normalize_by_std ? (g - mean) / (std + options.epsilon) : g - mean;
    out.index_copy_(0, idx, a);
  }
  return out;
}

// The same with consecutive groups of `group_size` responses (N a multiple).
inline torch::Tensor grpo_advantages(const torch::Tensor& scores, std::int64_t group_size,
                                     const AdvantageOptions& options = {}) {
  if (!scores.defined() || scores.dim() != 1)
    throw std::invalid_argument("rlvr: grpo_advantages: scores must be [N]");
  if (group_size < 1 || scores.size(0) % group_size != 0)
    throw std::invalid_argument("rlvr: grpo_advantages: N must be a positive multiple of group_size");
  std::vector<std::int64_t> ids(static_cast<std::size_t>(scores.size(0)));
  for (std::size_t i = 0; i < ids.size(); ++i) ids[i] = static_cast<std::int64_t>(i) / group_size;
  return grpo_advantages(scores, ids, options);
}

// Token-level advantages as verl returns them: A_i at every response token
// of row i, 0 at padding. advantages [N], response_mask [N, T] → [N, T].
inline torch::Tensor broadcast_advantages(const torch::Tensor& advantages, const torch::Tensor& response_mask) {
  detail::require_2d(response_mask, "broadcast_advantages: response_mask");
  if (!advantages.defined() || advantages.dim() != 1 || advantages.size(0) != response_mask.size(0))
    throw std::invalid_argument("rlvr: broadcast_advantages: advantages must be [N] with N = mask rows");
  return advantages.unsqueeze(-1) * response_mask.to(advantages.scalar_type());
}

// ------------------------------------------------------------ policy loss

struct PolicyLossOptions {
  double clip_low = 0.2;      // ε_low: ratio clipped below at 1 − ε_low
  double clip_high = 0.2;     // ε_high: ratio clipped above at 1 + ε_high
  double clip_ratio_c = 3.0;  // dual clip: for A < 0 the loss is at most −A·c; must be > 1
  AggMode agg = AggMode::token_mean;
  Convention convention = Convention::fork;
};

struct PolicyLoss {
  torch::Tensor loss;                 // scalar, differentiable in log_prob
  torch::Tensor clip_fraction;        // verl pg_clipfrac: masked mean of [clipped term > unclipped term]
  torch::Tensor clip_fraction_lower;  // verl pg_clipfrac_lower: masked mean of [A < 0 and the dual clip binds]
  torch::Tensor approx_kl;            // verl ppo_kl: masked mean of old_lp − lp
  torch::Tensor token_loss;           // [B, T] the per-token loss before aggregation
};

// verl's compute_policy_loss (dual-clip PPO), per token with ρ = exp(lp − lp_old):
//   l1 = −A·ρ,  l2 = −A·clip(ρ, 1 − ε_low, 1 + ε_high),  l = max(l1, l2);
//   for A < 0:  l = min(l, −A·c).
// old_log_prob, log_prob, advantages, response_mask: [B, T]. The three
// diagnostics are masked means Σ(x·m)/(Σm + 1e-8) (b178a3c zeroes x outside
// the mask first) and carry no gradient; the loss is aggregated with
// options.agg.
inline PolicyLoss ppo_policy_loss(const torch::Tensor& old_log_prob, const torch::Tensor& log_prob,
                                  const torch::Tensor& advantages, const torch::Tensor& response_mask,
                                  const PolicyLossOptions& options = {}) {
  detail::require_2d(log_prob, "ppo_policy_loss: log_prob");
  detail::require_same_shape(old_log_prob, log_prob, "ppo_policy_loss: old_log_prob and log_prob");
  detail::require_same_shape(advantages, log_prob, "ppo_policy_loss: advantages and log_prob");
  detail::require_same_shape(response_mask, log_prob, "ppo_policy_loss: response_mask and log_prob");
  if (!(options.clip_ratio_c > 1.0)) throw std::invalid_argument("rlvr: ppo_policy_loss: clip_ratio_c must be > 1");
  if (!(options.clip_low >= 0.0) || !(options.clip_high >= 0.0))
    throw std::invalid_argument("rlvr: ppo_policy_loss: clip ranges must be >= 0");
  const torch::Tensor m = response_mask.to(log_prob.scalar_type());
  const torch::Tensor keep = response_mask.to(torch::kBool);
  auto masked_mean = [&](const torch::Tensor& x) {
    const torch::Tensor v = options.convention == Convention::b178a3c ? torch::where(keep, x, torch::zeros_like(x)) : x;
    return ((v * m).sum() / (m.sum() + 1e-8)).detach();
  };

  torch::Tensor log_ratio = log_prob - old_log_prob;
  if (options.convention == Convention::b178a3c) log_ratio = log_ratio.clamp(-20.0, 20.0);
  const torch::Tensor ratio = log_ratio.exp();

  PolicyLoss out;
  out.approx_kl = masked_mean(-log_ratio);
  const torch::Tensor l1 = -advantages * ratio;
  const torch::Tensor l2 = -advantages * ratio.clamp(1.0 - options.clip_low, 1.0 + options.clip_high);
  const torch::Tensor clipped = torch::maximum(l1, l2);
  out.clip_fraction = masked_mean(l2.gt(l1).to(m.scalar_type()));
  const torch::Tensor l3 = -advantages * options.clip_ratio_c;
  const torch::Tensor dual = torch::minimum(l3, clipped);
  const torch::Tensor negative = advantages.lt(0);
  out.clip_fraction_lower = masked_mean(clipped.gt(l3).to(m.scalar_type()) * negative.to(m.scalar_type()));
  out.token_loss = torch::where(negative, dual, clipped);
  out.loss = agg_loss(out.token_loss, response_mask, options.agg, options.convention);
  return out;
}

// ------------------------------------------------------- KL and entropy

// verl's kl_penalty(..., "low_var_kl") (k3): with d = ref_lp − lp,
//   k3 = e^d − d − 1, clamped to [−10, 10];
// b178a3c clamps d to ±20 first. That clamp never changes the value (any
// |d| > 20 gives k3 > 10) but keeps the gradient finite: without it, a d
// beyond float's exp range makes e^d infinite and the (zero) gradient through
// the outer clamp NaN. Per token [B, T], differentiable in log_prob;
// aggregate with agg_loss and add coef × it to the loss.
inline torch::Tensor low_var_kl(const torch::Tensor& log_prob, const torch::Tensor& ref_log_prob,
                                Convention convention = Convention::fork) {
  detail::require_same_shape(log_prob, ref_log_prob, "low_var_kl: log_prob and ref_log_prob");
  torch::Tensor d = ref_log_prob - log_prob;
  if (convention == Convention::b178a3c) d = d.clamp(-20.0, 20.0);
  return (d.exp() - d - 1.0).clamp(-10.0, 10.0);
}

// verl's entropy_from_logits: the entropy of softmax(logits) over the last
// (vocabulary) dimension, as logsumexp(z) − Σ softmax(z)·z. The logits are
// those the log-probs come from (verl divides by the temperature first).
// [..., V] → [...], differentiable in the logits.
inline torch::Tensor entropy_from_logits(const torch::Tensor& logits) {
  if (!logits.defined() || logits.dim() < 1) throw std::invalid_argument("rlvr: entropy_from_logits: no logits");
  return logits.logsumexp(-1) - (logits.softmax(-1) * logits).sum(-1);
}

// The entropy term as the fork's actor computes it:
// agg_loss(entropy_from_logits(logits [B, T, V]), mask [B, T], mode). The
// actor subtracts coef × it from the loss.
inline torch::Tensor entropy_loss(const torch::Tensor& logits, const torch::Tensor& response_mask, AggMode mode,
                                  Convention convention = Convention::fork) {
  if (!logits.defined() || logits.dim() != 3) throw std::invalid_argument("rlvr: entropy_loss: logits must be [B, T, V]");
  return agg_loss(entropy_from_logits(logits), response_mask, mode, convention);
}

// ----------------------------------------------------------- majority vote

template <class A>
struct Vote {
  std::optional<A> label;  // the winning answer; nullopt when "no answer" won
  std::int64_t count = 0;  // its number of votes
};

// The most common answer, ties to the one seen first (TTRL's
// Counter.most_common(1)). nullopt entries vote for "no answer". A needs
// operator== only. Throws on an empty list.
template <class A>
Vote<A> majority_vote(const std::vector<std::optional<A>>& answers) {
  if (answers.empty()) throw std::invalid_argument("rlvr: majority_vote: no answers");
  std::vector<std::pair<std::optional<A>, std::int64_t>> counts;  // in order of first appearance
  for (const auto& a : answers) {
    bool found = false;
    for (auto& [value, n] : counts)
      if (value == a) {
        ++n;
        found = true;
        break;
      }
    if (!found) counts.emplace_back(a, 1);
  }
  std::size_t best = 0;
  for (std::size_t i = 1; i < counts.size(); ++i)
    if (counts[i].second > counts[best].second) best = i;  // strict: the first seen keeps a tie
  return {counts[best].first, counts[best].second};
}

// TTRL's reward: 1 where the answer equals the pseudo-label (nullopt equals
// nullopt), else 0.
template <class A>
std::vector<double> majority_rewards(const std::vector<std::optional<A>>& answers, const std::optional<A>& label) {
  std::vector<double> r;
  r.reserve(answers.size());
  for (const auto& a : answers) r.push_back(a == label ? 1.0 : 0.0);
  return r;
}

}  // namespace reglab::rlvr
