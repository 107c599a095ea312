// epo — Entropy-regularized Policy Optimization for LLM agents (Xu et al.
// 2025), as the official WujiangXu/EPO @ 5b6fa98 computes it
// (verl/workers/actor/dp_actor.py update_policy, generate_entropy_penalty,
// _calculate_epoch_based_entropy_weight; verl/trainer/ppo/ray_trainer.py
// entropy_history; agent_system/multi_turn_rollout/rollout_loop.py
// step_entropy_list), for single-turn episodes.
//
// Per policy_loss call, with H_t the full-vocabulary entropy of the logits
// (already divided by the temperature) at each position:
//   history: at the first call of each RL step, e_s = Σ H_t·m / Σm over the
//     call's rows is appended (the official rollout measures it on the step's
//     batch with the pre-update policy, before the update reads the history);
//     H̄ = mean of all entries so far, the current step's included;
//   band: a token is in band when min_ratio·H̄ < H_t < max_ratio·H̄ (token
//     mode; seq mode compares each row's plain mean over all T positions);
//   mask M_t = 0 in band, out_range_penalty outside, times the phase weight
//     w(e) of the RL step e (when phase_weights);
//   loss = pg − entropy_coeff·[agg(H) − smooth_coeff·agg(M)] + kl_coef·agg(k3),
//     the whole entropy bracket dropped when entropy_coeff = 0.
// M is a constant, so the band term shifts the loss but not its gradient.
// penalty = "differentiable" replaces M_t by
//   D_t = out_range_penalty·w(e)·[relu(min_ratio·H̄ − H_t) + relu(H_t − max_ratio·H̄)]
// (H_t with its gradient; the row mean in seq mode), which pulls entropy
// outside the band back towards it.
#include <torch/types.h>

#include <cmath>
#include <cstdint>
#include <iterator>
#include <stdexcept>
#include <string>
#include <vector>

#include "reglab/method.h"
#include "reglab/plugin.h"
#include "reglab/rlvr.h"

namespace {

constexpr reglab::ParamSpec kParams[] = {
    {.name = "entropy_coeff", .type = reglab::ParamType::kFloat, .default_value = "0.001", .min = 0.0,
     .has_min = true, .doc = "weight of the entropy bracket (official actor.entropy_coeff 0.001)"},
    {.name = "smooth_coeff", .type = reglab::ParamType::kFloat, .default_value = "1.0", .min = 0.0, .has_min = true,
     .doc = "weight of the band term inside the bracket (official entropy_smooth_coeff 1.0)"},
    {.name = "kl_coef", .type = reglab::ParamType::kFloat, .default_value = "0.01", .min = 0.0, .has_min = true,
     .doc = "weight of the k3 KL to the reference policy (official kl_loss_coef 0.01, low_var_kl)"},
    {.name = "smooth", .type = reglab::ParamType::kBool, .default_value = "true",
     .doc = "add the entropy smoothing (band) term (official entropy_smooth, on in the EPO runs)"},
    {.name = "min_ratio", .type = reglab::ParamType::kFloat, .default_value = "0.0", .min = 0.0, .has_min = true,
     .doc = "lower edge of the band as a multiple of the historical mean entropy (README runs: 0)"},
    {.name = "max_ratio", .type = reglab::ParamType::kFloat, .default_value = "2.0", .min = 0.0, .has_min = true,
     .doc = "upper edge of the band as a multiple of the historical mean entropy (README runs: 2.0)"},
    {.name = "out_range_penalty", .type = reglab::ParamType::kFloat, .default_value = "0.1", .min = 0.0,
     .has_min = true, .doc = "mask value outside the band (README: 0.1 ALFWorld, 0.05 ScienceWorld)"},
    {.name = "mask_mode", .type = reglab::ParamType::kString, .default_value = "\"token\"", .choices = "token|seq",
     .doc = "band test per token, or per row on the row's mean entropy over all positions (official modes)"},
    {.name = "phase_weights", .type = reglab::ParamType::kBool, .default_value = "true",
     .doc = "scale the mask by the phase weight of the RL step (official enable_smooth_weights, on in the README runs)"},
    {.name = "phase_epochs", .type = reglab::ParamType::kInt, .default_value = "150", .min = 0.0, .has_min = true,
     .doc = "length of the phase schedule in RL steps (official: 150, fixed in the code); 0 = the run's RL steps"},
    {.name = "penalty", .type = reglab::ParamType::kString, .default_value = "\"constant\"",
     .choices = "constant|differentiable",
     .doc = "constant: the official mask (no gradient); differentiable: a penalty on the distance outside the band"},
    {.name = "clip_low", .type = reglab::ParamType::kFloat, .default_value = "0.2", .min = 0.0, .max = 1.0,
     .has_min = true, .has_max = true, .doc = "PPO ratio clipped below at 1 - clip_low"},
    {.name = "clip_high", .type = reglab::ParamType::kFloat, .default_value = "0.2", .min = 0.0, .has_min = true,
     .doc = "PPO ratio clipped above at 1 + clip_high"},
    {.name = "clip_ratio_c", .type = reglab::ParamType::kFloat, .default_value = "3.0", .min = 1.0000000000000002,
     .has_min = true, .doc = "dual clip: for A < 0 the token loss is at most -A * c; must be > 1"},
    {.name = "loss_agg", .type = reglab::ParamType::kString, .default_value = "\"token-mean\"",
     .choices = "token-mean|seq-mean-token-sum|seq-mean-token-mean",
     .doc = "aggregation of every per-token term (official loss_agg_mode token-mean)"},
};

// The official phase weight (max_epochs = M, fixed at 150 in the code):
// e clamped to [0, M], h = ⌊M/2⌋; e ≤ h: 1 − 0.2·(1 − exp(−2e/h));
// e > h: 0.8·exp(−3(e − h)/(M − h)).
double phase_weight(std::int64_t epoch, std::int64_t max_epochs) {
  if (max_epochs <= 0) return 1.0;
  const std::int64_t e = std::max<std::int64_t>(0, std::min(epoch, max_epochs));
  const std::int64_t half = max_epochs / 2;
  if (e <= half) {
    if (half == 0) return 1.0;
    const double progress = static_cast<double>(e) / static_cast<double>(half);
    return 1.0 - 0.2 * (1.0 - std::exp(-2.0 * progress));
  }
  const std::int64_t remaining = max_epochs - half;
  const double progress = static_cast<double>(e - half) / static_cast<double>(remaining);
  return 0.8 * std::exp(-3.0 * progress);
}

class Epo final : public reglab::Method {
 public:
  void setup(const reglab::MethodContext& ctx) override {
    // Diagnostics of the entropy regulariser, none of them a score (an entropy
    // in its band is a setting of the method, not better or worse per se).
    using reglab::MetricDirection;
    for (const char* key : {"method.entropy_history_mean", "method.phase_weight", "method.smoothing_term",
                            "method.penalty_differentiable", "method.in_band_fraction"})
      ctx.metrics.declare(key, MetricDirection::kNone);
    entropy_coef_ = ctx.params.get_double("entropy_coeff");
    smooth_coef_ = ctx.params.get_double("smooth_coeff");
    kl_coef_ = ctx.params.get_double("kl_coef");
    smooth_ = ctx.params.get_bool("smooth");
    min_ratio_ = ctx.params.get_double("min_ratio");
    max_ratio_ = ctx.params.get_double("max_ratio");
    penalty_value_ = ctx.params.get_double("out_range_penalty");
    token_mode_ = ctx.params.get_string("mask_mode") == "token";
    phase_weights_ = ctx.params.get_bool("phase_weights");
    phase_epochs_ = ctx.params.get_int("phase_epochs");
    if (phase_epochs_ == 0) phase_epochs_ = ctx.total_epochs;
    differentiable_ = ctx.params.get_string("penalty") == "differentiable";
    loss_options_.clip_low = ctx.params.get_double("clip_low");
    loss_options_.clip_high = ctx.params.get_double("clip_high");
    loss_options_.clip_ratio_c = ctx.params.get_double("clip_ratio_c");
    loss_options_.agg = reglab::rlvr::agg_mode_from_name(ctx.params.get_string("loss_agg"));
    loss_options_.convention = reglab::rlvr::Convention::fork;
    if (!(min_ratio_ <= max_ratio_))
      throw std::invalid_argument("epo: min_ratio (" + std::to_string(min_ratio_) + ") must not exceed max_ratio (" +
                                  std::to_string(max_ratio_) + ")");
    if (!(loss_options_.clip_ratio_c > 1.0)) throw std::invalid_argument("epo: clip_ratio_c must be > 1");
    ctx.log.info(std::string("epo: entropy smoothing ") + (smooth_ ? "on" : "off") + ", penalty " +
                 (differentiable_ ? "differentiable (distance outside the band)" : "constant (official mask)") +
                 ", band (" + std::to_string(min_ratio_) + ", " + std::to_string(max_ratio_) + ") x H_hist");
  }

  reglab::RlvrRequirements rlvr_requirements() const override { return {.ground_truth = true, .embeddings = false}; }

  std::vector<double> rewards(const reglab::RlvrGroup& group, const reglab::StepContext& /*step*/) override {
    if (!group.truth) throw std::invalid_argument("epo: the group has no ground-truth answer");
    std::vector<double> r;
    r.reserve(group.answers.size());
    for (const auto& a : group.answers) r.push_back(a.has_value() && *a == *group.truth ? 1.0 : 0.0);
    return r;
  }

  reglab::RlvrLoss policy_loss(const reglab::RlvrBatch& batch, const reglab::StepContext& step) override {
    if (!batch.logits.defined() || batch.logits.dim() != 3)
      throw std::invalid_argument("epo: the batch needs logits [B, T, V]");
    const torch::Tensor& mask = batch.response_mask;
    const reglab::rlvr::AggMode agg = loss_options_.agg;
    const reglab::rlvr::PolicyLoss pl = reglab::rlvr::ppo_policy_loss(batch.old_log_prob, batch.log_prob,
                                                                      batch.advantages, mask, loss_options_);
    const torch::Tensor entropy = reglab::rlvr::entropy_from_logits(batch.logits);  // [B, T]
    if (entropy.sizes() != mask.sizes()) throw std::invalid_argument("epo: logits and response_mask disagree");

    if (step.epoch != last_epoch_) {
      torch::NoGradGuard no_grad;
      const torch::Tensor m = mask.to(entropy.scalar_type());
      const double tokens = m.sum().item<double>();
      if (!(tokens > 0.0)) throw std::invalid_argument("epo: the step's first mini-batch has no response tokens");
      history_.push_back((entropy.detach() * m).sum().item<double>() / tokens);
      last_epoch_ = step.epoch;
    }
    double hist = 0.0;
    for (double v : history_) hist += v;
    hist /= static_cast<double>(history_.size());

    torch::Tensor loss = pl.loss;
    double weight = 1.0, in_band = std::nan(""), smoothing = 0.0;
    if (entropy_coef_ != 0.0) {
      torch::Tensor bracket = reglab::rlvr::agg_loss(entropy, mask, agg, loss_options_.convention);
      if (smooth_) {
        weight = phase_weights_ ? phase_weight(step.epoch, phase_epochs_) : 1.0;
        // The official code casts the historical mean to the entropy's dtype
        // before scaling it into the bounds.
        const torch::Tensor avg = torch::full({}, hist, entropy.options().requires_grad(false));
        const torch::Tensor lower = avg * min_ratio_;
        const torch::Tensor upper = avg * max_ratio_;
        const torch::Tensor tested = token_mode_ ? entropy : entropy.mean(-1);  // seq: every position, padding too
        const torch::Tensor inside = tested.detach().gt(lower).logical_and(tested.detach().lt(upper));
        in_band = inside.to(torch::kDouble).mean().item<double>();
        torch::Tensor term;
        if (differentiable_) {
          torch::Tensor distance = (lower - tested).relu() + (tested - upper).relu();
          if (!token_mode_) distance = distance.unsqueeze(-1).expand_as(entropy);
          term = distance * (penalty_value_ * weight);
        } else {
          torch::Tensor m = torch::where(inside, torch::zeros({}, entropy.options()),
                                         torch::full({}, penalty_value_, entropy.options()));
          if (!token_mode_) m = m.unsqueeze(-1).expand_as(entropy);
          term = (m * weight).detach();
        }
        const torch::Tensor smoothing_loss = reglab::rlvr::agg_loss(term, mask, agg, loss_options_.convention);
        smoothing = smoothing_loss.item<double>();
        bracket = bracket - smoothing_loss * smooth_coef_;
      }
      loss = loss - bracket * entropy_coef_;
    }
    if (kl_coef_ != 0.0) {
      const torch::Tensor kl = reglab::rlvr::agg_loss(
          reglab::rlvr::low_var_kl(batch.log_prob, batch.ref_log_prob, loss_options_.convention), mask, agg,
          loss_options_.convention);
      loss = loss + kl * kl_coef_;
    }

    step.metrics.record("method.entropy_history_mean", hist, step.epoch);
    step.metrics.record("method.phase_weight", weight, step.epoch);
    step.metrics.record("method.smoothing_term", smoothing, step.epoch);
    step.metrics.record("method.penalty_differentiable", differentiable_ ? 1.0 : 0.0, step.epoch);
    if (!std::isnan(in_band)) step.metrics.record("method.in_band_fraction", in_band, step.epoch);
    return {loss, pl.clip_fraction.item<double>()};
  }

  reglab::StateDict state_dict() const override {
    return {{"history", torch::tensor(history_, torch::TensorOptions().dtype(torch::kDouble))},
            {"last_epoch", torch::tensor(last_epoch_, torch::TensorOptions().dtype(torch::kLong))}};
  }

  void load_state_dict(const reglab::StateDict& state) override {
    auto h = state.find("history");
    auto e = state.find("last_epoch");
    if (h == state.end() || !h->second.defined() || h->second.dim() != 1)
      throw std::invalid_argument("epo: state entry 'history' is missing or not a vector");
    if (e == state.end() || !e->second.defined() || e->second.numel() != 1)
      throw std::invalid_argument("epo: state entry 'last_epoch' is missing or not a scalar");
    const torch::Tensor v = h->second.to(torch::kDouble).contiguous();
    history_.assign(v.data_ptr<double>(), v.data_ptr<double>() + v.numel());
    last_epoch_ = e->second.item<std::int64_t>();
  }

 private:
  double entropy_coef_ = 0.001;
  double smooth_coef_ = 1.0;
  double kl_coef_ = 0.01;
  bool smooth_ = true;
  double min_ratio_ = 0.0;
  double max_ratio_ = 2.0;
  double penalty_value_ = 0.1;
  bool token_mode_ = true;
  bool phase_weights_ = true;
  std::int64_t phase_epochs_ = 150;
  bool differentiable_ = false;
  reglab::rlvr::PolicyLossOptions loss_options_;

  std::vector<double> history_;    // one entry per RL step seen (the official entropy_history, one turn)
  std::int64_t last_epoch_ = -1;   // the RL step whose entry was appended last
};

}  // namespace

REGLAB_PLUGIN(Epo,
              .name = "epo", .version = "1.0.0",
              .summary = "GRPO with an entropy bonus, an entropy band around the historical mean and phase weights",
              .paper = "Xu et al. 2025, EPO: Entropy-regularized Policy Optimization for LLM Agents Reinforcement "
                       "Learning",
              .paradigms = reglab::kRlvr,
              .params = kParams, .num_params = std::size(kParams))
