// The small transformer policy the engine tests share: the arithmetic
// task's 20-token vocabulary, width 32, two blocks of four heads.
#pragma once

#include <torch/types.h>
#include <torch/utils.h>

#include <cstdint>

#include "models/policy.h"

namespace reglab::testing {

inline models::PolicyOptions small_policy_options(std::int64_t context = 64, bool tied = true,
                                                  std::int64_t vocab = 20) {
  models::PolicyOptions o;
  o.vocab_size = vocab;
  o.d_model = 32;
  o.depth = 2;
  o.heads = 4;
  o.context = context;
  o.mlp_ratio = 4;
  o.tie_embeddings = tied;
  return o;
}

// Weights N(0, 0.3²): far larger than the default initialisation, so the
// distributions are peaked and depend on the input.
inline models::Policy random_small_policy(std::uint64_t seed) {
  torch::manual_seed(seed);
  models::Policy policy(small_policy_options());
  torch::NoGradGuard no_grad;
  for (auto& p : policy->parameters()) p.normal_(0.0, 0.3);
  return policy;
}

}  // namespace reglab::testing
