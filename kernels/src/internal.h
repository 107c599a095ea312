// The device kernels behind the public operations, as registered with the
// dispatcher (registration.cpp holds the schema). Callers pass 2-D contiguous
// [rows, k] tensors; per-row statistics and incoming gradients are in the
// accumulation dtype (float64 for float64 inputs, float32 otherwise).
#pragma once

#include <ATen/core/Tensor.h>
#include <c10/util/Optional.h>

#include <cstdint>
#include <tuple>

namespace reglab::kernels {

inline at::ScalarType accumulation_dtype(at::ScalarType t) {
  return t == at::kDouble ? at::kDouble : at::kFloat;
}

// The calls through the dispatcher (the device of the tensors chooses).
namespace dispatch {
// -> (entropy [rows], lse [rows])
std::tuple<at::Tensor, at::Tensor> entropy_forward(const at::Tensor& logits, const c10::optional<at::Tensor>& mask,
                                                   const c10::optional<at::Tensor>& mask_row_offset,
                                                   std::int64_t mask_col_stride, bool padding_rows_zero);
at::Tensor entropy_backward(const at::Tensor& grad, const at::Tensor& logits, const c10::optional<at::Tensor>& mask,
                            const c10::optional<at::Tensor>& mask_row_offset, std::int64_t mask_col_stride,
                            const at::Tensor& lse, const at::Tensor& entropy);
// -> (loss [rows], lse [rows], Σt [rows])
std::tuple<at::Tensor, at::Tensor, at::Tensor> soft_target_forward(const at::Tensor& logits, const at::Tensor& targets);
// -> (∂/∂logits or undefined, ∂/∂targets or undefined)
std::tuple<at::Tensor, at::Tensor> soft_target_backward(const at::Tensor& grad, const at::Tensor& logits,
                                                        const at::Tensor& targets, const at::Tensor& lse,
                                                        const at::Tensor& target_sum, bool logits_grad,
                                                        bool targets_grad);
// stats [rows, 4] (max, Σe, Σe·d, target logit) merged with this chunk.
void lce_chunk_forward(const at::Tensor& logits, const at::Tensor& target, at::Tensor& stats);
// logits ← ∂/∂logits in place.
void lce_chunk_backward(at::Tensor& logits, const at::Tensor& target, const at::Tensor& lse,
                        const at::Tensor& entropy, const at::Tensor& coef_ce, const at::Tensor& coef_ent);
}  // namespace dispatch

// One implementation per device, same signatures.
#define REGLAB_KERNELS_DECLARE_DEVICE(ns)                                                                      \
  namespace ns {                                                                                               \
  std::tuple<at::Tensor, at::Tensor> entropy_forward(const at::Tensor& logits,                                 \
                                                     const c10::optional<at::Tensor>& mask,                    \
                                                     const c10::optional<at::Tensor>& mask_row_offset,         \
                                                     std::int64_t mask_col_stride, bool padding_rows_zero);    \
  at::Tensor entropy_backward(const at::Tensor& grad, const at::Tensor& logits,                                \
                              const c10::optional<at::Tensor>& mask,                                           \
                              const c10::optional<at::Tensor>& mask_row_offset, std::int64_t mask_col_stride,  \
                              const at::Tensor& lse, const at::Tensor& entropy);                               \
  std::tuple<at::Tensor, at::Tensor, at::Tensor> soft_target_forward(const at::Tensor& logits,                 \
                                                                     const at::Tensor& targets);               \
  std::tuple<at::Tensor, at::Tensor> soft_target_backward(const at::Tensor& grad, const at::Tensor& logits,    \
                                                          const at::Tensor& targets, const at::Tensor& lse,    \
                                                          const at::Tensor& target_sum, bool logits_grad,      \
                                                          bool targets_grad);                                  \
  void lce_chunk_forward(const at::Tensor& logits, const at::Tensor& target, at::Tensor& stats);               \
  void lce_chunk_backward(at::Tensor& logits, const at::Tensor& target, const at::Tensor& lse,                 \
                          const at::Tensor& entropy, const at::Tensor& coef_ce, const at::Tensor& coef_ent);   \
  }

REGLAB_KERNELS_DECLARE_DEVICE(cpu)
#if defined(REGLAB_KERNELS_WITH_CUDA)
REGLAB_KERNELS_DECLARE_DEVICE(cuda)
#endif

}  // namespace reglab::kernels
