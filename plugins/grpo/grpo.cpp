// grpo — the supervised RLVR baseline: GRPO with a ground-truth reward, as
// the verl 0.2 copy in YujunZhou/EVOL-RL @ 19896e0 computes it (dp_actor.py
// update_policy with core_algos.py), or volcengine/verl @ b178a3c under
// convention = "b178a3c".
//
// rewards: r_i = 1 where the response's answer equals the prompt's true
// answer, else 0 (a response without an answer gets 0).
// policy_loss: reglab/actor_loss.h — dual-clip PPO − entropy_coeff·H + kl_coef·KL.
// Advantages, old and reference log-probs come from the paradigm.
#include <reglab/method.h>
#include <reglab/plugin.h>

#include <torch/types.h>

#include <optional>
#include <stdexcept>
#include <vector>

#include "reglab/actor_loss.h"

namespace {

constexpr auto kParams = reglab::grpo::actor_params({});

class Grpo final : public reglab::Method {
 public:
  void setup(const reglab::MethodContext& ctx) override {
    reglab::grpo::declare_actor_metrics(ctx.metrics);
    options_ = reglab::grpo::actor_options(ctx.params);
  }

  reglab::RlvrRequirements rlvr_requirements() const override { return {.ground_truth = true}; }

  std::vector<double> rewards(const reglab::RlvrGroup& group, const reglab::StepContext& /*step*/) override {
    if (!group.truth.has_value())
      throw std::invalid_argument("grpo: the group of prompt " + std::to_string(group.prompt) +
                                  " has no ground truth (the reward checks answers against it)");
    std::vector<double> r;
    r.reserve(group.answers.size());
    for (const auto& a : group.answers) r.push_back(a.has_value() && *a == *group.truth ? 1.0 : 0.0);
    return r;
  }

  reglab::RlvrLoss policy_loss(const reglab::RlvrBatch& batch, const reglab::StepContext& step) override {
    return reglab::grpo::actor_step(batch, options_, means_, step);
  }

 private:
  reglab::grpo::ActorOptions options_;
  reglab::grpo::StepMeans means_;
};

}  // namespace

REGLAB_PLUGIN(Grpo,
              .name = "grpo", .version = "1.0.0",
              .summary = "GRPO with a ground-truth reward (supervised RLVR baseline): dual-clip PPO, k3 KL, entropy bonus",
              .paper = "Shao et al. 2024, DeepSeekMath (GRPO); verl (Sheng et al. 2024, HybridFlow)",
              .paradigms = reglab::kRlvr,
              .params = kParams.data(), .num_params = kParams.size())
