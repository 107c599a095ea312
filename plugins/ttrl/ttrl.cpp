// ttrl — Test-Time Reinforcement Learning (Zuo et al. 2025), as
// PRIME-RL/TTRL @ 3e2cc93 computes it.
//
// rewards: the pseudo-label is the most common answer over all votes of the
// prompt (ttt_metrics.py: Counter(...).most_common(1), ties to the answer
// seen first; "no answer" votes too and can win); r_i = 1 where the answer
// equals it, else 0. The paradigm trains on the first rlvr.trained votes.
// policy_loss: TTRL's verl actor, the same code as the EVOL-RL fork's
// (reglab/actor_loss.h), with TTRL's settings (examples/ttrl/*.sh and
// ppo_trainer.yaml): eps 0.2/0.2, c 3, entropy 0, low_var_kl 0.001, token-mean.
#include <reglab/method.h>
#include <reglab/plugin.h>
#include <reglab/rlvr.h>

#include <torch/types.h>

#include <cstdint>
#include <vector>

#include "reglab/actor_loss.h"

namespace {

constexpr auto kParams = reglab::grpo::actor_params({});

class Ttrl final : public reglab::Method {
 public:
  void setup(const reglab::MethodContext& ctx) override {
    reglab::grpo::declare_actor_metrics(ctx.metrics);
    // The share of each prompt's samples that agree with its majority answer:
    // a diagnostic of the label-free reward, not a score.
    ctx.metrics.declare("method.majority_ratio", reglab::MetricDirection::kNone);
    options_ = reglab::grpo::actor_options(ctx.params);
  }

  reglab::RlvrRequirements rlvr_requirements() const override { return {}; }

  std::vector<double> rewards(const reglab::RlvrGroup& group, const reglab::StepContext& step) override {
    const auto vote = reglab::rlvr::majority_vote(group.answers);
    means_.add("method.majority_ratio",
               static_cast<double>(vote.count) / static_cast<double>(group.answers.size()), step);
    return reglab::rlvr::majority_rewards(group.answers, vote.label);
  }

  reglab::RlvrLoss policy_loss(const reglab::RlvrBatch& batch, const reglab::StepContext& step) override {
    return reglab::grpo::actor_step(batch, options_, means_, step);
  }

 private:
  reglab::grpo::ActorOptions options_;
  reglab::grpo::StepMeans means_;
};

}  // namespace

REGLAB_PLUGIN(Ttrl,
              .name = "ttrl", .version = "1.0.0",
              .summary = "Test-time RL: majority-vote pseudo-label reward over all votes, GRPO actor loss",
              .paper = "Zuo et al. 2025, TTRL: Test-Time Reinforcement Learning",
              .paradigms = reglab::kRlvr,
              .params = kParams.data(), .num_params = kParams.size())
