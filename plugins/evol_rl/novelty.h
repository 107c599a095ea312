// plugins/evol_rl/novelty.h — EVOL-RL's reward for one group of responses:
// majority selection (TTRL's vote) plus a novelty bonus from response
// embeddings, as YujunZhou/EVOL-RL @ 19896e0 computes it
// (verl/verl/workers/reward_manager/semantic_novelty.py,
// _compute_novelty_rewards and _compute_similarity_based_rewards).
//
// For a group of N responses with answers a_i (nullopt = invalid, i.e. no
// parseable final answer — the official "no \boxed{} with a digit") and
// embeddings e_i [N, D]:
//   1. label = majority_vote(a) over all N, invalid ones included (TTRL);
//      response i is in the majority cluster iff a_i == label.
//   2. N == 1: the reward is the vote's reward (1.0, the response is its own
//      majority); the official code returns the base reward here.
//   3. Invalid responses get −1 and are left out of everything below; if at
//      most one valid response remains, every response gets −1.
//   4. Over the valid responses: s_ij = clip(cos(e_i, e_j), 0, 1), each norm
//      floored at 1e-8; novelty u_i = 1 − (0.5·mean_{j in i's cluster, j≠i}
//      s_ij + 0.5·max_{valid j≠i} s_ij); when i is alone in its cluster the
//      mean runs over every valid j ≠ i.
//   5. Within each cluster of two or more: ũ = (u − min)/(max − min) and
//      majority 0.5 + 0.5·ũ, minority −1 + 0.5·ũ; when max == min (exactly,
//      as the official code compares) every member gets 0.75 / −0.75. A
//      cluster of one gets 1.0 (majority) / −0.5 (minority).
// When "no answer" wins the vote, every valid response is in the minority.
// The official code scores every vote of a prompt (n_votes, 64) in one group
// and trains on the first n_samples (32) of them with those rewards.
// The official code embeds the text after </think> with an external
// embedder in float32; here the caller supplies the embeddings, and the
// cosine is computed in their dtype, the rest in double.
#pragma once

#include <reglab/rlvr.h>

#include <torch/types.h>
#include <torch/utils.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <optional>
#include <stdexcept>
#include <vector>

namespace reglab::evol_rl {

struct GroupRewards {
  std::vector<double> reward;   // [N]
  std::vector<double> novelty;  // [N] u_i before normalisation; NaN where not computed
  std::vector<bool> majority;   // [N] a_i == label (invalid responses included, as the vote counts them)
};

template <class A>
GroupRewards novelty_rewards(const std::vector<std::optional<A>>& answers, const torch::Tensor& embeddings) {
  const auto n = static_cast<std::int64_t>(answers.size());
  if (n < 1) throw std::invalid_argument("evol_rl: novelty_rewards: empty group");
  if (!embeddings.defined() || embeddings.dim() != 2 || embeddings.size(0) != n)
    throw std::invalid_argument("evol_rl: novelty_rewards: embeddings must be [N, D], one row per answer");

  const auto vote = rlvr::majority_vote(answers);
  GroupRewards out;
  out.novelty.assign(static_cast<std::size_t>(n), std::numeric_limits<double>::quiet_NaN());
  for (const auto& a : answers) out.majority.push_back(a == vote.label);
  if (n == 1) {
    out.reward = {1.0};
    return out;
  }

  std::vector<std::int64_t> valid;
  for (std::int64_t i = 0; i < n; ++i)
    if (answers[static_cast<std::size_t>(i)].has_value()) valid.push_back(i);
  out.reward.assign(static_cast<std::size_t>(n), -1.0);
  const auto v = static_cast<std::int64_t>(valid.size());
  if (v <= 1) return out;

  torch::Tensor sim;
  {
    torch::NoGradGuard no_grad;
    const torch::Tensor e =
        embeddings.detach().index_select(0, torch::tensor(valid, torch::TensorOptions().dtype(torch::kLong)).to(embeddings.device()));
    const torch::Tensor norms = e.norm(2, 1, /*keepdim=*/true).clamp_min(1e-8);
    const torch::Tensor unit = e / norms;
    // One value per pair, mirrored: s_ij and s_ji must be equal bit for bit,
    // or a symmetric pair would min-max normalise to 0 and 1 instead of
    // taking the "all equal" constant.
    const torch::Tensor gram = unit.matmul(unit.t());
    sim = (gram.triu() + gram.triu(1).t()).clamp(0.0, 1.0).to(torch::kDouble).cpu().contiguous();
  }
  const double* s = sim.data_ptr<double>();
  auto at = [&](std::int64_t i, std::int64_t j) { return s[i * v + j]; };

  std::vector<bool> in_majority(static_cast<std::size_t>(v));
  std::int64_t n_majority = 0;
  for (std::int64_t k = 0; k < v; ++k) {
    in_majority[static_cast<std::size_t>(k)] = out.majority[static_cast<std::size_t>(valid[static_cast<std::size_t>(k)])];
    n_majority += in_majority[static_cast<std::size_t>(k)] ? 1 : 0;
  }

  std::vector<double> u(static_cast<std::size_t>(v));
  for (std::int64_t i = 0; i < v; ++i) {
    const bool mine = in_majority[static_cast<std::size_t>(i)];
    const std::int64_t own = mine ? n_majority : v - n_majority;
    double sum = 0.0, max = -1.0;
    std::int64_t count = 0;
    for (std::int64_t j = 0; j < v; ++j) {
      if (j == i) continue;
      max = std::max(max, at(i, j));
      if (own == 1 || in_majority[static_cast<std::size_t>(j)] == mine) {
        sum += at(i, j);
        ++count;
      }
    }
    u[static_cast<std::size_t>(i)] = 1.0 - (0.5 * (sum / static_cast<double>(count)) + 0.5 * max);
    out.novelty[static_cast<std::size_t>(valid[static_cast<std::size_t>(i)])] = u[static_cast<std::size_t>(i)];
  }

  for (const bool cluster : {true, false}) {
    std::vector<std::int64_t> members;
    for (std::int64_t k = 0; k < v; ++k)
      if (in_majority[static_cast<std::size_t>(k)] == cluster) members.push_back(k);
    if (members.empty()) continue;
    const double base = cluster ? 0.5 : -1.0;
    auto reward_of = [&](std::int64_t k) -> double& {
      return out.reward[static_cast<std::size_t>(valid[static_cast<std::size_t>(k)])];
    };
    if (members.size() == 1) {
      reward_of(members[0]) = base + 0.5;
      continue;
    }
    double lo = u[static_cast<std::size_t>(members[0])], hi = lo;
    for (const auto k : members) {
      lo = std::min(lo, u[static_cast<std::size_t>(k)]);
      hi = std::max(hi, u[static_cast<std::size_t>(k)]);
    }
    for (const auto k : members)
      reward_of(k) = hi > lo ? base + 0.5 * ((u[static_cast<std::size_t>(k)] - lo) / (hi - lo)) : base + 0.25;
  }
  return out;
}

}  // namespace reglab::evol_rl
