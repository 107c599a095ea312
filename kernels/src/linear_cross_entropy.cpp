// linear_cross_entropy: chunked logits, online log-sum-exp, recomputation in
// the backward pass. Device-generic: the products go through at::mm (BLAS or
// cuBLAS), the per-row work through the dispatched chunk kernels.
#include <ATen/TensorOperators.h>
#include <ATen/core/grad_mode.h>
#include <ATen/ops/add.h>
#include <ATen/ops/addmm.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/full.h>
#include <ATen/ops/mm.h>
#include <ATen/ops/sub.h>
#include <ATen/ops/zeros.h>
#include <ATen/ops/zeros_like.h>
#include <c10/util/Exception.h>
#include <torch/csrc/autograd/custom_function.h>

#include <algorithm>
#include <limits>
#include <vector>

#include "reglab/kernels/ops.h"
#include "src/internal.h"

namespace reglab::kernels {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

// Default chunking. The matrix products want many tokens per chunk: with few,
// every product re-reads (and BLAS re-packs) the whole weight, and the weight
// gradient is rewritten once per chunk (measured on 2 cores: 64 tokens per
// chunk at V = 128k took 1.5x the plain composition, 256 took 0.85x at 32k).
// So a chunk is whole-vocabulary rows of at least kMinTokens tokens (all of
// them when there are fewer), more while it stays within kChunkBytes; the
// vocabulary is split only when kMinTokens whole rows would pass
// kMaxChunkBytes (V > 262144 in float32).
constexpr std::int64_t kChunkBytes = 32 << 20;
constexpr std::int64_t kMaxChunkBytes = 256 << 20;
constexpr std::int64_t kMinTokens = 256;

struct Plan {
  std::int64_t tokens;  // counted tokens (not ignored)
  std::int64_t token_chunk;
  std::int64_t vocab_chunk;
};

Plan make_plan(std::int64_t tokens, std::int64_t vocab, std::int64_t elem_size, const LinearCrossEntropyOptions& o) {
  const std::int64_t v = std::max<std::int64_t>(vocab, 1), n = std::max<std::int64_t>(tokens, 1);
  const std::int64_t budget = kChunkBytes / elem_size, max_budget = kMaxChunkBytes / elem_size;
  std::int64_t vc = o.vocab_chunk;
  std::int64_t tc = o.token_chunk;
  if (vc <= 0 && tc <= 0) {
    const std::int64_t min_tokens = std::min(n, kMinTokens);
    if (min_tokens * v <= max_budget) {
      vc = v;
      tc = std::max(min_tokens, budget / v);
    } else {
      tc = min_tokens;
      vc = max_budget / tc;
    }
  } else if (vc <= 0) {
    vc = std::max<std::int64_t>(1, budget / tc);
  } else if (tc <= 0) {
    tc = std::max<std::int64_t>(1, budget / vc);
  }
  return {tokens, std::clamp<std::int64_t>(tc, 1, n), std::clamp<std::int64_t>(vc, 1, v)};
}

// The counted tokens' rows [begin, end) of hidden: a view when no token is
// ignored, a gathered copy otherwise.
at::Tensor token_rows(const at::Tensor& hidden, const at::Tensor& index, bool all_counted, std::int64_t begin,
                      std::int64_t end) {
  if (all_counted) return hidden.narrow(0, begin, end - begin);
  return hidden.index_select(0, index.narrow(0, begin, end - begin));
}

// logits = rows @ weight[v0:v1]ᵀ (+ bias[v0:v1]), written into `buffer`.
at::Tensor chunk_logits(at::Tensor& buffer, const at::Tensor& rows, const at::Tensor& weight, const at::Tensor& bias,
                        std::int64_t v0, std::int64_t v1) {
  const std::int64_t n = rows.size(0), c = v1 - v0;
  at::Tensor out = buffer.narrow(0, 0, n * c).view({n, c});
  const at::Tensor w = weight.narrow(0, v0, c).t();
  if (bias.defined()) {
    at::addmm_out(out, bias.narrow(0, v0, c), rows, w);
  } else {
    at::mm_out(out, rows, w);
  }
  return out;
}

struct Gradients {
  at::Tensor hidden, weight, bias;
};

// For the counted tokens: turns each chunk of logits into ∂/∂logits with the
// per-token coefficients (ce: a, entropy: b) and accumulates the gradients
// of hidden, weight and bias.
void accumulate_gradients(const at::Tensor& hidden, const at::Tensor& weight, const at::Tensor& bias,
                          const at::Tensor& index, bool all_counted, const at::Tensor& target, const at::Tensor& lse,
                          const at::Tensor& entropy, const at::Tensor& coef_ce, const at::Tensor& coef_ent,
                          const Plan& plan, Gradients& g) {
  const std::int64_t vocab = weight.size(0);
  at::Tensor buffer = at::empty({plan.token_chunk * plan.vocab_chunk}, hidden.options());
  // Hidden-state gradients go straight into the result when the counted
  // tokens are its rows in order; otherwise through a buffer and a scatter.
  at::Tensor grad_rows;
  if (g.hidden.defined() && !all_counted) grad_rows = at::empty({plan.token_chunk, hidden.size(1)}, hidden.options());
  for (std::int64_t i0 = 0; i0 < plan.tokens; i0 += plan.token_chunk) {
    const std::int64_t i1 = std::min(plan.tokens, i0 + plan.token_chunk), n = i1 - i0;
    const at::Tensor rows = token_rows(hidden, index, all_counted, i0, i1);
    const at::Tensor tgt = target.narrow(0, i0, n);
    const at::Tensor l = lse.narrow(0, i0, n), h = entropy.narrow(0, i0, n);
    const at::Tensor a = coef_ce.narrow(0, i0, n), b = coef_ent.narrow(0, i0, n);
    at::Tensor gr;
    if (g.hidden.defined()) gr = all_counted ? g.hidden.narrow(0, i0, n) : grad_rows.narrow(0, 0, n);
    for (std::int64_t v0 = 0; v0 < vocab; v0 += plan.vocab_chunk) {
      const std::int64_t v1 = std::min(vocab, v0 + plan.vocab_chunk);
      at::Tensor z = chunk_logits(buffer, rows, weight, bias, v0, v1);
      const at::Tensor local = v0 == 0 ? tgt : tgt - v0;
      dispatch::lce_chunk_backward(z, local, l, h, a, b);
      const at::Tensor w = weight.narrow(0, v0, v1 - v0);
      if (g.hidden.defined()) {
        if (v0 == 0) {
          at::mm_out(gr, z, w);
        } else {
          gr.addmm_(z, w);
        }
      }
      if (g.weight.defined()) g.weight.narrow(0, v0, v1 - v0).addmm_(z.t(), rows);
      if (g.bias.defined()) g.bias.narrow(0, v0, v1 - v0).add_(z.sum(0));
    }
    if (g.hidden.defined() && !all_counted) g.hidden.index_copy_(0, index.narrow(0, i0, n), gr);
  }
}

struct Forward {
  at::Tensor lse, entropy, target_logprob;  // [counted tokens]
};

// Online log-sum-exp over vocabulary chunks. With `direct`, the plan has one
// vocabulary chunk and the gradient of the reduced loss (scale per token) is
// formed from the chunk while it is in memory.
Forward forward_pass(const at::Tensor& hidden, const at::Tensor& weight, const at::Tensor& bias,
                     const at::Tensor& index, bool all_counted, const at::Tensor& target, const Plan& plan,
                     Gradients* direct, double scale) {
  const std::int64_t vocab = weight.size(0);
  const auto options = hidden.options();
  at::Tensor stats = at::empty({plan.tokens, 4}, options);
  stats.select(1, 0).fill_(-std::numeric_limits<double>::infinity());
  stats.narrow(1, 1, 3).zero_();
  at::Tensor buffer = at::empty({plan.token_chunk * plan.vocab_chunk}, options);
  at::Tensor grad_rows;
  if (direct != nullptr && direct->hidden.defined() && !all_counted) {
    grad_rows = at::empty({plan.token_chunk, hidden.size(1)}, options);
  }
  at::Tensor lse = at::empty({plan.tokens}, options);
  at::Tensor entropy = at::empty({plan.tokens}, options);
  for (std::int64_t i0 = 0; i0 < plan.tokens; i0 += plan.token_chunk) {
    const std::int64_t i1 = std::min(plan.tokens, i0 + plan.token_chunk), n = i1 - i0;
    const at::Tensor rows = token_rows(hidden, index, all_counted, i0, i1);
    const at::Tensor tgt = target.narrow(0, i0, n);
    at::Tensor st = stats.narrow(0, i0, n);
    at::Tensor z;
    for (std::int64_t v0 = 0; v0 < vocab; v0 += plan.vocab_chunk) {
      const std::int64_t v1 = std::min(vocab, v0 + plan.vocab_chunk);
      z = chunk_logits(buffer, rows, weight, bias, v0, v1);
      dispatch::lce_chunk_forward(z, v0 == 0 ? tgt : tgt - v0, st);
    }
    // lse = m + log S, H = log S − B/S.
    const at::Tensor log_s = st.select(1, 1).log();
    at::Tensor l = lse.narrow(0, i0, n);
    at::add_out(l, st.select(1, 0), log_s);
    at::Tensor h = entropy.narrow(0, i0, n);
    at::sub_out(h, log_s, st.select(1, 2) / st.select(1, 1));
    if (direct != nullptr) {
      const at::Tensor a = at::full({n}, scale, options);
      const at::Tensor b = at::zeros({n}, options);
      dispatch::lce_chunk_backward(z, tgt, l, h, a, b);
      if (direct->hidden.defined()) {
        at::Tensor gr = all_counted ? direct->hidden.narrow(0, i0, n) : grad_rows.narrow(0, 0, n);
        at::mm_out(gr, z, weight);
        if (!all_counted) direct->hidden.index_copy_(0, index.narrow(0, i0, n), gr);
      }
      if (direct->weight.defined()) direct->weight.addmm_(z.t(), rows);
      if (direct->bias.defined()) direct->bias.add_(z.sum(0));
    }
  }
  at::Tensor target_logprob = stats.select(1, 3) - lse;
  return {lse, entropy, target_logprob};
}

Gradients zero_gradients(const at::Tensor& hidden, const at::Tensor& weight, const at::Tensor& bias, bool need_h,
                         bool need_w, bool need_b) {
  Gradients g;
  if (need_h) g.hidden = at::zeros_like(hidden);
  if (need_w) g.weight = at::zeros_like(weight);
  if (need_b && bias.defined()) g.bias = at::zeros_like(bias);
  return g;
}

at::Tensor scatter_tokens(const at::Tensor& values, const at::Tensor& index, bool all_counted, std::int64_t tokens) {
  if (all_counted) return values;
  return at::zeros({tokens}, values.options()).index_copy_(0, index, values);
}

struct LinearCrossEntropyFn : torch::autograd::Function<LinearCrossEntropyFn> {
  // Inputs: hidden [N, D], weight [V, D], bias [V] or undefined, targets [N]
  // (validated). Outputs: loss (reduced or [N]), entropy [N], log p(target) [N].
  // An absent bias arrives as an empty tensor (autograd inputs cannot be
  // undefined).
  static variable_list forward(AutogradContext* ctx, const at::Tensor& hidden, const at::Tensor& weight,
                               const at::Tensor& bias_or_empty, const at::Tensor& targets, std::int64_t ignore_index,
                               std::int64_t reduction, std::int64_t token_chunk, std::int64_t vocab_chunk,
                               bool direct_gradient, std::vector<bool> needs) {
    const at::Tensor bias = bias_or_empty.numel() == 0 ? at::Tensor() : bias_or_empty;
    const std::int64_t tokens = hidden.size(0);
    const at::Tensor counted = targets != ignore_index;
    const at::Tensor index = counted.nonzero().select(1, 0);
    const bool all_counted = index.size(0) == tokens;
    const at::Tensor target = all_counted ? targets : targets.index_select(0, index);
    LinearCrossEntropyOptions o;
    o.token_chunk = token_chunk;
    o.vocab_chunk = vocab_chunk;
    const Plan plan = make_plan(index.size(0), weight.size(0), hidden.element_size(), o);
    const auto red = static_cast<Reduction>(reduction);
    const double scale = red == Reduction::kMean ? 1.0 / static_cast<double>(plan.tokens) : 1.0;

    Gradients direct;
    const bool use_direct = direct_gradient && plan.vocab_chunk == weight.size(0);
    if (use_direct) direct = zero_gradients(hidden, weight, bias, needs[0], needs[1], needs[2]);
    const Forward f = forward_pass(hidden, weight, bias, index, all_counted, target, plan,
                                   use_direct ? &direct : nullptr, scale);

    at::Tensor token_loss = scatter_tokens(-f.target_logprob, index, all_counted, tokens);
    at::Tensor loss;
    switch (red) {
      case Reduction::kNone: loss = token_loss; break;
      case Reduction::kSum: loss = token_loss.sum(); break;
      case Reduction::kMean: loss = token_loss.sum() / static_cast<double>(plan.tokens); break;
    }
    at::Tensor entropy = scatter_tokens(f.entropy, index, all_counted, tokens);
    at::Tensor logprob = scatter_tokens(f.target_logprob, index, all_counted, tokens);

    ctx->saved_data["reduction"] = reduction;
    ctx->saved_data["all_counted"] = all_counted;
    ctx->saved_data["token_chunk"] = plan.token_chunk;
    ctx->saved_data["vocab_chunk"] = plan.vocab_chunk;
    ctx->saved_data["direct"] = use_direct;
    if (use_direct) {
      ctx->saved_data["grad_hidden"] = direct.hidden;
      ctx->saved_data["grad_weight"] = direct.weight;
      ctx->saved_data["grad_bias"] = direct.bias;
      ctx->save_for_backward({});
    } else {
      ctx->saved_data["index"] = index;
      ctx->saved_data["target"] = target;
      ctx->saved_data["lse"] = f.lse;
      ctx->saved_data["entropy"] = f.entropy;
      ctx->save_for_backward({hidden, weight, bias_or_empty});
    }
    return {loss, entropy, logprob};
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const bool need_h = ctx->needs_input_grad(0), need_w = ctx->needs_input_grad(1),
               need_b = ctx->needs_input_grad(2);
    const auto red = static_cast<Reduction>(ctx->saved_data["reduction"].toInt());
    if (ctx->saved_data["direct"].toBool()) {
      // The gradient of the reduced loss was formed in the forward pass for
      // an upstream gradient of 1. It is handed over (scaled in place by the
      // actual upstream gradient), not copied: that saves its memory, and
      // leaves nothing for a second backward pass through this node.
      TORCH_CHECK(ctx->saved_data.count("grad_weight") != 0,
                  "linear_cross_entropy: backward ran twice through a loss whose gradient was formed in the "
                  "forward pass; ask for return_entropy or return_target_logprob to recompute instead");
      const at::Tensor g = grads[0];
      auto scaled = [&](const char* key, bool need) {
        at::Tensor t = ctx->saved_data[key].toTensor();
        ctx->saved_data.erase(key);
        if (!need || !t.defined()) return at::Tensor();
        return t.mul_(g.to(t.scalar_type()));
      };
      return {scaled("grad_hidden", need_h), scaled("grad_weight", need_w), scaled("grad_bias", need_b),
              at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor()};
    }
    const variable_list saved = ctx->get_saved_variables();
    const at::Tensor &hidden = saved[0], &weight = saved[1];
    const at::Tensor bias = saved[2].numel() == 0 ? at::Tensor() : saved[2];
    const at::Tensor index = ctx->saved_data["index"].toTensor();
    const at::Tensor target = ctx->saved_data["target"].toTensor();
    const at::Tensor lse = ctx->saved_data["lse"].toTensor();
    const at::Tensor entropy = ctx->saved_data["entropy"].toTensor();
    const bool all_counted = ctx->saved_data["all_counted"].toBool();
    const std::int64_t counted = index.size(0);
    const Plan plan{counted, ctx->saved_data["token_chunk"].toInt(), ctx->saved_data["vocab_chunk"].toInt()};

    // Per counted token: a = ∂/∂(token loss) − ∂/∂(log p target), b = ∂/∂H.
    auto per_token = [&](const at::Tensor& g) {
      const at::Tensor t = g.to(hidden.scalar_type());
      return all_counted ? t.contiguous() : t.index_select(0, index);
    };
    at::Tensor a;
    switch (red) {
      case Reduction::kNone: a = per_token(grads[0]); break;
      case Reduction::kSum: a = grads[0].to(hidden.scalar_type()).expand({counted}); break;
      case Reduction::kMean:
        a = (grads[0].to(hidden.scalar_type()) / static_cast<double>(counted)).expand({counted});
        break;
    }
    a = (a - per_token(grads[2])).contiguous();
    const at::Tensor b = per_token(grads[1]);
    Gradients g = zero_gradients(hidden, weight, bias, need_h, need_w, need_b);
    if (counted > 0 && (need_h || need_w || need_b)) {
      accumulate_gradients(hidden, weight, bias, index, all_counted, target, lse, entropy, a, b, plan, g);
    }
    return {g.hidden,     g.weight,     g.bias,       at::Tensor(), at::Tensor(),
            at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor()};
  }
};

}  // namespace

LinearCrossEntropyResult linear_cross_entropy(const at::Tensor& hidden, const at::Tensor& weight,
                                              const at::Tensor& targets, const at::Tensor& bias,
                                              const LinearCrossEntropyOptions& options) {
  constexpr const char* op = "reglab::kernels::linear_cross_entropy";
  TORCH_CHECK(hidden.defined() && weight.defined() && targets.defined(), op, ": hidden, weight and targets are required");
  TORCH_CHECK(hidden.scalar_type() == at::kFloat || hidden.scalar_type() == at::kDouble, op,
              ": hidden must be float32 or float64, got ", hidden.scalar_type());
  TORCH_CHECK(hidden.dim() >= 1, op, ": hidden must be [..., D]");
  TORCH_CHECK(weight.dim() == 2 && weight.size(1) == hidden.size(-1), op, ": weight must be [V, D] with D = ",
              hidden.size(-1), ", got ", weight.sizes());
  TORCH_CHECK(weight.scalar_type() == hidden.scalar_type() && weight.device() == hidden.device(), op,
              ": weight must have hidden's dtype and device");
  TORCH_CHECK(targets.scalar_type() == at::kLong && targets.device() == hidden.device(), op,
              ": targets must be int64 on hidden's device");
  TORCH_CHECK(targets.sizes() == hidden.sizes().slice(0, hidden.dim() - 1), op, ": targets must have shape ",
              hidden.sizes().slice(0, hidden.dim() - 1), ", got ", targets.sizes());
  if (bias.defined()) {
    TORCH_CHECK(bias.dim() == 1 && bias.size(0) == weight.size(0), op, ": bias must be [V] with V = ",
                weight.size(0), ", got ", bias.sizes());
    TORCH_CHECK(bias.scalar_type() == hidden.scalar_type() && bias.device() == hidden.device(), op,
                ": bias must have hidden's dtype and device");
  }
  TORCH_CHECK(options.token_chunk >= 0 && options.vocab_chunk >= 0, op, ": chunk sizes must be >= 0");
  const std::int64_t vocab = weight.size(0), dim = weight.size(1);
  const at::Tensor flat_targets = targets.reshape({-1});
  const at::Tensor flat_hidden = hidden.reshape({flat_targets.size(0), dim}).contiguous();
  if (flat_targets.numel() > 0) {
    const at::Tensor ok = (flat_targets == options.ignore_index) | ((flat_targets >= 0) & (flat_targets < vocab));
    TORCH_CHECK(ok.all().item<bool>(), op, ": every target must be in [0, ", vocab, ") or ignore_index (",
                options.ignore_index, ")");
  }
  const bool need_h = hidden.requires_grad(), need_w = weight.requires_grad(),
             need_b = bias.defined() && bias.requires_grad();
  const bool grad = at::GradMode::is_enabled() && (need_h || need_w || need_b);
  const bool direct = grad && options.reduction != Reduction::kNone && !options.return_entropy &&
                      !options.return_target_logprob;
  variable_list out = LinearCrossEntropyFn::apply(
      flat_hidden, weight.contiguous(), bias.defined() ? bias.contiguous() : at::empty({0}, weight.options()),
      flat_targets.contiguous(),
      options.ignore_index, static_cast<std::int64_t>(options.reduction), options.token_chunk, options.vocab_chunk,
      direct, std::vector<bool>{need_h, need_w, need_b});
  LinearCrossEntropyResult result;
  result.loss = options.reduction == Reduction::kNone ? out[0].view(targets.sizes()) : out[0];
  if (options.return_entropy) result.entropy = out[1].view(targets.sizes());
  if (options.return_target_logprob) result.target_logprob = out[2].view(targets.sizes());
  return result;
}

}  // namespace reglab::kernels
