// Plain-data arguments of the row kernels, shared by the CPU kernels
// (cpu/row_kernels.h) and the CUDA launchers (cuda/launch.h): raw pointers and
// sizes only, so neither side needs the other's headers. Every array is
// row-major and contiguous: row r of a [rows, k] array starts at r * k.
#pragma once

#include <cstdint>

namespace reglab::kernels {

enum class Dtype { kFloat, kDouble, kHalf, kBFloat16 };

// Per-row statistics are in the accumulation type: double for kDouble, float
// otherwise.
struct EntropyForwardArgs {
  Dtype dtype;
  std::int64_t k;
  const void* logits;
  // Optional: entry (r, j) takes part iff mask[mask_row_offset[r] + j * mask_col_stride].
  const bool* mask = nullptr;
  const std::int64_t* mask_row_offset = nullptr;
  std::int64_t mask_col_stride = 1;
  // A row with no finite allowed logit: entropy 0 (true) or NaN (false).
  bool padding_rows_zero = false;
  void* entropy;  // [rows], accumulation type
  void* lse;      // [rows], accumulation type
};

struct EntropyBackwardArgs {
  Dtype dtype;
  std::int64_t k;
  const void* logits;
  const bool* mask = nullptr;
  const std::int64_t* mask_row_offset = nullptr;
  std::int64_t mask_col_stride = 1;
  const void* grad;     // [rows], accumulation type
  const void* lse;      // [rows], accumulation type
  const void* entropy;  // [rows], accumulation type
  void* grad_logits;    // [rows, k], dtype
};

struct SoftTargetForwardArgs {
  Dtype dtype;
  std::int64_t k;
  const void* logits;
  const void* targets;  // [rows, k], dtype
  void* loss;           // [rows], accumulation type
  void* lse;            // [rows], accumulation type
  void* target_sum;     // [rows], accumulation type
};

struct SoftTargetBackwardArgs {
  Dtype dtype;
  std::int64_t k;
  const void* logits;
  const void* targets;
  const void* grad;        // [rows], accumulation type
  const void* lse;         // [rows], accumulation type
  const void* target_sum;  // [rows], accumulation type
  void* grad_logits;       // [rows, k] dtype, or null
  void* grad_targets;      // [rows, k] dtype, or null
};

// One chunk of vocabulary for linear cross-entropy (dtype kFloat or kDouble;
// the statistics share it). stats row r = (max, Σ e^{z−max}, Σ e^{z−max}(z−max),
// target logit), merged with the chunk's own; target[r] is the target's index
// inside this chunk (outside [0, k) when the target lies in another chunk).
struct LceChunkForwardArgs {
  Dtype dtype;
  std::int64_t k;
  const void* logits;
  const std::int64_t* target;
  void* stats;  // [rows, 4]
};

// Turns a chunk of logits into ∂/∂z in place:
//   a·(p − onehot(target)) − b·p·(log p + H),  p = exp(z − lse).
struct LceChunkBackwardArgs {
  Dtype dtype;
  std::int64_t k;
  void* logits;
  const std::int64_t* target;
  const void* lse;       // [rows]
  const void* entropy;   // [rows]
  const void* coef_ce;   // [rows] a
  const void* coef_ent;  // [rows] b
};

}  // namespace reglab::kernels
