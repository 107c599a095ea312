// aepo — Arbitrary Entropy Policy Optimization (Wang et al. 2025), as the
// official 597358816/AEPO @ b353a05 (EasyR1; verl/trainer/ray_trainer.py
// RayPPOTrainer.fit with trainer.algorithm=AEPO, verl/workers/actor/dp_actor.py
// update_policy, verl/trainer/core_algos.py) computes it.
//
// Controlled quantity H: the actor's "entropy_loss" metric of the previous
// RL step, i.e. the mean over that step's policy_loss calls of
//   h = Σ(−log π(sampled token)·m) / (Σm + 1e-8)
// taken from the log-probs being trained (current policy, before the call's
// backward). H = 0 before the first update.
//
// Per RL step (rlvr_extra_rows):
//   T = T_high if H ≤ target else T_low;
//   re-sample the first ⌊P·prompt_fraction⌋ prompts n times each at T;
//   A = GRPO advantages of those rows within their prompt's group;
//   selected = rows with A > adv_threshold, in sampling order;
//   k = min(max_rows, |selected|), halved (floor) when H > target;
//   the first k selected rows, with advantage 1, replace the first k rows of
//   the ordinary batch.
// Loss (policy_loss): dual-clip PPO with token-mean aggregation; no KL and no
// entropy term (AEPO's script sets algorithm.disable_kl=true; EasyR1's
// use_entropy_loss is off).
// Reward: 1 when the final answer equals the ground truth, else 0 (the
// official math_compute_score returns accuracy only; its format term is
// commented out).
#include <torch/types.h>

#include <cmath>
#include <cstdint>
#include <iterator>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "reglab/method.h"
#include "reglab/plugin.h"
#include "reglab/rlvr.h"

namespace {

constexpr reglab::ParamSpec kParams[] = {
    {.name = "target_entropy", .type = reglab::ParamType::kFloat, .default_value = "0.5", .min = 0.0,
     .has_min = true,
     .doc = "entropy target H (official trainer.entropy_base: 0.5 in the script; the paper's best run used 0.75)"},
    {.name = "n", .type = reglab::ParamType::kInt, .default_value = "5", .min = 2.0, .max = 4096.0, .has_min = true,
     .has_max = true, .doc = "responses re-sampled per chosen prompt (official: rollout.n = 5; GRPO needs n > 1)"},
    {.name = "temperature_high", .type = reglab::ParamType::kFloat, .default_value = "1.2", .min = 1e-6,
     .has_min = true, .doc = "sampling temperature of the regulariser batch while H <= target"},
    {.name = "temperature_low", .type = reglab::ParamType::kFloat, .default_value = "0.8", .min = 1e-6,
     .has_min = true, .doc = "sampling temperature of the regulariser batch while H > target"},
    {.name = "max_rows", .type = reglab::ParamType::kInt, .default_value = "60", .min = 0.0, .has_min = true,
     .doc = "most rows replaced per step (official trainer.reinforce_sample_num = 60; halved while H > target)"},
    {.name = "adv_threshold", .type = reglab::ParamType::kFloat, .default_value = "0.05",
     .doc = "a re-sampled row is kept when its GRPO advantage is > this (official 0.05)"},
    {.name = "prompt_fraction", .type = reglab::ParamType::kFloat, .default_value = "0.25", .min = 0.0, .max = 1.0,
     .has_min = true, .has_max = true,
     .doc = "the first floor(P * fraction) prompts of the step are re-sampled (official: the first quarter)"},
    {.name = "clip_low", .type = reglab::ParamType::kFloat, .default_value = "0.2", .min = 0.0, .max = 1.0,
     .has_min = true, .has_max = true, .doc = "PPO ratio clipped below at 1 - clip_low (EasyR1 clip_ratio_low)"},
    {.name = "clip_high", .type = reglab::ParamType::kFloat, .default_value = "0.2", .min = 0.0, .has_min = true,
     .doc = "PPO ratio clipped above at 1 + clip_high (EasyR1 clip_ratio_high)"},
    {.name = "clip_ratio_c", .type = reglab::ParamType::kFloat, .default_value = "3.0", .min = 1.0000000000000002,
     .has_min = true, .doc = "dual clip: for A < 0 the token loss is at most -A * c; must be > 1 (EasyR1 clip_ratio_dual)"},
    {.name = "loss_agg", .type = reglab::ParamType::kString, .default_value = "\"token-mean\"",
     .choices = "token-mean|seq-mean-token-sum|seq-mean-token-mean",
     .doc = "loss aggregation over the mini-batch (EasyR1 always uses token-mean)"},
};

constexpr double kExtraAdvantage = 1.0;  // the official code sets the kept rows' advantage to ones
constexpr double kMaskedMeanEps = 1e-8;  // EasyR1's VF.masked_mean

class Aepo final : public reglab::Method {
 public:
  void setup(const reglab::MethodContext& ctx) override {
    // Diagnostics of the entropy control, none of them a score: the entropy
    // tracks a target from either side, the temperature and row counts are settings
    // the method picks each step.
    using reglab::MetricDirection;
    for (const char* key : {"method.entropy", "method.temperature", "method.selected_rows", "method.replaced_rows",
                            "method.entropy_estimate"})
      ctx.metrics.declare(key, MetricDirection::kNone);
    target_ = ctx.params.get_double("target_entropy");
    n_ = ctx.params.get_int("n");
    t_high_ = ctx.params.get_double("temperature_high");
    t_low_ = ctx.params.get_double("temperature_low");
    max_rows_ = ctx.params.get_int("max_rows");
    threshold_ = ctx.params.get_double("adv_threshold");
    fraction_ = ctx.params.get_double("prompt_fraction");
    loss_options_.clip_low = ctx.params.get_double("clip_low");
    loss_options_.clip_high = ctx.params.get_double("clip_high");
    loss_options_.clip_ratio_c = ctx.params.get_double("clip_ratio_c");
    loss_options_.agg = reglab::rlvr::agg_mode_from_name(ctx.params.get_string("loss_agg"));
    loss_options_.convention = reglab::rlvr::Convention::fork;
    // The core validates against the schema; these guard direct use.
    if (n_ < 2) throw std::invalid_argument("aepo: n must be >= 2 (GRPO groups), got " + std::to_string(n_));
    if (!(t_high_ > 0.0) || !(t_low_ > 0.0)) throw std::invalid_argument("aepo: temperatures must be > 0");
    if (max_rows_ < 0) throw std::invalid_argument("aepo: max_rows must be >= 0");
    if (!(fraction_ >= 0.0 && fraction_ <= 1.0)) throw std::invalid_argument("aepo: prompt_fraction must be in [0, 1]");
    if (!(loss_options_.clip_ratio_c > 1.0)) throw std::invalid_argument("aepo: clip_ratio_c must be > 1");
    if (!std::isfinite(threshold_)) throw std::invalid_argument("aepo: adv_threshold must be finite");
    ctx.log.info("aepo: target entropy " + std::to_string(target_) + ", T_high " + std::to_string(t_high_) +
                 ", T_low " + std::to_string(t_low_) + ", n " + std::to_string(n_) + ", max_rows " +
                 std::to_string(max_rows_));
  }

  reglab::RlvrRequirements rlvr_requirements() const override { return {.ground_truth = true, .embeddings = false}; }

  std::vector<double> rewards(const reglab::RlvrGroup& group, const reglab::StepContext& /*step*/) override {
    if (!group.truth) throw std::invalid_argument("aepo: the group has no ground-truth answer");
    std::vector<double> r;
    r.reserve(group.answers.size());
    for (const auto& a : group.answers) r.push_back(a.has_value() && *a == *group.truth ? 1.0 : 0.0);
    return r;
  }

  std::optional<reglab::RlvrBatchEdit> rlvr_extra_rows(reglab::RlvrSampler& sampler,
                                                       const reglab::StepContext& step) override {
    commit_if_new_step(step.epoch);
    if (!std::isfinite(entropy_))
      throw std::runtime_error("aepo: the controlled entropy is not finite (" + std::to_string(entropy_) +
                               "): the policy's log-probs were not finite");
    const bool raise = entropy_ <= target_;
    const double temperature = raise ? t_high_ : t_low_;
    step.metrics.record("method.entropy", entropy_, step.epoch);
    step.metrics.record("method.temperature", temperature, step.epoch);

    const auto num = static_cast<std::int64_t>(std::floor(static_cast<double>(sampler.num_prompts) * fraction_));
    std::int64_t replaced = 0, selected_count = 0;
    std::optional<reglab::RlvrBatchEdit> edit;
    if (num > 0 && sampler.sample) {
      std::vector<std::int64_t> prompts(static_cast<std::size_t>(num));
      for (std::int64_t i = 0; i < num; ++i) prompts[static_cast<std::size_t>(i)] = i;
      reglab::RlvrRows rows = sampler.sample(prompts, n_, temperature);
      if (rows.rewards.size() != rows.prompt.size())
        throw std::invalid_argument("aepo: the sampler returned " + std::to_string(rows.rewards.size()) +
                                    " rewards for " + std::to_string(rows.prompt.size()) + " rows");
      std::vector<std::int64_t> selected;
      if (!rows.rewards.empty()) {
        const torch::Tensor scores =
            torch::tensor(rows.rewards, torch::TensorOptions().dtype(torch::kDouble));
        const torch::Tensor adv = reglab::rlvr::grpo_advantages(scores, rows.prompt);
        const double* a = adv.data_ptr<double>();
        for (std::int64_t i = 0; i < adv.size(0); ++i)
          if (a[i] > threshold_) selected.push_back(i);
      }
      selected_count = static_cast<std::int64_t>(selected.size());
      // The official code would crash on an empty selection (None has no
      // len); here the ordinary batch is then left as it is.
      std::int64_t k = std::min<std::int64_t>(max_rows_, selected_count);
      if (!raise) k /= 2;
      k = std::min<std::int64_t>(k, sampler.batch_rows);
      if (k > 0) {
        edit.emplace();
        edit->keep.assign(selected.begin(), selected.begin() + k);
        edit->advantages.assign(static_cast<std::size_t>(k), kExtraAdvantage);
        edit->rows = std::move(rows);
        replaced = k;
      }
    }
    step.metrics.record("method.selected_rows", static_cast<double>(selected_count), step.epoch);
    step.metrics.record("method.replaced_rows", static_cast<double>(replaced), step.epoch);
    return edit;
  }

  reglab::RlvrLoss policy_loss(const reglab::RlvrBatch& batch, const reglab::StepContext& step) override {
    commit_if_new_step(step.epoch);
    const reglab::rlvr::PolicyLoss pl = reglab::rlvr::ppo_policy_loss(batch.old_log_prob, batch.log_prob,
                                                                      batch.advantages, batch.response_mask,
                                                                      loss_options_);
    double h = 0.0;
    {
      torch::NoGradGuard no_grad;
      const torch::Tensor m = batch.response_mask.to(batch.log_prob.scalar_type());
      h = ((-batch.log_prob.detach() * m).sum() / (m.sum() + kMaskedMeanEps)).item<double>();
    }
    pending_sum_ += h;
    pending_count_ += 1;
    pending_epoch_ = step.epoch;
    step.metrics.record("method.entropy_estimate", pending_sum_ / static_cast<double>(pending_count_), step.epoch);
    return {pl.loss, pl.clip_fraction.item<double>()};
  }

  reglab::StateDict state_dict() const override {
    const auto d = torch::TensorOptions().dtype(torch::kDouble);
    const auto l = torch::TensorOptions().dtype(torch::kLong);
    return {{"entropy", torch::tensor(entropy_, d)},
            {"pending_sum", torch::tensor(pending_sum_, d)},
            {"pending_count", torch::tensor(pending_count_, l)},
            {"pending_epoch", torch::tensor(pending_epoch_, l)}};
  }

  void load_state_dict(const reglab::StateDict& state) override {
    auto get = [&](const char* key) -> const torch::Tensor& {
      auto it = state.find(key);
      if (it == state.end() || !it->second.defined() || it->second.numel() != 1)
        throw std::invalid_argument(std::string("aepo: state entry '") + key + "' is missing or not a scalar");
      return it->second;
    };
    const double entropy = get("entropy").item<double>();
    const double sum = get("pending_sum").item<double>();
    const std::int64_t count = get("pending_count").item<std::int64_t>();
    const std::int64_t epoch = get("pending_epoch").item<std::int64_t>();
    if (count < 0) throw std::invalid_argument("aepo: state entry 'pending_count' is negative");
    entropy_ = entropy;
    pending_sum_ = sum;
    pending_count_ = count;
    pending_epoch_ = epoch;
  }

 private:
  // The official trainer reads the actor's metric after the update; the
  // step's calls are complete once a call of a later step arrives.
  void commit_if_new_step(std::int64_t epoch) {
    if (pending_count_ > 0 && pending_epoch_ != epoch) {
      entropy_ = pending_sum_ / static_cast<double>(pending_count_);
      pending_sum_ = 0.0;
      pending_count_ = 0;
    }
  }

  double target_ = 0.5;
  std::int64_t n_ = 5;
  double t_high_ = 1.2;
  double t_low_ = 0.8;
  std::int64_t max_rows_ = 60;
  double threshold_ = 0.05;
  double fraction_ = 0.25;
  reglab::rlvr::PolicyLossOptions loss_options_;

  double entropy_ = 0.0;  // official: `entropy = 0` before the first step
  double pending_sum_ = 0.0;
  std::int64_t pending_count_ = 0;
  std::int64_t pending_epoch_ = -1;
};

}  // namespace

REGLAB_PLUGIN(Aepo,
              .name = "aepo", .version = "1.0.0",
              .summary = "GRPO whose first rows are replaced by correct answers sampled at a temperature that steers "
                         "the entropy to a target",
              .paper = "Wang et al. 2025, Arbitrary Entropy Policy Optimization Breaks The Exploration Bottleneck of "
                       "Reinforcement Learning",
              .paradigms = reglab::kRlvr,
              .params = kParams, .num_params = std::size(kParams))
