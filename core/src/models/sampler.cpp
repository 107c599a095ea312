#include "models/sampler.h"

#include <torch/types.h>
#include <torch/utils.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <stdexcept>
#include <string>

namespace reglab::models {

namespace {

void check_options(const Policy& policy, const torch::Tensor& prompts, const torch::Tensor& mask,
                   const SamplerOptions& o) {
  auto fail = [](const std::string& what) { throw std::invalid_argument("sampler: " + what); };
  if (!(o.temperature > 0.0) || !std::isfinite(o.temperature))
    fail("temperature must be > 0, got " + std::to_string(o.temperature));
  if (!(o.top_p > 0.0 && o.top_p <= 1.0)) fail("top_p must lie in (0, 1], got " + std::to_string(o.top_p));
  if (o.max_new_tokens < 1) fail("max_new_tokens must be ≥ 1, got " + std::to_string(o.max_new_tokens));
  const auto vocab = policy->options().vocab_size;
  if (o.eos_id < 0 || o.eos_id >= vocab) fail("eos_id " + std::to_string(o.eos_id) + " outside the vocabulary");
  if (o.pad_id < 0 || o.pad_id >= vocab) fail("pad_id " + std::to_string(o.pad_id) + " outside the vocabulary");
  if (prompts.dim() != 2 || prompts.size(0) < 1) fail("prompts must be [B, T] with B ≥ 1");
  if (!mask.defined() || mask.sizes() != prompts.sizes()) fail("prompt_mask must have the prompts' shape");
  const auto context = policy->options().context;
  if (prompts.size(1) + o.max_new_tokens > context)
    fail("prompts of " + std::to_string(prompts.size(1)) + " columns plus " + std::to_string(o.max_new_tokens) +
         " new tokens exceed the policy's context of " + std::to_string(context));
}

// next(step, previous tokens [B]) -> logits [B, V] of the column to choose.
SampleResult generate(const torch::Tensor& prompts, const torch::Tensor& prompt_mask, const SamplerOptions& options,
                      at::Generator& generator, bool keep_logits,
                      const std::function<torch::Tensor(std::int64_t, const torch::Tensor&)>& next) {
  const std::int64_t b = prompts.size(0);
  auto done = torch::zeros({b}, prompts.options().dtype(torch::kBool));
  auto pad = torch::full({b}, options.pad_id, prompts.options().dtype(torch::kLong));
  std::vector<torch::Tensor> tokens, live, logprobs, logits_kept;
  torch::Tensor previous;
  for (std::int64_t step = 0; step < options.max_new_tokens; ++step) {
    auto logits = next(step, previous);
    auto choice = choose_tokens(logits, options, generator);
    auto token = torch::where(done, pad, choice.tokens);
    live.push_back(done.logical_not());
    logprobs.push_back(torch::where(done, torch::zeros_like(choice.logprobs), choice.logprobs));
    tokens.push_back(token);
    if (keep_logits) logits_kept.push_back(logits.to(torch::kFloat));
    done = done | token.eq(options.eos_id);
    previous = token;
    if (done.all().item<bool>()) break;
  }
  SampleResult r;
  r.response = torch::stack(tokens, 1);
  r.response_mask = torch::stack(live, 1).to(torch::kFloat);
  r.logprobs = torch::stack(logprobs, 1);
  if (keep_logits) r.logits = torch::stack(logits_kept, 1);
  r.sequences = torch::cat({prompts, r.response}, 1);
  r.attention_mask = torch::cat({prompt_mask.to(torch::kBool), torch::ones_like(r.response, torch::kBool)}, 1);
  return r;
}

}  // namespace

PaddedBatch left_pad(const std::vector<std::vector<std::int64_t>>& rows, std::int64_t pad_id) {
  if (rows.empty()) throw std::invalid_argument("left_pad: empty batch");
  std::size_t width = 0;
  for (const auto& r : rows) width = std::max(width, r.size());
  const auto b = static_cast<std::int64_t>(rows.size());
  auto tokens = torch::full({b, static_cast<std::int64_t>(width)}, pad_id, torch::kLong);
  auto mask = torch::zeros({b, static_cast<std::int64_t>(width)}, torch::kBool);
  auto t = tokens.accessor<std::int64_t, 2>();
  auto m = mask.accessor<bool, 2>();
  for (std::size_t i = 0; i < rows.size(); ++i) {
    const std::size_t start = width - rows[i].size();
    for (std::size_t j = 0; j < rows[i].size(); ++j) {
      t[static_cast<std::int64_t>(i)][static_cast<std::int64_t>(start + j)] = rows[i][j];
      m[static_cast<std::int64_t>(i)][static_cast<std::int64_t>(start + j)] = true;
    }
  }
  return {tokens, mask};
}

torch::Tensor nucleus_mask(const torch::Tensor& probs, double top_p) {
  auto [sorted, order] = probs.sort(/*stable=*/true, /*dim=*/-1, /*descending=*/true);
  // Mass ahead of each token in sorted order, as a shifted cumulative sum (not
  // cumsum − p, whose rounding would move tokens across an exact boundary).
  auto cumulative = sorted.cumsum(-1);
  auto before = torch::cat(
      {torch::zeros_like(cumulative.narrow(-1, 0, 1)), cumulative.narrow(-1, 0, cumulative.size(-1) - 1)}, -1);
  auto keep_sorted = before.lt(top_p);
  return torch::zeros_like(sorted).scatter(-1, order, keep_sorted.to(sorted.scalar_type())).gt(0.5);
}

StepChoice choose_tokens(const torch::Tensor& logits, const SamplerOptions& options, at::Generator& generator) {
  auto logp = torch::log_softmax(logits.to(torch::kFloat) / options.temperature, -1);
  torch::Tensor tokens;
  if (options.greedy) {
    tokens = logits.argmax(-1);
  } else {
    auto probs = logp.to(torch::kDouble).exp();
    if (options.top_p < 1.0) probs = probs * nucleus_mask(probs, options.top_p).to(torch::kDouble);
    auto cdf = probs.cumsum(-1);
    const std::int64_t v = probs.size(-1);
    auto u = torch::rand({probs.size(0), 1}, generator, probs.options());
    auto threshold = u * cdf.narrow(-1, v - 1, 1);
    tokens = cdf.le(threshold).sum(-1);
    // Rounding can push the threshold onto the total mass; never step past the
    // last token that has mass.
    auto last_with_mass = (v - 1) - probs.gt(0).flip({-1}).to(torch::kLong).argmax(-1);
    tokens = torch::minimum(tokens, last_with_mass);
  }
  return {tokens, logp.gather(-1, tokens.unsqueeze(-1)).squeeze(-1)};
}

SampleResult sample(Policy& policy, const torch::Tensor& prompts, const torch::Tensor& prompt_mask,
                    const SamplerOptions& options, at::Generator& generator, bool keep_logits) {
  check_options(policy, prompts, prompt_mask, options);
  torch::NoGradGuard no_grad;
  KvCache cache;
  const std::int64_t capacity = prompts.size(1) + options.max_new_tokens;
  return generate(prompts, prompt_mask, options, generator, keep_logits,
                  [&](std::int64_t step, const torch::Tensor& previous) {
                    if (step == 0)
                      return policy->prefill(prompts, prompt_mask, cache, capacity).logits.select(1, -1);
                    return policy->decode(previous, cache).logits.select(1, 0);
                  });
}

SampleResult sample_naive(Policy& policy, const torch::Tensor& prompts, const torch::Tensor& prompt_mask,
                          const SamplerOptions& options, at::Generator& generator, bool keep_logits) {
  check_options(policy, prompts, prompt_mask, options);
  torch::NoGradGuard no_grad;
  auto sequence = prompts;
  auto mask = prompt_mask.to(torch::kBool);
  return generate(prompts, prompt_mask, options, generator, keep_logits,
                  [&](std::int64_t step, const torch::Tensor& previous) {
                    if (step > 0) {
                      sequence = torch::cat({sequence, previous.unsqueeze(1)}, 1);
                      mask = torch::cat({mask, torch::ones({mask.size(0), 1}, mask.options())}, 1);
                    }
                    return policy->forward(sequence, mask).logits.select(1, -1);
                  });
}

}  // namespace reglab::models
