// reglab/actor_loss.h — the actor loss of the GRPO family (grpo, ttrl,
// evol_rl, and any out-of-tree RL method built on it), part of the installed
// SDK; header-only. As the FSDP actor of the EVOL-RL copy of verl 0.2
// (YujunZhou/EVOL-RL @ 19896e0, verl/verl/workers/actor/dp_actor.py,
// update_policy; TTRL @ 3e2cc93 carries the same code) composes it per
// micro-batch, and as volcengine/verl @ b178a3c does under
// Convention::b178a3c:
//
//   loss = pg − c_H · H + c_KL · KL
//   pg   = ppo_policy_loss(old_lp, lp, A, mask)          dual clip, aggregated with loss_agg
//   H    = agg(entropy_from_logits(logits), mask)        only when c_H ≠ 0 (verl skips it at 0)
//   KL   = agg(low_var_kl(lp, ref_lp), mask)             only when c_KL ≠ 0 (use_kl_loss)
//
// in that order of operations ((pg − c_H·H) + c_KL·KL). The logits are the
// policy's divided by the temperature, as RlvrBatch gives them. The actor's
// 1/gradient_accumulation factor is 1 here: a mini-batch is one micro-batch.
//
// Each plugin declares the parameters with its own defaults through
// actor_params(); actor_options() reads them back in setup().
#pragma once

#include <reglab/method.h>
#include <reglab/params.h>
#include <reglab/plugin.h>
#include <reglab/rlvr.h>

#include <torch/types.h>
#include <torch/utils.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <map>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace reglab::grpo {

// Default values as TOML literals (strings quoted).
struct ActorDefaults {
  const char* clip_low = "0.2";
  const char* clip_high = "0.2";
  const char* clip_ratio_c = "3.0";
  const char* kl_coef = "0.001";
  const char* entropy_coeff = "0.0";
  const char* loss_agg = "\"token-mean\"";
  const char* convention = "\"fork\"";
};

inline constexpr std::size_t kNumActorParams = 7;

// The smallest double above 1: clip_ratio_c must be strictly greater than 1
// (verl asserts it), and ranges are inclusive.
inline constexpr double kAboveOne = 1.0000000000000002;

constexpr std::array<ParamSpec, kNumActorParams> actor_params(const ActorDefaults& d) {
  return {{
      {.name = "clip_low", .type = ParamType::kFloat, .default_value = d.clip_low, .min = 0.0, .max = 1.0,
       .has_min = true, .has_max = true, .doc = "eps_low: the ratio is clipped below at 1 - clip_low (verl clip_ratio_low)"},
      {.name = "clip_high", .type = ParamType::kFloat, .default_value = d.clip_high, .min = 0.0, .has_min = true,
       .doc = "eps_high: the ratio is clipped above at 1 + clip_high (verl clip_ratio_high)"},
      {.name = "clip_ratio_c", .type = ParamType::kFloat, .default_value = d.clip_ratio_c, .min = kAboveOne,
       .has_min = true, .doc = "dual clip: for A < 0 the token loss is at most -A * clip_ratio_c; must be > 1"},
      {.name = "kl_coef", .type = ParamType::kFloat, .default_value = d.kl_coef, .min = 0.0, .has_min = true,
       .doc = "coefficient of the k3 (low_var_kl) KL to the reference policy; 0 drops the term (use_kl_loss off)"},
      {.name = "entropy_coeff", .type = ParamType::kFloat, .default_value = d.entropy_coeff, .min = 0.0,
       .has_min = true, .doc = "coefficient of the full-vocabulary token entropy bonus (subtracted from the loss); 0 drops the term"},
      {.name = "loss_agg", .type = ParamType::kString, .default_value = d.loss_agg,
       .choices = "token-mean|seq-mean-token-sum|seq-mean-token-mean",
       .doc = "verl loss_agg_mode, used for the policy, entropy and KL terms alike"},
      {.name = "convention", .type = ParamType::kString, .default_value = d.convention, .choices = "fork|b178a3c",
       .doc = "fork: the verl 0.2 copy in EVOL-RL/TTRL; b178a3c: volcengine/verl @ b178a3c (log-ratio clamps, "
              "padding masked before sums)"},
  }};
}

struct ActorOptions {
  rlvr::PolicyLossOptions policy;
  double kl_coef = 0.001;
  double entropy_coeff = 0.0;
};

inline ActorOptions actor_options(const Params& p) {
  ActorOptions o;
  o.policy.clip_low = p.get_double("clip_low");
  o.policy.clip_high = p.get_double("clip_high");
  o.policy.clip_ratio_c = p.get_double("clip_ratio_c");
  o.policy.agg = rlvr::agg_mode_from_name(p.get_string("loss_agg"));
  const std::string& convention = p.get_string("convention");
  if (convention == "fork") {
    o.policy.convention = rlvr::Convention::fork;
  } else if (convention == "b178a3c") {
    o.policy.convention = rlvr::Convention::b178a3c;
  } else {
    throw std::invalid_argument("parameter 'convention' must be fork or b178a3c, got '" + convention + "'");
  }
  o.kl_coef = p.get_double("kl_coef");
  o.entropy_coeff = p.get_double("entropy_coeff");
  return o;
}

struct ActorLoss {
  torch::Tensor loss;     // scalar, differentiable in log_prob (and logits when entropy_coeff ≠ 0)
  torch::Tensor pg_loss;  // the aggregated policy term, detached
  torch::Tensor kl;       // the aggregated k3 KL, detached
  torch::Tensor entropy;  // the aggregated entropy, detached; undefined without logits
  torch::Tensor clip_fraction;  // verl pg_clipfrac, detached
};

inline ActorLoss actor_loss(const RlvrBatch& b, const ActorOptions& o) {
  if (!b.log_prob.defined() || b.log_prob.dim() != 2)
    throw std::invalid_argument("actor loss: log_prob must be [B, T]");
  const bool with_entropy = o.entropy_coeff != 0.0;
  const bool with_kl = o.kl_coef != 0.0;
  if (with_entropy && (!b.logits.defined() || b.logits.dim() != 3 || b.logits.size(0) != b.log_prob.size(0) ||
                       b.logits.size(1) != b.log_prob.size(1)))
    throw std::invalid_argument("actor loss: the entropy term needs logits [B, T, V] matching log_prob");
  if (with_kl && !b.ref_log_prob.defined())
    throw std::invalid_argument("actor loss: the KL term needs ref_log_prob");
  const rlvr::AggMode agg = o.policy.agg;
  const rlvr::Convention conv = o.policy.convention;

  const rlvr::PolicyLoss pg = rlvr::ppo_policy_loss(b.old_log_prob, b.log_prob, b.advantages, b.response_mask, o.policy);
  ActorLoss out;
  out.pg_loss = pg.loss.detach();
  torch::Tensor loss = pg.loss;
  if (with_entropy) {
    const torch::Tensor h = rlvr::entropy_loss(b.logits, b.response_mask, agg, conv);
    loss = loss - h * o.entropy_coeff;
    out.entropy = h.detach();
  } else if (b.logits.defined() && b.logits.dim() == 3) {
    torch::NoGradGuard no_grad;
    out.entropy = rlvr::entropy_loss(b.logits.detach(), b.response_mask, agg, conv);
  }
  if (with_kl) {
    const torch::Tensor kl = rlvr::agg_loss(rlvr::low_var_kl(b.log_prob, b.ref_log_prob, conv), b.response_mask, agg, conv);
    loss = loss + kl * o.kl_coef;
    out.kl = kl.detach();
  } else if (b.ref_log_prob.defined()) {
    torch::NoGradGuard no_grad;
    out.kl = rlvr::agg_loss(rlvr::low_var_kl(b.log_prob.detach(), b.ref_log_prob, conv), b.response_mask, agg, conv);
  }
  out.loss = loss;
  out.clip_fraction = pg.clip_fraction;
  return out;
}

// The actor's diagnostics (method.pg_loss, method.kl, method.entropy) are
// not scores: declared without a direction so that no query ranks them.
// Call it in setup(), with any keys of the method's own.
inline void declare_actor_metrics(MetricSink& metrics) {
  for (const char* key : {"method.pg_loss", "method.kl", "method.entropy"}) metrics.declare(key, MetricDirection::kNone);
}

// Per-RL-step means of a method's diagnostics. The store keeps one value per
// (key, step), and policy_loss / rewards run many times per RL step, so each
// call records the running mean over the step so far: the last write, the
// one kept, is the step's mean.
class StepMeans {
 public:
  void add(const std::string& key, double value, const StepContext& step) {
    if (step.epoch != epoch_) {
      sums_.clear();
      epoch_ = step.epoch;
    }
    auto& [sum, count] = sums_[key];
    sum += value;
    ++count;
    step.metrics.record(key, sum / static_cast<double>(count), step.epoch);
  }

 private:
  std::int64_t epoch_ = -1;
  std::map<std::string, std::pair<double, std::int64_t>> sums_;
};

// The loss of one mini-batch as RlvrLoss, recording method.pg_loss,
// method.kl and method.entropy (the last two when they could be computed);
// the scalars come back to the host in one transfer.
inline RlvrLoss actor_step(const RlvrBatch& b, const ActorOptions& o, StepMeans& means, const StepContext& step) {
  const ActorLoss l = actor_loss(b, o);
  std::vector<std::string> keys = {"method.pg_loss"};
  std::vector<torch::Tensor> values = {l.clip_fraction.reshape({1}).to(l.pg_loss.scalar_type()), l.pg_loss.reshape({1})};
  if (l.kl.defined()) {
    keys.emplace_back("method.kl");
    values.push_back(l.kl.reshape({1}).to(l.pg_loss.scalar_type()));
  }
  if (l.entropy.defined()) {
    keys.emplace_back("method.entropy");
    values.push_back(l.entropy.reshape({1}).to(l.pg_loss.scalar_type()));
  }
  const torch::Tensor host = torch::cat(values).to(torch::kCPU, torch::kDouble).contiguous();
  const double* v = host.data_ptr<double>();
  for (std::size_t i = 0; i < keys.size(); ++i) means.add(keys[i], v[i + 1], step);
  return {l.loss, v[0]};
}

}  // namespace reglab::grpo
