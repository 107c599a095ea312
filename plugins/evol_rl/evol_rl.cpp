// evol_rl — Evolving Language Models without Labels (Zhou et al. 2025), as
// YujunZhou/EVOL-RL @ 19896e0 computes it.
//
// rewards: novelty.h — majority selection (TTRL's vote over all votes of the
// prompt) plus a novelty bonus from the response embeddings
// (semantic_novelty.py). The paradigm trains on the first rlvr.trained
// votes with those rewards.
// policy_loss: the fork's verl actor (reglab/actor_loss.h) with the settings
// of the method's published run (README: `evol_rl.sh --ent 0.003
// --clip-high`): eps_low 0.2, eps_high 0.28, c 3, entropy bonus 0.003,
// low_var_kl 0.001, token-mean.
#include <reglab/method.h>
#include <reglab/plugin.h>

#include <torch/types.h>

#include <cmath>
#include <cstdint>
#include <vector>

#include "reglab/actor_loss.h"
#include "novelty.h"

namespace {

constexpr auto kParams = reglab::grpo::actor_params({.clip_high = "0.28", .entropy_coeff = "0.003"});

class EvolRl final : public reglab::Method {
 public:
  void setup(const reglab::MethodContext& ctx) override {
    reglab::grpo::declare_actor_metrics(ctx.metrics);
    // The mean novelty of the step's rollouts: a diagnostic, not a score.
    ctx.metrics.declare("method.novelty_mean", reglab::MetricDirection::kNone);
    options_ = reglab::grpo::actor_options(ctx.params);
  }

  reglab::RlvrRequirements rlvr_requirements() const override { return {.embeddings = true}; }

  std::vector<double> rewards(const reglab::RlvrGroup& group, const reglab::StepContext& step) override {
    const reglab::evol_rl::GroupRewards r = reglab::evol_rl::novelty_rewards(group.answers, group.embeddings);
    double sum = 0.0;
    std::int64_t count = 0;
    for (const double u : r.novelty)
      if (!std::isnan(u)) {
        sum += u;
        ++count;
      }
    if (count > 0) means_.add("method.novelty_mean", sum / static_cast<double>(count), step);
    return r.reward;
  }

  reglab::RlvrLoss policy_loss(const reglab::RlvrBatch& batch, const reglab::StepContext& step) override {
    return reglab::grpo::actor_step(batch, options_, means_, step);
  }

 private:
  reglab::grpo::ActorOptions options_;
  reglab::grpo::StepMeans means_;
};

}  // namespace

REGLAB_PLUGIN(EvolRl,
              .name = "evol_rl", .version = "1.0.0",
              .summary = "Label-free RL: majority vote for selection plus an embedding novelty bonus, GRPO actor loss "
                         "with clip-higher and an entropy bonus",
              .paper = "Zhou et al. 2025, Evolving Language Models without Labels: Majority Drives Selection, "
                       "Novelty Promotes Variation",
              .paradigms = reglab::kRlvr,
              .params = kParams.data(), .num_params = kParams.size())
