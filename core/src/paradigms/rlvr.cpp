#include "paradigms/rlvr.h"

#include <ATen/CPUGeneratorImpl.h>
#include <reglab/rlvr.h>
#include <torch/torch.h>

#include <chrono>
#include <cmath>
#include <optional>

#include "data/arith.h"
#include "paradigms/checkpoint.h"
#include "paradigms/device.h"
#include "paradigms/optim.h"
#include "paradigms/policy_task.h"
#include "plugins/loader.h"
#include "plugins/method_handle.h"
#include "util/hash.h"
#include "util/util.h"

namespace reglab::paradigms {

namespace arith = data::arith;
using config::Json;

torch::Tensor char_ngram_embeddings(const std::vector<std::string>& texts, std::int64_t dims) {
  torch::Tensor out = torch::zeros({static_cast<std::int64_t>(texts.size()), dims}, torch::kFloat);
  auto a = out.accessor<float, 2>();
  for (std::size_t i = 0; i < texts.size(); ++i) {
    const std::string marked = "^" + texts[i] + "$";
    for (std::size_t j = 0; j + 3 <= marked.size(); ++j) {
      // XXH3-64 of the three characters (util/hash.h): fixed, so embeddings are the same in every build.
      const std::uint64_t h = util::hash64(std::string_view(marked).substr(j, 3));
      a[static_cast<std::int64_t>(i)][static_cast<std::int64_t>(h % static_cast<std::uint64_t>(dims))] += 1.0f;
    }
  }
  return out;
}

namespace {

// LibTorch's messages carry a C++ backtrace after the first line.
std::string first_line(const std::string& text) { return text.substr(0, text.find('\n')); }

}  // namespace

void load_warmup_policy(const std::filesystem::path& file, models::Policy& policy) {
  try {
    load_model_weights(file, *policy);
  } catch (const std::exception& e) {
    const models::PolicyOptions& o = policy->options();
    throw std::runtime_error("the warm-up checkpoint " + file.string() +
                             " does not fit this trial's policy (vocabulary " + std::to_string(o.vocab_size) +
                             " tokens, d_model " + std::to_string(o.d_model) + ", depth " + std::to_string(o.depth) +
                             ", heads " + std::to_string(o.heads) + ", context " + std::to_string(o.context) +
                             "): " + first_line(e.what()));
  }
}

namespace {

struct Settings {
  std::int64_t steps, prompts, pool, votes, trained, max_new_tokens, ppo_epochs, minibatch, eval_every, eval_samples;
  double temperature, top_p, grad_clip;
  bool norm_adv_by_std;
  std::string embedding;
};

Settings settings_from(const Json& r, const PolicyTask& task) {
  Settings s;
  s.steps = r.value("steps", std::int64_t{100});
  s.prompts = r.value("prompts", std::int64_t{8});
  s.pool = r.value("pool", std::int64_t{2000});
  s.votes = r.value("votes", std::int64_t{8});
  s.trained = r.value("trained", std::int64_t{8});
  s.max_new_tokens = r.value("max_new_tokens", std::int64_t{0});
  if (s.max_new_tokens == 0) s.max_new_tokens = task.max_response_tokens();
  s.ppo_epochs = r.value("ppo_epochs", std::int64_t{1});
  s.minibatch = r.value("minibatch", std::int64_t{0});
  s.eval_every = r.value("eval_every", std::int64_t{10});
  s.eval_samples = r.value("eval_samples", std::int64_t{16});
  s.temperature = r.value("temperature", 1.0);
  s.top_p = r.value("top_p", 1.0);
  s.grad_clip = r.value("grad_clip", 1.0);
  s.norm_adv_by_std = r.value("norm_adv_by_std", true);
  s.embedding = r.value("embedding", std::string("policy_hidden"));
  // The sweep validator refuses these before any trial starts; a trial run
  // directly (reglab run-trial) must not get further.
  if (s.prompts > s.pool) throw std::invalid_argument("rlvr.prompts exceeds rlvr.pool");
  if (s.trained < 2) throw std::invalid_argument("rlvr.trained must be at least 2 (group-relative advantages)");
  if (s.votes < s.trained) throw std::invalid_argument("rlvr.votes must be at least rlvr.trained");
  if (!(s.temperature > 0)) throw std::invalid_argument("rlvr.temperature must be > 0");
  return s;
}

// One response of the batch being trained on.
struct Row {
  TokenRow tokens;
  std::int64_t prompt = 0;  // position in this step's prompts
  double advantage = 0;
  torch::Tensor old_log_prob;  // [len(response)]
  torch::Tensor ref_log_prob;
};

// Votes of one sampling call, grouped by prompt.
struct Sampled {
  std::vector<TokenRow> rows;  // prompt-major: rows[p * n + j]
  std::vector<std::optional<std::int64_t>> answers;
  std::vector<std::string> texts;  // decoded responses (for embeddings)
  std::int64_t per_prompt = 0;
};

class RlvrTrial {
 public:
  explicit RlvrTrial(runner::TrialEnv& env) : env_(env) {}
  void run();

 private:
  Sampled sample_votes(const std::vector<arith::Problem>& problems, std::int64_t n, double temperature,
                       std::uint64_t stream);
  torch::Tensor embed(const Sampled& s, std::int64_t first, std::int64_t count);
  std::vector<double> group_rewards(const Sampled& s, const std::vector<arith::Problem>& problems,
                                    const StepContext& sctx);
  void take_log_probs(std::vector<Row>& rows);
  void evaluate(std::int64_t at);

  runner::TrialEnv& env_;
  std::uint64_t seed_ = 0;
  torch::Device device_ = torch::kCPU;
  PolicyTask task_;
  Settings s_{};
  EvalSets evals_;
  models::Policy policy_{nullptr};
  models::Policy reference_{nullptr};
  std::unique_ptr<plugins::MethodHandle> method_;
  RlvrRequirements needs_;
  std::int64_t step_ = 0;  // the RL step being run
};

Sampled RlvrTrial::sample_votes(const std::vector<arith::Problem>& problems, std::int64_t n, double temperature,
                                std::uint64_t stream) {
  models::SamplerOptions so;
  so.temperature = temperature;
  so.top_p = s_.top_p;
  so.max_new_tokens = s_.max_new_tokens;
  so.eos_id = arith::kEos;
  so.pad_id = arith::kPad;
  at::Generator gen = seeded_generator(device_, stream);
  const models::PaddedBatch prompts = prompt_batch(problems, n, device_);
  const models::SampleResult out = models::sample(policy_, prompts.tokens, prompts.mask, so, gen);
  Sampled s;
  s.per_prompt = n;
  for (std::size_t p = 0; p < problems.size(); ++p) {
    const std::vector<std::int64_t> prompt = arith::prompt_tokens(problems[p]);
    for (std::int64_t j = 0; j < n; ++j) {
      const std::int64_t i = static_cast<std::int64_t>(p) * n + j;
      std::vector<std::int64_t> response = response_row(out.response, out.response_mask, i);
      const auto text = arith::response_text(response);
      s.answers.push_back(text ? arith::parse_answer(*text) : std::nullopt);
      s.texts.push_back(text ? *text : arith::decode(response));
      s.rows.push_back({prompt, std::move(response)});
    }
  }
  return s;
}

torch::Tensor RlvrTrial::embed(const Sampled& s, std::int64_t first, std::int64_t count) {
  if (s_.embedding == "char_ngram") {
    return char_ngram_embeddings(std::vector<std::string>(s.texts.begin() + first, s.texts.begin() + first + count));
  }
  // The frozen warm-up policy's final hidden state, averaged over the response tokens.
  torch::NoGradGuard no_grad;
  const std::vector<TokenRow> rows(s.rows.begin() + first, s.rows.begin() + first + count);
  const PackedRows packed = pack_rows(rows, device_);
  const torch::Tensor hidden = reference_->forward(packed.tokens, packed.attention_mask)
                                   .hidden.narrow(1, packed.prompt_width, packed.response.size(1));
  const torch::Tensor m = packed.response_mask.unsqueeze(-1);
  return ((hidden * m).sum(1) / m.sum(1).clamp_min(1.0)).to(torch::kCPU);
}

std::vector<double> RlvrTrial::group_rewards(const Sampled& s, const std::vector<arith::Problem>& problems,
                                             const StepContext& sctx) {
  std::vector<double> rewards;
  const std::int64_t n = s.per_prompt;
  for (std::size_t p = 0; p < problems.size(); ++p) {
    const std::int64_t first = static_cast<std::int64_t>(p) * n;
    RlvrGroup group;
    group.answers.assign(s.answers.begin() + first, s.answers.begin() + first + n);
    if (needs_.embeddings) group.embeddings = embed(s, first, n);
    if (needs_.ground_truth) group.truth = problems[p].answer();
    group.prompt = static_cast<std::int64_t>(p);
    const std::vector<double> r = method_->rewards(group, sctx);
    rewards.insert(rewards.end(), r.begin(), r.end());
  }
  return rewards;
}

void RlvrTrial::take_log_probs(std::vector<Row>& rows) {
  torch::NoGradGuard no_grad;
  const std::int64_t chunk = s_.minibatch > 0 ? s_.minibatch : 256;
  for (std::size_t start = 0; start < rows.size(); start += static_cast<std::size_t>(chunk)) {
    const std::size_t end = std::min(rows.size(), start + static_cast<std::size_t>(chunk));
    std::vector<TokenRow> tokens;
    for (std::size_t i = start; i < end; ++i) tokens.push_back(rows[i].tokens);
    const PackedRows packed = pack_rows(tokens, device_);
    auto log_probs = [&](models::Policy& model) {
      const torch::Tensor z = response_logits(model->forward(packed.tokens, packed.attention_mask).logits, packed);
      return token_log_probs(z / s_.temperature, packed);
    };
    const torch::Tensor old = log_probs(policy_);
    const torch::Tensor ref = log_probs(reference_);
    for (std::size_t i = start; i < end; ++i) {
      const auto len = static_cast<std::int64_t>(rows[i].tokens.response.size());
      rows[i].old_log_prob = old[static_cast<std::int64_t>(i - start)].narrow(0, 0, len).clone();
      rows[i].ref_log_prob = ref[static_cast<std::int64_t>(i - start)].narrow(0, 0, len).clone();
    }
  }
}

void RlvrTrial::evaluate(std::int64_t at) {
  EvalOptions eo;
  eo.temperature = s_.temperature;
  eo.top_p = s_.top_p;
  eo.samples = s_.eval_samples;
  eo.max_new_tokens = s_.max_new_tokens;
  eo.seed = seed_ * 7919ULL + 17ULL;
  const auto t0 = std::chrono::steady_clock::now();
  for (const auto& [prefix, problems] :
       {std::pair{"eval.id.", &evals_.in_domain}, std::pair{"eval.ood.", &evals_.out_of_domain}}) {
    for (const auto& [name, value] : evaluate_policy(policy_, *problems, eo))
      env_.metrics.record_core(prefix + name, value, at);
  }
  env_.metrics.record_core("time.eval_s",
                           std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(), at);
}

// Pads per-row vectors of different lengths into [B, R].
torch::Tensor pad_rows(const std::vector<Row>& rows, std::size_t begin, std::size_t end, std::int64_t width,
                       torch::Tensor Row::*field, torch::Device device) {
  torch::Tensor out = torch::zeros({static_cast<std::int64_t>(end - begin), width}, torch::kFloat);
  for (std::size_t i = begin; i < end; ++i) {
    const torch::Tensor& v = rows[i].*field;
    out[static_cast<std::int64_t>(i - begin)].narrow(0, 0, v.size(0)).copy_(v.to(torch::kCPU));
  }
  return out.to(device);
}

void RlvrTrial::run() {
  const Json& cfg = env_.config;
  seed_ = static_cast<std::uint64_t>(cfg.value("seed", std::int64_t{0}));
  device_ = trial_device(cfg.at("task"));
  task_ = policy_task_from(cfg.at("arith"));
  s_ = settings_from(cfg.at("rlvr"), task_);
  const models::PolicyOptions popts = policy_options_from(cfg.at("policy"));
  const std::int64_t longest_prompt =
      std::max(arith::max_prompt_tokens(task_.in_domain), arith::max_prompt_tokens(task_.out_of_domain));
  if (longest_prompt + s_.max_new_tokens > popts.context)
    throw std::invalid_argument("policy.context = " + std::to_string(popts.context) +
                                " is shorter than the longest prompt (" + std::to_string(longest_prompt) +
                                " tokens) plus rlvr.max_new_tokens (" + std::to_string(s_.max_new_tokens) + ")");
  if (env_.init_checkpoint.empty())
    throw std::invalid_argument("an rlvr trial starts from a warm-up policy: init.from is not set");

  const std::vector<arith::Problem> pool = arith::generate_pool(task_.in_domain, arith::Pool::rl, s_.pool, seed_);
  evals_ = eval_sets(task_, /*seed=*/0);

  torch::manual_seed(seed_);
  policy_ = models::Policy(popts);
  load_warmup_policy(env_.init_checkpoint, policy_);
  policy_->to(device_);
  reference_ = models::Policy(popts);
  load_warmup_policy(env_.init_checkpoint, reference_);
  reference_->to(device_);
  reference_->eval();
  for (auto& p : reference_->parameters()) p.requires_grad_(false);

  const OptimOptions oo = optim_options_from(cfg.at("optim"));
  std::unique_ptr<torch::optim::Optimizer> optimizer = make_optimizer(oo, policy_->parameters());

  const Json& method_cfg = cfg.at("method");
  const std::string method_name = method_cfg.at("name").get<std::string>();
  const plugins::LoadedPlugin& plugin = plugins::registry().get(method_name);
  env_.method_version(method_name, plugin.info->version);
  const Params params = plugins::resolve_params(*plugin.info, method_cfg.dump());
  method_ = std::make_unique<plugins::MethodHandle>(plugin);
  method_->setup(MethodContext{params, env_.log, env_.metrics, kRlvr, s_.pool, arith::kVocabSize, s_.steps, device_,
                               torch::kFloat});
  needs_ = method_->rlvr_requirements();
  env_.log.info("rlvr: " + method_name + (needs_.ground_truth ? " (reads the true answers)" : " (label-free)") + ", " +
                std::to_string(s_.steps) + " steps of " + std::to_string(s_.prompts) + " prompts x " +
                std::to_string(s_.votes) + " votes, " + std::to_string(s_.trained) + " trained");

  const std::filesystem::path ckpt = env_.run_dir / "checkpoint.pt";
  const LoopPosition resumed = resume_or_restart(ckpt, *policy_, *optimizer, *method_, env_.log, [&] {
    policy_ = models::Policy(popts);
    load_warmup_policy(env_.init_checkpoint, policy_);
    policy_->to(device_);
    optimizer = make_optimizer(oo, policy_->parameters());
  });
  std::int64_t opt_step = resumed.step;
  if (resumed.next_epoch == 0) {
    evaluate(0);
    env_.metrics.flush();
  }
  bool first_step_recorded = false;

  for (step_ = resumed.next_epoch; step_ < s_.steps; ++step_) {
    if (env_.interrupted()) throw runner::Interrupted();
    const auto t0 = std::chrono::steady_clock::now();
    StepContext sctx{step_, s_.steps, opt_step, env_.log, env_.metrics};
    const std::uint64_t stream = seed_ * 1000003ULL + static_cast<std::uint64_t>(step_);

    // 1-3. Prompts, votes, rewards.
    auto pick = at::make_generator<at::CPUGeneratorImpl>(stream ^ 0x5bd1e995ULL);
    const torch::Tensor order = torch::randperm(s_.pool, pick, torch::kLong);
    std::vector<arith::Problem> problems;
    for (std::int64_t i = 0; i < s_.prompts; ++i)
      problems.push_back(pool[static_cast<std::size_t>(order[i].item<std::int64_t>())]);
    const Sampled votes = sample_votes(problems, s_.votes, s_.temperature, stream);
    const std::vector<double> rewards = group_rewards(votes, problems, sctx);

    // Training metrics from the votes (the truth is used for metrics only).
    double label_hits = 0, invalid = 0, length = 0, distinct = 0;
    for (std::size_t p = 0; p < problems.size(); ++p) {
      const auto first = votes.answers.begin() + static_cast<std::int64_t>(p) * s_.votes;
      const std::vector<std::optional<std::int64_t>> answers(first, first + s_.votes);
      if (rlvr::majority_vote(answers).label == std::optional<std::int64_t>(problems[p].answer())) label_hits += 1;
      distinct += static_cast<double>(distinct_answers(answers));
    }
    for (std::size_t i = 0; i < votes.rows.size(); ++i) {
      if (!votes.answers[i]) invalid += 1;
      length += static_cast<double>(votes.rows[i].response.size());
    }

    // 4. The batch: the first `trained` votes of each prompt.
    std::vector<Row> rows;
    std::vector<double> trained_rewards;
    std::vector<std::int64_t> groups;
    for (std::int64_t p = 0; p < s_.prompts; ++p) {
      for (std::int64_t j = 0; j < s_.trained; ++j) {
        const std::size_t i = static_cast<std::size_t>(p * s_.votes + j);
        rows.push_back(Row{votes.rows[i], p, 0.0, {}, {}});
        trained_rewards.push_back(rewards[i]);
        groups.push_back(p);
      }
    }
    const torch::Tensor adv = rlvr::grpo_advantages(torch::tensor(trained_rewards, torch::kDouble), groups,
                                                    rlvr::AdvantageOptions{1e-6, s_.norm_adv_by_std});
    for (std::size_t i = 0; i < rows.size(); ++i) rows[i].advantage = adv[static_cast<std::int64_t>(i)].item<double>();

    // 5. The method's own rows.
    std::vector<Sampled> extra;
    RlvrSampler sampler;
    sampler.num_prompts = s_.prompts;
    sampler.batch_rows = static_cast<std::int64_t>(rows.size());
    sampler.sample = [&](const std::vector<std::int64_t>& which, std::int64_t n, double temperature) {
      if (n < 1 || !(temperature > 0)) throw std::invalid_argument("RlvrSampler: n must be >= 1 and temperature > 0");
      std::vector<arith::Problem> chosen;
      for (std::int64_t p : which) {
        if (p < 0 || p >= s_.prompts)
          throw std::invalid_argument("RlvrSampler: prompt " + std::to_string(p) + " is not in this step");
        chosen.push_back(problems[static_cast<std::size_t>(p)]);
      }
      Sampled more = sample_votes(chosen, n, temperature, stream * 31ULL + extra.size() + 1);
      RlvrRows out;
      const std::vector<double> r = group_rewards(more, chosen, sctx);
      out.rewards = r;
      for (std::size_t k = 0; k < which.size(); ++k)
        for (std::int64_t j = 0; j < n; ++j) out.prompt.push_back(which[k]);
      out.handle = static_cast<std::int64_t>(extra.size());
      extra.push_back(std::move(more));
      return out;
    };
    std::int64_t replaced = 0;
    if (std::optional<RlvrBatchEdit> edit = method_->rlvr_extra_rows(sampler, sctx)) {
      if (edit->rows.handle < 0 || edit->rows.handle >= static_cast<std::int64_t>(extra.size()))
        throw std::runtime_error("method '" + method_name + "': rlvr_extra_rows returned rows it did not sample");
      const Sampled& from = extra[static_cast<std::size_t>(edit->rows.handle)];
      for (std::size_t k = 0; k < edit->keep.size(); ++k) {
        const auto src = static_cast<std::size_t>(edit->keep[k]);
        rows[k] = Row{from.rows[src], edit->rows.prompt[src], edit->advantages[k], {}, {}};
      }
      replaced = static_cast<std::int64_t>(edit->keep.size());
    }

    // 6. Old and reference log-probs, before any update of this step.
    take_log_probs(rows);

    // 7. PPO epochs over mini-batches.
    const std::size_t mb = s_.minibatch > 0 ? static_cast<std::size_t>(s_.minibatch) : rows.size();
    double clip_sum = 0, kl_sum = 0, entropy_sum = 0, loss_sum = 0, norm_sum = 0;
    std::int64_t clip_count = 0, updates = 0;
    policy_->train();
    for (std::int64_t e = 0; e < s_.ppo_epochs; ++e) {
      for (std::size_t start = 0; start < rows.size(); start += mb) {
        if (env_.interrupted()) throw runner::Interrupted();
        const std::size_t end = std::min(rows.size(), start + mb);
        std::vector<TokenRow> tokens;
        std::vector<double> advantages;
        for (std::size_t i = start; i < end; ++i) {
          tokens.push_back(rows[i].tokens);
          advantages.push_back(rows[i].advantage);
        }
        const PackedRows packed = pack_rows(tokens, device_);
        const std::int64_t width = packed.response.size(1);
        const torch::Tensor scaled =
            response_logits(policy_->forward(packed.tokens, packed.attention_mask).logits, packed) / s_.temperature;
        RlvrBatch batch;
        batch.logits = scaled;
        batch.log_prob = token_log_probs(scaled, packed);
        batch.old_log_prob = pad_rows(rows, start, end, width, &Row::old_log_prob, device_);
        batch.ref_log_prob = pad_rows(rows, start, end, width, &Row::ref_log_prob, device_);
        batch.response_mask = packed.response_mask;
        batch.advantages =
            rlvr::broadcast_advantages(torch::tensor(advantages, torch::kFloat).to(device_), packed.response_mask);
        batch.rows = torch::arange(static_cast<std::int64_t>(start), static_cast<std::int64_t>(end), torch::kLong);
        sctx.step = opt_step;
        const RlvrLoss out = method_->policy_loss(batch, sctx);
        const double value = out.loss.item<double>();
        if (!std::isfinite(value))
          throw std::runtime_error("loss is " + std::to_string(value) + " at RL step " + std::to_string(step_ + 1));
        optimizer->zero_grad();
        out.loss.backward();
        double norm = 0;
        if (s_.grad_clip > 0) {
          norm = torch::nn::utils::clip_grad_norm_(policy_->parameters(), s_.grad_clip);
        } else {
          for (const auto& p : policy_->parameters())
            if (p.grad().defined()) norm += p.grad().pow(2).sum().item<double>();
          norm = std::sqrt(norm);
        }
        if (std::isfinite(norm)) {
          optimizer->step();
        } else {
          env_.log.warn("RL step " + std::to_string(step_ + 1) + ": gradient norm is not finite; update skipped");
        }
        {
          torch::NoGradGuard no_grad;
          const torch::Tensor m = packed.response_mask;
          const double tokens_n = m.sum().item<double>();
          kl_sum += (rlvr::low_var_kl(batch.log_prob.detach(), batch.ref_log_prob) * m).sum().item<double>() / tokens_n;
          entropy_sum += (rlvr::entropy_from_logits(scaled.detach()) * m).sum().item<double>() / tokens_n;
        }
        if (std::isfinite(out.clip_fraction)) {
          clip_sum += out.clip_fraction;
          ++clip_count;
        }
        loss_sum += value;
        norm_sum += norm;
        ++updates;
        ++opt_step;
        if (!first_step_recorded) {
          first_step_recorded = true;
          if (env_.spawned_at > 0) env_.metrics.record_core("time.startup_s", util::now_seconds() - env_.spawned_at, 0);
        }
      }
    }

    const std::int64_t s1 = step_ + 1;
    auto& m = env_.metrics;
    const double votes_n = static_cast<double>(votes.rows.size());
    const double prompts_n = static_cast<double>(problems.size());
    double reward_mean = 0;
    for (double r : trained_rewards) reward_mean += r;
    reward_mean /= static_cast<double>(trained_rewards.size());
    m.record_core("rlvr.reward", reward_mean, s1);
    m.record_core("rlvr.label_acc", label_hits / prompts_n, s1);
    m.record_core("rlvr.invalid_frac", invalid / votes_n, s1);
    m.record_core("rlvr.length", length / votes_n, s1);
    m.record_core("rlvr.distinct_answers", distinct / prompts_n, s1);
    if (clip_count > 0) m.record_core("rlvr.clip_frac", clip_sum / static_cast<double>(clip_count), s1);
    const double u = static_cast<double>(updates);
    m.record_core("rlvr.kl", kl_sum / u, s1);
    m.record_core("rlvr.entropy", entropy_sum / u, s1);
    m.record_core("rlvr.loss", loss_sum / u, s1);
    m.record_core("rlvr.grad_norm", norm_sum / u, s1);
    m.record_core("rlvr.replaced_rows", static_cast<double>(replaced), s1);
    m.record_core("time.step_s", std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(), s1);
    const bool eval_now = s1 % s_.eval_every == 0 || s1 == s_.steps;
    if (eval_now) {
      evaluate(s1);
      save_checkpoint(ckpt, *policy_, *optimizer, method_->state_dict(), {s1, opt_step});
      env_.artifact("checkpoint", ckpt);
    }
    m.flush();
    env_.heartbeat();
    env_.log.info("step " + std::to_string(s1) + "/" + std::to_string(s_.steps) + " reward " +
                  std::to_string(reward_mean) + " label_acc " + std::to_string(label_hits / prompts_n) + " entropy " +
                  std::to_string(entropy_sum / u));
    env_.report(Json{{"epoch", s1}, {"epochs", s_.steps}, {"metric", "rlvr.reward"}, {"value", reward_mean}});
  }
}

}  // namespace

void run_rlvr(runner::TrialEnv& env) { RlvrTrial(env).run(); }

}  // namespace reglab::paradigms
