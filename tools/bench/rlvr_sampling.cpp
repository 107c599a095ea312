// rlvr_sampling.cpp — tokens/s of KV-cached batched sampling against naive
// full recomputation, on the rlvr policy.
//
// One batch of left-padded arithmetic prompts (3-digit addition, from the rl
// pool) is sampled with models::sample (prefill + one cached column per step)
// and with models::sample_naive (Policy::forward over the whole sequence every
// step), max_new_tokens columns each; the two take turns, repetition by
// repetition, with one generator seed per repetition shared by both, so they
// produce the same tokens and do the same number of steps (checked). The
// policy is freshly initialised (weights do not change the cost). It emits
// <eos> with probability about 1/20 per step, so a row usually ends before 48
// tokens but the batch almost never does, and a finished row's column is still
// computed (it is fed <pad>): the work per step is the batch's. So tokens/s =
// batch · steps / wall seconds, steps as run (printed when short of the
// maximum); the ratio is the median of per-repetition ratios (paired),
// measured in this run.
//
//   reglab_bench_rlvr_sampling [--d-model 128] [--depth 4] [--heads 4] [--context 96]
//                              [--batch 64] [--new-tokens 48] [--reps 5] [--threads 1]
#include <ATen/CPUGeneratorImpl.h>
#include <ATen/Parallel.h>
#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "data/arith.h"
#include "models/policy.h"
#include "models/sampler.h"

namespace {

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

std::int64_t arg(int argc, char** argv, const std::string& name, std::int64_t fallback) {
  for (int i = 1; i + 1 < argc; ++i)
    if (name == argv[i]) return std::atoll(argv[i + 1]);
  return fallback;
}

}  // namespace

int main(int argc, char** argv) {
  namespace arith = reglab::data::arith;
  namespace models = reglab::models;
  models::PolicyOptions o;
  o.vocab_size = arith::kVocabSize;
  o.d_model = arg(argc, argv, "--d-model", 128);
  o.depth = arg(argc, argv, "--depth", 4);
  o.heads = arg(argc, argv, "--heads", 4);
  o.context = arg(argc, argv, "--context", 96);
  const auto batch = arg(argc, argv, "--batch", 64);
  const auto new_tokens = arg(argc, argv, "--new-tokens", 48);
  const auto reps = arg(argc, argv, "--reps", 5);
  at::set_num_threads(static_cast<int>(arg(argc, argv, "--threads", 1)));

  torch::manual_seed(0);
  models::Policy policy(o);
  std::vector<std::vector<std::int64_t>> rows;
  for (const auto& p : arith::generate_pool({{arith::Op::add}, 3, 3}, arith::Pool::rl, batch, 1))
    rows.push_back(arith::prompt_tokens(p));
  auto prompts = models::left_pad(rows, arith::kPad);

  models::SamplerOptions so;
  so.temperature = 1.0;
  so.max_new_tokens = new_tokens;
  so.eos_id = arith::kEos;
  so.pad_id = arith::kPad;

  std::printf("rlvr sampling: policy d_model %lld depth %lld heads %lld context %lld, vocab %lld; batch %lld, "
              "prompt %lld columns, %lld new tokens, %d intra-op thread(s), %lld repetitions\n",
              static_cast<long long>(o.d_model), static_cast<long long>(o.depth), static_cast<long long>(o.heads),
              static_cast<long long>(o.context), static_cast<long long>(o.vocab_size),
              static_cast<long long>(batch), static_cast<long long>(prompts.tokens.size(1)),
              static_cast<long long>(new_tokens), at::get_num_threads(), static_cast<long long>(reps));

  std::vector<double> kv_rate, naive_rate, ratio;
  bool same = true;
  for (std::int64_t r = -1; r < reps; ++r) {  // r = −1: warm-up, not counted
    auto g1 = at::make_generator<at::CPUGeneratorImpl>(100 + r);
    auto g2 = at::make_generator<at::CPUGeneratorImpl>(100 + r);
    const bool kv_first = r % 2 == 0;
    double t_kv = 0, t_naive = 0;
    models::SampleResult a, b;
    for (int k = 0; k < 2; ++k) {
      const bool run_kv = (k == 0) == kv_first;
      auto start = std::chrono::steady_clock::now();
      if (run_kv) a = models::sample(policy, prompts.tokens, prompts.mask, so, g1);
      else b = models::sample_naive(policy, prompts.tokens, prompts.mask, so, g2);
      const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      (run_kv ? t_kv : t_naive) = s;
    }
    same = same && a.response.sizes() == b.response.sizes() && torch::equal(a.response, b.response);
    const double tokens = static_cast<double>(batch * a.response.size(1));
    if (r < 0) continue;
    kv_rate.push_back(tokens / t_kv);
    naive_rate.push_back(tokens / t_naive);
    ratio.push_back(t_naive / t_kv);
    std::printf("sample rlvr_sampling.kv_tokens_per_s %.1f\nsample rlvr_sampling.naive_tokens_per_s %.1f\n",
                tokens / t_kv, tokens / t_naive);
    if (a.response.size(1) != new_tokens) std::printf("note: a repetition ended after %lld steps\n",
                                                      static_cast<long long>(a.response.size(1)));
  }
  std::printf("\n%-28s %14s\n", "sampler", "tokens/s");
  std::printf("%-28s %14.0f\n", "KV cache (sample)", median(kv_rate));
  std::printf("%-28s %14.0f\n", "naive (sample_naive)", median(naive_rate));
  std::printf("speed-up (median of paired ratios): %.2fx\n", median(ratio));
  std::printf("identical tokens in every repetition: %s\n", same ? "yes" : "NO");
  std::printf("sample rlvr_sampling.speedup %.4f\n", median(ratio));
  return same ? 0 : 1;
}
