// models/policy.h — the decoder-only transformer policy of the rlvr paradigm.
//
// Architecture (GPT-2 shape, pre-norm):
//   x_0 = E_tok[token] + E_pos[position]
//   per block:  x += W_o · Attn(LN_1(x))        causal multi-head self-attention
//               x += W_2 · GELU(W_1 · LN_2(x))   MLP of width mlp_ratio · d_model
//   h = LN_f(x);  logits = h · E_tokᵀ (tied, the default) or W_head · h (untied)
// Every linear layer has a bias except the untied head; GELU is the exact (erf)
// one. There is no dropout, so a forward pass is a pure function of the
// weights and the input (sampling and its naive baseline agree token for token).
// Initialisation: weights N(0, 0.02), the two residual projections of each
// block N(0, 0.02/√(2·depth)), biases 0, LayerNorm 1/0; drawn from the global
// generator (seed it first).
//
// Padding. A batch holds sequences of different lengths as columns of one
// [B, T] tensor plus a bool attention mask [B, T] (true = real token). Prompts
// are LEFT-padded so that every row's next token lands in the same column
// during generation. Two rules make a padded row compute exactly what it would
// compute alone:
//   - positions count real tokens only: position = (number of real tokens
//     before this column in the row), so a row's first real token has
//     position 0 whatever its padding;
//   - query i attends to key j iff j ≤ i and mask[j] is true. A pad query has
//     no real key at or before it under left padding, so it is also allowed to
//     attend to itself (keeps its softmax finite; its output is meaningless
//     and must not be used).
// Generated columns are always real (mask true), also after a row has emitted
// its end-of-sequence token: the sampler keeps feeding PAD there and ignores
// the results (see sampler.h). So `forward(tokens, mask)` on the sampler's
// returned sequence and mask reproduces the sampler's per-token logits.
//
// KV cache. `prefill` runs the prompt block through the model and stores every
// layer's keys and values in a cache allocated for `capacity` columns;
// `decode` then appends one column per call. The logits equal those of
// `forward` on the whole sequence (up to float rounding). Positions must stay
// below `context`: prefill/decode/forward throw std::invalid_argument when a
// column would exceed it.
//
// Thread safety: a Policy is a torch::nn::Module; concurrent forward calls on
// one instance are fine, a KvCache belongs to one caller.
#pragma once

#include <torch/nn/module.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/embedding.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/modules/normalization.h>
#include <torch/nn/pimpl.h>
#include <torch/types.h>

#include <cstdint>
#include <vector>

namespace reglab::models {

struct PolicyOptions {
  std::int64_t vocab_size = 0;    // V, required (≥ 2)
  std::int64_t d_model = 128;     // D, divisible by heads
  std::int64_t depth = 4;         // number of blocks
  std::int64_t heads = 4;
  std::int64_t context = 96;      // longest sequence (number of position embeddings)
  std::int64_t mlp_ratio = 4;     // MLP hidden width = mlp_ratio · D
  bool tie_embeddings = true;     // logits = h · E_tokᵀ; false: a separate bias-free head
};

struct PolicyOutput {
  torch::Tensor logits;  // [B, T, V] float
  torch::Tensor hidden;  // [B, T, D] after the final LayerNorm (what the head reads)
};

// The per-layer keys and values of the columns seen so far.
struct KvCache {
  std::vector<torch::Tensor> keys;    // per layer [B, H, capacity, D/H]
  std::vector<torch::Tensor> values;  // per layer [B, H, capacity, D/H]
  torch::Tensor key_mask;             // bool [B, capacity]: true at real columns < length
  torch::Tensor next_position;        // int64 [B]: position of the row's next token
  std::int64_t length = 0;            // columns filled
  std::int64_t capacity = 0;
};

class PolicyImpl : public torch::nn::Module {
 public:
  // Throws std::invalid_argument on bad options (names the option).
  explicit PolicyImpl(const PolicyOptions& options);

  // tokens int64 [B, T]; mask bool [B, T] (undefined = all real). T ≤ context.
  PolicyOutput forward(const torch::Tensor& tokens, const torch::Tensor& mask = {});

  // Starts a cache of `capacity` columns (≤ context) with the prompt block and
  // returns its output, equal to forward(tokens, mask).
  PolicyOutput prefill(const torch::Tensor& tokens, const torch::Tensor& mask, KvCache& cache,
                       std::int64_t capacity);

  // One more column: token int64 [B] (always a real column). Returns logits
  // [B, 1, V] and hidden [B, 1, D]. Throws when the cache is full.
  PolicyOutput decode(const torch::Tensor& token, KvCache& cache);

  const PolicyOptions& options() const { return options_; }

 private:
  PolicyOutput run(const torch::Tensor& tokens, const torch::Tensor& positions, const torch::Tensor& allowed,
                   KvCache* cache, std::int64_t offset);
  PolicyOutput head(const torch::Tensor& x);

  PolicyOptions options_;
  torch::nn::Embedding token_embedding_{nullptr};
  torch::nn::Embedding position_embedding_{nullptr};
  torch::nn::ModuleList blocks_{nullptr};  // of the Block type defined in policy.cpp
  torch::nn::LayerNorm final_norm_{nullptr};
  torch::nn::Linear output_{nullptr};      // untied head only
};
TORCH_MODULE(Policy);

// Positions of a padded batch as described above: cumsum(mask) − 1, 0 at the
// leading pads. mask bool [B, T] -> int64 [B, T].
torch::Tensor positions_from_mask(const torch::Tensor& mask);

}  // namespace reglab::models
