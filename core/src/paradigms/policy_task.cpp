#include "paradigms/policy_task.h"

#include <ATen/CPUGeneratorImpl.h>
#include <torch/torch.h>

#include <algorithm>
#include <mutex>
#include <set>
#include <stdexcept>

#include "metrics/passk.h"

namespace reglab::paradigms {

using config::Json;
namespace arith = data::arith;

models::PolicyOptions policy_options_from(const Json& p) {
  models::PolicyOptions o;
  o.vocab_size = arith::kVocabSize;
  o.d_model = p.value("d_model", o.d_model);
  o.depth = p.value("depth", o.depth);
  o.heads = p.value("heads", o.heads);
  o.context = p.value("context", o.context);
  o.mlp_ratio = p.value("mlp_ratio", o.mlp_ratio);
  o.tie_embeddings = p.value("tie_embeddings", o.tie_embeddings);
  return o;
}

namespace {

std::vector<arith::Op> ops_from(const Json& list, const char* key) {
  std::vector<arith::Op> ops;
  for (const Json& name : list) {
    const auto op = arith::op_from_name(name.get<std::string>());
    if (!op) throw std::invalid_argument(std::string(key) + ": unknown operation " + name.dump());
    ops.push_back(*op);
  }
  return ops;
}

}  // namespace

std::int64_t PolicyTask::max_response_tokens() const {
  return std::max(arith::max_response_tokens(in_domain), arith::max_response_tokens(out_of_domain));
}

PolicyTask policy_task_from(const Json& a) {
  PolicyTask t;
  t.in_domain.ops = ops_from(a.value("ops", Json::array({"add"})), "arith.ops");
  t.in_domain.min_digits = a.value("min_digits", 1);
  t.in_domain.max_digits = a.value("max_digits", 3);
  t.out_of_domain.ops = ops_from(a.value("ood_ops", Json::array({"add"})), "arith.ood_ops");
  t.out_of_domain.min_digits = a.value("ood_min_digits", 4);
  t.out_of_domain.max_digits = a.value("ood_max_digits", 4);
  t.eval_prompts = a.value("eval_prompts", std::int64_t{200});
  arith::validate(t.in_domain);
  arith::validate(t.out_of_domain);
  return t;
}

EvalSets eval_sets(const PolicyTask& task, std::uint64_t seed) {
  return {arith::generate_pool(task.in_domain, arith::Pool::eval, task.eval_prompts, seed),
          arith::generate_pool(task.out_of_domain, arith::Pool::eval, task.eval_prompts, seed + 1)};
}

PackedRows pack_rows(const std::vector<TokenRow>& rows, torch::Device device) {
  if (rows.empty()) throw std::invalid_argument("pack_rows: no rows");
  std::size_t p = 0, r = 0;
  for (const TokenRow& row : rows) {
    p = std::max(p, row.prompt.size());
    r = std::max(r, row.response.size());
  }
  const auto b = static_cast<std::int64_t>(rows.size());
  const auto width = static_cast<std::int64_t>(p + r);
  torch::Tensor tokens = torch::full({b, width}, arith::kPad, torch::kLong);
  torch::Tensor mask = torch::zeros({b, width}, torch::kBool);
  torch::Tensor response = torch::full({b, static_cast<std::int64_t>(r)}, arith::kPad, torch::kLong);
  torch::Tensor rmask = torch::zeros({b, static_cast<std::int64_t>(r)}, torch::kFloat);
  auto t = tokens.accessor<std::int64_t, 2>();
  auto m = mask.accessor<bool, 2>();
  auto rt = response.accessor<std::int64_t, 2>();
  auto rm = rmask.accessor<float, 2>();
  for (std::int64_t i = 0; i < b; ++i) {
    const TokenRow& row = rows[static_cast<std::size_t>(i)];
    const std::size_t offset = p - row.prompt.size();
    for (std::size_t j = 0; j < row.prompt.size(); ++j) {
      t[i][static_cast<std::int64_t>(offset + j)] = row.prompt[j];
      m[i][static_cast<std::int64_t>(offset + j)] = true;
    }
    for (std::size_t j = 0; j < row.response.size(); ++j) {
      t[i][static_cast<std::int64_t>(p + j)] = row.response[j];
      m[i][static_cast<std::int64_t>(p + j)] = true;
      rt[i][static_cast<std::int64_t>(j)] = row.response[j];
      rm[i][static_cast<std::int64_t>(j)] = 1.0f;
    }
  }
  return {tokens.to(device), mask.to(device), response.to(device), rmask.to(device), static_cast<std::int64_t>(p)};
}

torch::Tensor response_logits(const torch::Tensor& sequence_logits, const PackedRows& packed) {
  const std::int64_t r = packed.response.size(1);
  return sequence_logits.narrow(1, packed.prompt_width - 1, r);
}

torch::Tensor token_log_probs(const torch::Tensor& scaled_logits, const PackedRows& packed) {
  const torch::Tensor lp = scaled_logits.log_softmax(-1).gather(-1, packed.response.unsqueeze(-1)).squeeze(-1);
  return lp * packed.response_mask.to(lp.scalar_type());
}

models::PaddedBatch prompt_batch(const std::vector<arith::Problem>& problems, std::int64_t repeats,
                                 torch::Device device) {
  std::vector<std::vector<std::int64_t>> rows;
  rows.reserve(problems.size() * static_cast<std::size_t>(repeats));
  for (const arith::Problem& p : problems) {
    const std::vector<std::int64_t> prompt = arith::prompt_tokens(p);
    for (std::int64_t k = 0; k < repeats; ++k) rows.push_back(prompt);
  }
  models::PaddedBatch batch = models::left_pad(rows, arith::kPad);
  return {batch.tokens.to(device), batch.mask.to(device)};
}

std::vector<std::int64_t> response_row(const torch::Tensor& response, const torch::Tensor& response_mask,
                                       std::int64_t i) {
  const torch::Tensor tokens = response[i].to(torch::kCPU);
  const torch::Tensor mask = response_mask[i].to(torch::kCPU);
  const auto n = mask.sum().item<double>();
  std::vector<std::int64_t> out(static_cast<std::size_t>(n));
  const auto* t = tokens.data_ptr<std::int64_t>();
  std::copy(t, t + out.size(), out.begin());
  return out;
}

at::Generator seeded_generator(torch::Device device, std::uint64_t seed) {
  if (device.is_cpu()) return at::make_generator<at::CPUGeneratorImpl>(seed);
  at::Generator gen = at::globalContext().defaultGenerator(device);
  std::lock_guard<std::mutex> lock(gen.mutex());
  gen.set_current_seed(seed);
  return gen;
}

std::int64_t distinct_answers(const std::vector<std::optional<std::int64_t>>& answers) {
  std::set<std::optional<std::int64_t>> seen(answers.begin(), answers.end());
  return static_cast<std::int64_t>(seen.size());
}

std::map<std::string, double> evaluate_policy(models::Policy& policy, const std::vector<arith::Problem>& problems,
                                              const EvalOptions& o) {
  torch::NoGradGuard no_grad;
  policy->eval();
  const torch::Device device = policy->parameters().front().device();
  at::Generator gen = seeded_generator(device, o.seed);
  const std::int64_t n = o.samples;
  std::vector<std::int64_t> ks;
  for (std::int64_t k = 1; k < n; k *= 2) ks.push_back(k);
  ks.push_back(n);

  double greedy_correct = 0, entropy_sum = 0, entropy_tokens = 0, length_sum = 0, invalid = 0;
  double maj = 0, distinct = 0, distinct_pads = 0;
  std::map<std::int64_t, double> pass;
  const auto total = static_cast<std::int64_t>(problems.size());
  for (std::int64_t start = 0; start < total; start += o.batch_prompts) {
    const std::int64_t end = std::min(total, start + o.batch_prompts);
    const std::vector<arith::Problem> chunk(problems.begin() + start, problems.begin() + end);
    models::SamplerOptions so;
    so.max_new_tokens = o.max_new_tokens;
    so.eos_id = arith::kEos;
    so.pad_id = arith::kPad;
    // Greedy: one response per prompt.
    so.greedy = true;
    {
      const models::PaddedBatch prompts = prompt_batch(chunk, 1, device);
      const models::SampleResult g = models::sample(policy, prompts.tokens, prompts.mask, so, gen);
      for (std::size_t i = 0; i < chunk.size(); ++i) {
        const auto answer =
            arith::extract_answer(response_row(g.response, g.response_mask, static_cast<std::int64_t>(i)));
        if (arith::is_correct(chunk[i], answer)) greedy_correct += 1;
      }
    }
    // Sampled: n responses per prompt at the temperature.
    so.greedy = false;
    so.temperature = o.temperature;
    so.top_p = o.top_p;
    const models::PaddedBatch prompts = prompt_batch(chunk, n, device);
    const models::SampleResult s = models::sample(policy, prompts.tokens, prompts.mask, so, gen, /*keep_logits=*/true);
    const torch::Tensor mask = s.response_mask;
    if (mask.numel() > 0) {
      const torch::Tensor z = s.logits / o.temperature;
      const torch::Tensor h = z.logsumexp(-1) - (z.softmax(-1) * z).sum(-1);
      entropy_sum += (h * mask).sum().item<double>();
      entropy_tokens += mask.sum().item<double>();
    }
    for (std::size_t i = 0; i < chunk.size(); ++i) {
      std::vector<std::optional<std::int64_t>> answers;
      std::set<std::string> pads;
      std::int64_t correct = 0;
      for (std::int64_t j = 0; j < n; ++j) {
        const std::int64_t row = static_cast<std::int64_t>(i) * n + j;
        const std::vector<std::int64_t> tokens = response_row(s.response, s.response_mask, row);
        length_sum += static_cast<double>(tokens.size());
        const auto text = arith::response_text(tokens);
        const auto answer = text ? arith::parse_answer(*text) : std::nullopt;
        if (!answer) invalid += 1;
        pads.insert(text ? std::string(arith::scratchpad(*text)) : arith::decode(tokens));
        if (arith::is_correct(chunk[i], answer)) ++correct;
        answers.push_back(answer);
      }
      for (std::int64_t k : ks) pass[k] += metrics::pass_at_k(n, correct, k);
      maj += metrics::maj_at_k(answers, chunk[i].answer(), n);
      distinct += static_cast<double>(distinct_answers(answers));
      distinct_pads += static_cast<double>(pads.size());
    }
  }
  policy->train();
  const double p = static_cast<double>(total);
  const double samples = p * static_cast<double>(n);
  std::map<std::string, double> out;
  out["greedy_acc"] = greedy_correct / p;
  for (const auto& [k, v] : pass) out["pass_at_" + std::to_string(k)] = v / p;
  out["maj_at_" + std::to_string(n)] = maj / p;
  out["entropy"] = entropy_tokens > 0 ? entropy_sum / entropy_tokens : 0.0;
  out["length"] = length_sum / samples;
  out["invalid_frac"] = invalid / samples;
  out["distinct_answers"] = distinct / p;
  out["distinct_scratchpads"] = distinct_pads / p;
  return out;
}

}  // namespace reglab::paradigms
