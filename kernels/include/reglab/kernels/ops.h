// reglab/kernels/ops.h — fused entropy and cross-entropy operations.
//
// Every operation here is an ordinary differentiable function of LibTorch
// tensors: call it, and autograd records one node whose backward pass is the
// fused gradient. Each has a CPU implementation (rows in parallel through
// at::parallel_for, vectorised with at::vec::Vectorized) and a CUDA one (one
// warp or block per row) when the library was built against a LibTorch with
// CUDA; the tensor's device chooses, through one registration point (the
// operator library `reglab_kernels`, also reachable as torch.ops.reglab_kernels
// once the shared library is loaded).
//
// Contract shared by all operations:
//  - Inputs may be non-contiguous and of dtype float32, float64, float16 or
//    bfloat16 (linear_cross_entropy: float32 or float64). Reduced-precision
//    inputs are accumulated in float32; results come back in the input dtype.
//    float64 is accumulated in float64 (what finite-difference checks need).
//  - Results are numerically stable: every exponential is taken of a logit
//    minus its row's maximum, and a logit of −inf is a class of probability
//    exactly 0 that contributes nothing (no NaN from 0·log 0), in the value and
//    in the gradient.
//  - Nothing is stored between calls: the functions are safe to call from
//    several threads at once. Errors (wrong shapes, dtypes, devices, target out
//    of range) throw c10::Error with a message naming the operation.
//  - The library is shared (libreglab_kernels.so) so that its operator
//    registrations exist once per process however many plugins link it.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>

#if defined(_WIN32)
#define REGLAB_KERNELS_API
#else
#define REGLAB_KERNELS_API __attribute__((visibility("default")))
#endif

namespace reglab::kernels {

// Shannon entropy (nats) of softmax(logits) along `dim`, one value per row:
//   H = −Σ_k p_k log p_k,  p = softmax(logits, dim).
// Result: logits' shape without `dim`, logits' dtype. Gradient:
//   ∂H/∂z_k = −p_k (log p_k + H),
// recomputed in the backward pass from the saved logits and two numbers per
// row (log-sum-exp and H), so no [rows, K] tensor besides the logits is kept.
// A row of length 0 or 1 has H = 0. A row with no finite logit (all −inf) has
// no distribution: its entropy is NaN, as in the plain LibTorch composition;
// see attention_entropy for rows that are padding on purpose.
REGLAB_KERNELS_API at::Tensor softmax_entropy(const at::Tensor& logits, std::int64_t dim = -1);

// Cross-entropy against soft targets along `dim`, one value per row:
//   L = −Σ_k t_k log softmax(z)_k = lse(z)·Σ_k t_k − Σ_k t_k z_k.
// `target_probs` has the shape, dtype and device of `logits`; it is used as
// given (not normalised, not clamped). Gradients: ∂L/∂z = p·Σt − t and, when
// target_probs requires grad, ∂L/∂t = −log p. A class with t_k = 0 contributes
// 0 even where z_k = −inf (0·log 0 = 0; the plain composition gives NaN there);
// t_k > 0 on a class with z_k = −inf gives +inf, the true value.
REGLAB_KERNELS_API at::Tensor soft_target_cross_entropy(const at::Tensor& logits, const at::Tensor& target_probs,
                                                        std::int64_t dim = -1);

// Entropy of attention distributions: softmax over the last dimension of
// `attention_logits` (e.g. [B, heads, queries, keys] or ABMIL's [heads, N]),
// restricted to the entries `mask` allows. AEM's regulariser is −λ times this
// (averaged over heads where it has several).
//   mask: undefined (every entry takes part) or a bool tensor broadcastable to
//         attention_logits' shape, true = the entry takes part (the convention
//         of scaled_dot_product_attention; nn.MultiheadAttention's
//         key_padding_mask is the opposite, so pass its logical_not()). A mask
//         [B, 1, 1, keys] is read in place, never expanded to the logits' size.
// Masked entries, like −inf logits, have probability exactly 0: they neither
// contribute to H nor receive gradient (their gradient is 0, not NaN). A row
// with nothing left (fully masked, or every allowed logit −inf) is padding:
// H = 0 and its gradient is 0, so padded rows can be summed or averaged with
// the rest without poisoning them. Result: the logits' shape without the last
// dimension, logits' dtype. Gradient as softmax_entropy, on the allowed entries.
REGLAB_KERNELS_API at::Tensor attention_entropy(const at::Tensor& attention_logits, const at::Tensor& mask = {});

enum class Reduction { kNone, kMean, kSum };

struct LinearCrossEntropyOptions {
  // Tokens with this target take no part: loss, entropy and target log-prob 0,
  // no gradient, not counted by kMean.
  std::int64_t ignore_index = -100;
  // kMean: sum over counted tokens / their number (NaN when every token is
  // ignored, as torch's cross_entropy); kSum: the sum; kNone: one value per token.
  Reduction reduction = Reduction::kMean;
  // Also return, per token (targets' shape, 0 for ignored tokens), the entropy
  // of softmax(logits) and log p(target). Both are differentiable: gradients
  // flowing into them are folded into the same backward pass.
  bool return_entropy = false;
  bool return_target_logprob = false;
  // Tokens and vocabulary entries per chunk of logits. 0 = automatic: rows
  // of the whole vocabulary for at least 256 tokens (all of them when fewer),
  // more while a chunk stays within 32 MiB; the vocabulary is split only when
  // 256 whole rows would pass 256 MiB (V > 262144 in float32).
  std::int64_t token_chunk = 0;
  std::int64_t vocab_chunk = 0;
};

struct LinearCrossEntropyResult {
  at::Tensor loss;            // [] for kMean/kSum, targets' shape for kNone
  at::Tensor entropy;         // undefined unless return_entropy
  at::Tensor target_logprob;  // undefined unless return_target_logprob
};

// Cross-entropy of logits = hidden @ weightᵀ (+ bias) that never materialises
// the [tokens, V] logits: the logits are formed one chunk of tokens × one chunk
// of vocabulary at a time, reduced with an online log-sum-exp, and formed again
// in the backward pass (the scheme of Cut Cross-Entropy, Wijmans et al. 2024).
// When the loss is reduced to a scalar and is the only output, and a chunk
// holds the whole vocabulary, the gradient is formed in the forward pass
// instead (it is the upstream scalar times a fixed tensor), which saves the
// second product; the backward pass then only scales.
//   hidden  [..., D]  float32 or float64
//   weight  [V, D]    same dtype and device
//   targets [...]     int64, in [0, V) or ignore_index (anything else throws)
//   bias    [V] or undefined
// Peak extra memory: one chunk of logits, per-token statistics, and the
// gradients themselves.
REGLAB_KERNELS_API LinearCrossEntropyResult linear_cross_entropy(const at::Tensor& hidden, const at::Tensor& weight,
                                                                 const at::Tensor& targets,
                                                                 const at::Tensor& bias = {},
                                                                 const LinearCrossEntropyOptions& options = {});

// The CPU code path in use. kAvx2 runs where the CPU has AVX2 and FMA and the
// library was built with it; ATEN_CPU_CAPABILITY=default in the environment
// selects kPortable, as it does for LibTorch's own kernels. set_cpu_path is for
// tests and benchmarks (it throws when the path is not available); it is not
// synchronised with calls running at the same time.
enum class CpuPath { kPortable, kAvx2 };
REGLAB_KERNELS_API CpuPath cpu_path();
REGLAB_KERNELS_API bool cpu_path_available(CpuPath path);
REGLAB_KERNELS_API void set_cpu_path(CpuPath path);

// Whether this build registered CUDA implementations (a LibTorch with CUDA).
REGLAB_KERNELS_API bool built_with_cuda();

}  // namespace reglab::kernels
