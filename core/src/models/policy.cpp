#include "models/policy.h"

#include <torch/nn/init.h>
#include <torch/nn/modules/activation.h>
#include <torch/types.h>

#include <cmath>
#include <limits>
#include <stdexcept>
#include <string>

namespace reglab::models {

namespace {

void check_options(const PolicyOptions& o) {
  auto fail = [](const std::string& what) { throw std::invalid_argument("policy: " + what); };
  if (o.vocab_size < 2) fail("vocab_size must be ≥ 2, got " + std::to_string(o.vocab_size));
  if (o.d_model < 1) fail("d_model must be ≥ 1, got " + std::to_string(o.d_model));
  if (o.depth < 1) fail("depth must be ≥ 1, got " + std::to_string(o.depth));
  if (o.heads < 1) fail("heads must be ≥ 1, got " + std::to_string(o.heads));
  if (o.d_model % o.heads != 0)
    fail("heads (" + std::to_string(o.heads) + ") must divide d_model (" + std::to_string(o.d_model) + ")");
  if (o.context < 1) fail("context must be ≥ 1, got " + std::to_string(o.context));
  if (o.mlp_ratio < 1) fail("mlp_ratio must be ≥ 1, got " + std::to_string(o.mlp_ratio));
}

void init_linear(torch::nn::Linear& layer, double std) {
  torch::nn::init::normal_(layer->weight, 0.0, std);
  if (layer->bias.defined()) torch::nn::init::zeros_(layer->bias);
}

class BlockImpl : public torch::nn::Module {
 public:
  explicit BlockImpl(const PolicyOptions& o)
      : heads_(o.heads), head_dim_(o.d_model / o.heads),
        norm1_(register_module("norm1", torch::nn::LayerNorm(torch::nn::LayerNormOptions({o.d_model})))),
        qkv_(register_module("qkv", torch::nn::Linear(o.d_model, 3 * o.d_model))),
        proj_(register_module("proj", torch::nn::Linear(o.d_model, o.d_model))),
        norm2_(register_module("norm2", torch::nn::LayerNorm(torch::nn::LayerNormOptions({o.d_model})))),
        fc1_(register_module("fc1", torch::nn::Linear(o.d_model, o.mlp_ratio * o.d_model))),
        fc2_(register_module("fc2", torch::nn::Linear(o.mlp_ratio * o.d_model, o.d_model))) {
    const double residual_std = 0.02 / std::sqrt(2.0 * static_cast<double>(o.depth));
    init_linear(qkv_, 0.02);
    init_linear(proj_, residual_std);
    init_linear(fc1_, 0.02);
    init_linear(fc2_, residual_std);
  }

  // x [B, T, D] at columns offset..offset+T−1; allowed bool [B, 1, T, S] with
  // S = offset + T when a cache is given, else S = T.
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& allowed, KvCache* cache, std::size_t layer,
                        std::int64_t offset) {
    const std::int64_t b = x.size(0), t = x.size(1), d = x.size(2);
    auto qkv = qkv_(norm1_(x)).view({b, t, 3, heads_, head_dim_}).permute({2, 0, 3, 1, 4});
    auto q = qkv[0], k = qkv[1], v = qkv[2];  // [B, H, T, Dh]
    if (cache != nullptr) {
      cache->keys[layer].narrow(2, offset, t).copy_(k);
      cache->values[layer].narrow(2, offset, t).copy_(v);
      k = cache->keys[layer].narrow(2, 0, offset + t);
      v = cache->values[layer].narrow(2, 0, offset + t);
    }
    auto scores = torch::matmul(q, k.transpose(-2, -1)) * (1.0 / std::sqrt(static_cast<double>(head_dim_)));
    scores = scores.masked_fill(allowed.logical_not(), -std::numeric_limits<float>::infinity());
    auto attended = torch::matmul(torch::softmax(scores, -1), v);  // [B, H, T, Dh]
    auto h = x + proj_(attended.transpose(1, 2).reshape({b, t, d}));
    return h + fc2_(torch::gelu(fc1_(norm2_(h))));
  }

 private:
  std::int64_t heads_, head_dim_;
  torch::nn::LayerNorm norm1_;
  torch::nn::Linear qkv_, proj_;
  torch::nn::LayerNorm norm2_;
  torch::nn::Linear fc1_, fc2_;
};

// Query i sees key j iff j ≤ i and mask[j], or j == i. [B, T] -> [B, 1, T, T].
torch::Tensor block_attention(const torch::Tensor& mask) {
  const std::int64_t t = mask.size(1);
  auto opts = torch::TensorOptions().dtype(torch::kBool).device(mask.device());
  auto causal = torch::ones({t, t}, opts).tril();
  auto eye = torch::eye(t, opts);
  return (causal.unsqueeze(0) & mask.unsqueeze(1)) | eye.unsqueeze(0);
}

torch::Tensor checked_mask(const torch::Tensor& tokens, const torch::Tensor& mask) {
  if (tokens.dim() != 2) throw std::invalid_argument("policy: tokens must be [B, T]");
  if (!mask.defined())
    return torch::ones(tokens.sizes(), torch::TensorOptions().dtype(torch::kBool).device(tokens.device()));
  if (mask.sizes() != tokens.sizes())
    throw std::invalid_argument("policy: mask must have the tokens' shape [B, T]");
  return mask.to(torch::kBool);
}

}  // namespace

torch::Tensor positions_from_mask(const torch::Tensor& mask) {
  return (mask.to(torch::kLong).cumsum(1) - 1).clamp_min(0);
}

PolicyImpl::PolicyImpl(const PolicyOptions& options) : options_(options) {
  check_options(options_);
  token_embedding_ = register_module("token_embedding", torch::nn::Embedding(options_.vocab_size, options_.d_model));
  position_embedding_ =
      register_module("position_embedding", torch::nn::Embedding(options_.context, options_.d_model));
  torch::nn::init::normal_(token_embedding_->weight, 0.0, 0.02);
  torch::nn::init::normal_(position_embedding_->weight, 0.0, 0.02);
  blocks_ = register_module("blocks", torch::nn::ModuleList());
  for (std::int64_t i = 0; i < options_.depth; ++i) blocks_->push_back(std::make_shared<BlockImpl>(options_));
  final_norm_ = register_module("final_norm", torch::nn::LayerNorm(torch::nn::LayerNormOptions({options_.d_model})));
  if (!options_.tie_embeddings) {
    output_ = register_module(
        "output", torch::nn::Linear(torch::nn::LinearOptions(options_.d_model, options_.vocab_size).bias(false)));
    init_linear(output_, 0.02);
  }
}

PolicyOutput PolicyImpl::head(const torch::Tensor& x) {
  auto hidden = final_norm_(x);
  auto logits = options_.tie_embeddings ? torch::matmul(hidden, token_embedding_->weight.t()) : output_(hidden);
  return {logits, hidden};
}

PolicyOutput PolicyImpl::run(const torch::Tensor& tokens, const torch::Tensor& positions,
                             const torch::Tensor& allowed, KvCache* cache, std::int64_t offset) {
  auto x = token_embedding_(tokens) + position_embedding_(positions);
  for (std::size_t l = 0; l < blocks_->size(); ++l)
    x = blocks_[l]->as<BlockImpl>()->forward(x, allowed, cache, l, offset);
  return head(x);
}

PolicyOutput PolicyImpl::forward(const torch::Tensor& tokens, const torch::Tensor& mask) {
  auto m = checked_mask(tokens, mask);
  if (tokens.size(1) > options_.context)
    throw std::invalid_argument("policy: sequence of " + std::to_string(tokens.size(1)) +
                                " columns exceeds the context of " + std::to_string(options_.context));
  return run(tokens, positions_from_mask(m), block_attention(m).unsqueeze(1), nullptr, 0);
}

PolicyOutput PolicyImpl::prefill(const torch::Tensor& tokens, const torch::Tensor& mask, KvCache& cache,
                                 std::int64_t capacity) {
  auto m = checked_mask(tokens, mask);
  const std::int64_t b = tokens.size(0), t = tokens.size(1);
  if (capacity > options_.context || capacity < t)
    throw std::invalid_argument("policy: cache capacity " + std::to_string(capacity) + " must lie in [" +
                                std::to_string(t) + ", context " + std::to_string(options_.context) + "]");
  auto fopts = token_embedding_->weight.options();
  const std::int64_t head_dim = options_.d_model / options_.heads;
  cache = KvCache{};
  for (std::int64_t l = 0; l < options_.depth; ++l) {
    cache.keys.push_back(torch::zeros({b, options_.heads, capacity, head_dim}, fopts));
    cache.values.push_back(torch::zeros({b, options_.heads, capacity, head_dim}, fopts));
  }
  cache.key_mask = torch::zeros({b, capacity}, torch::TensorOptions().dtype(torch::kBool).device(tokens.device()));
  cache.key_mask.narrow(1, 0, t).copy_(m);
  cache.next_position = m.to(torch::kLong).sum(1);
  cache.capacity = capacity;
  auto out = run(tokens, positions_from_mask(m), block_attention(m).unsqueeze(1), &cache, 0);
  cache.length = t;
  return out;
}

PolicyOutput PolicyImpl::decode(const torch::Tensor& token, KvCache& cache) {
  if (token.dim() != 1 || token.size(0) != cache.key_mask.size(0))
    throw std::invalid_argument("policy: decode takes one token per row, [B]");
  if (cache.length >= cache.capacity)
    throw std::invalid_argument("policy: the KV cache is full (" + std::to_string(cache.capacity) + " columns)");
  const std::int64_t offset = cache.length;
  cache.key_mask.select(1, offset).fill_(true);
  auto allowed = cache.key_mask.narrow(1, 0, offset + 1).view({-1, 1, 1, offset + 1});
  auto out = run(token.unsqueeze(1), cache.next_position.unsqueeze(1), allowed, &cache, offset);
  cache.next_position = cache.next_position + 1;
  cache.length = offset + 1;
  return out;
}

}  // namespace reglab::models
