// The CUDA implementation, tensor side: checks, output allocation, the
// current stream and device; the kernels are in row_kernels.cu. Compiled
// only against a LibTorch with CUDA.
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <c10/util/Exception.h>

#include "cuda/launch.h"
#include "src/internal.h"

namespace reglab::kernels::cuda {
namespace {

Dtype dtype_of(const at::Tensor& t, const char* op) {
  switch (t.scalar_type()) {
    case at::kFloat: return Dtype::kFloat;
    case at::kDouble: return Dtype::kDouble;
    case at::kHalf: return Dtype::kHalf;
    case at::kBFloat16: return Dtype::kBFloat16;
    default: TORCH_CHECK(false, op, ": expected a float32, float64, float16 or bfloat16 tensor, got ", t.scalar_type());
  }
}

void check_rows(const at::Tensor& t, const char* op, const char* what) {
  TORCH_CHECK(t.is_cuda() && t.dim() == 2 && t.is_contiguous(), op, ": ", what,
              " must be a contiguous 2-D CUDA tensor, got ", t.sizes(), " on ", t.device());
}

void check_vector(const at::Tensor& t, const at::Tensor& like, std::int64_t rows, at::ScalarType dtype,
                  const char* op, const char* what) {
  TORCH_CHECK(t.device() == like.device() && t.dim() == 1 && t.size(0) == rows && t.is_contiguous() &&
                  t.scalar_type() == dtype,
              op, ": ", what, " must be a contiguous [", rows, "] ", dtype, " tensor on ", like.device(), ", got ",
              t.sizes(), " ", t.scalar_type(), " on ", t.device());
}

void* stream() { return c10::cuda::getCurrentCUDAStream().stream(); }

void check_launch(const char* error, const char* op) { TORCH_CHECK(error == nullptr, op, ": CUDA error: ", error); }

struct MaskView {
  const bool* data = nullptr;
  const std::int64_t* row_offset = nullptr;
};

MaskView mask_view(const c10::optional<at::Tensor>& mask, const c10::optional<at::Tensor>& row_offset,
                   const at::Tensor& logits, const char* op) {
  if (!mask.has_value() || !mask->defined()) return {};
  TORCH_CHECK(mask->scalar_type() == at::kBool && mask->device() == logits.device(), op,
              ": mask must be a bool tensor on the logits' device");
  TORCH_CHECK(row_offset.has_value() && row_offset->defined(), op, ": a mask needs its row offsets");
  check_vector(*row_offset, logits, logits.size(0), at::kLong, op, "mask_row_offset");
  return {mask->data_ptr<bool>(), row_offset->data_ptr<std::int64_t>()};
}

}  // namespace

std::tuple<at::Tensor, at::Tensor> entropy_forward(const at::Tensor& logits, const c10::optional<at::Tensor>& mask,
                                                   const c10::optional<at::Tensor>& mask_row_offset,
                                                   std::int64_t mask_col_stride, bool padding_rows_zero) {
  constexpr const char* op = "entropy_forward";
  check_rows(logits, op, "logits");
  const c10::cuda::CUDAGuard guard(logits.device());
  const std::int64_t rows = logits.size(0), k = logits.size(1);
  const auto acc_options = logits.options().dtype(accumulation_dtype(logits.scalar_type()));
  at::Tensor entropy = at::empty({rows}, acc_options);
  at::Tensor lse = at::empty({rows}, acc_options);
  const MaskView mv = mask_view(mask, mask_row_offset, logits, op);
  EntropyForwardArgs args{.dtype = dtype_of(logits, op), .k = k, .logits = logits.data_ptr(),
                          .mask = mv.data, .mask_row_offset = mv.row_offset, .mask_col_stride = mask_col_stride,
                          .padding_rows_zero = padding_rows_zero, .entropy = entropy.data_ptr(),
                          .lse = lse.data_ptr()};
  check_launch(cuda_launch::entropy_forward(args, rows, stream()), op);
  return {entropy, lse};
}

at::Tensor entropy_backward(const at::Tensor& grad, const at::Tensor& logits, const c10::optional<at::Tensor>& mask,
                            const c10::optional<at::Tensor>& mask_row_offset, std::int64_t mask_col_stride,
                            const at::Tensor& lse, const at::Tensor& entropy) {
  constexpr const char* op = "entropy_backward";
  check_rows(logits, op, "logits");
  const c10::cuda::CUDAGuard guard(logits.device());
  const std::int64_t rows = logits.size(0), k = logits.size(1);
  const at::ScalarType acc = accumulation_dtype(logits.scalar_type());
  check_vector(grad, logits, rows, acc, op, "grad");
  check_vector(lse, logits, rows, acc, op, "lse");
  check_vector(entropy, logits, rows, acc, op, "entropy");
  at::Tensor out = at::empty({rows, k}, logits.options());
  const MaskView mv = mask_view(mask, mask_row_offset, logits, op);
  EntropyBackwardArgs args{.dtype = dtype_of(logits, op), .k = k, .logits = logits.data_ptr(),
                           .mask = mv.data, .mask_row_offset = mv.row_offset, .mask_col_stride = mask_col_stride,
                           .grad = grad.data_ptr(), .lse = lse.data_ptr(), .entropy = entropy.data_ptr(),
                           .grad_logits = out.data_ptr()};
  check_launch(cuda_launch::entropy_backward(args, rows, stream()), op);
  return out;
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> soft_target_forward(const at::Tensor& logits,
                                                                   const at::Tensor& targets) {
  constexpr const char* op = "soft_target_forward";
  check_rows(logits, op, "logits");
  check_rows(targets, op, "targets");
  TORCH_CHECK(targets.sizes() == logits.sizes() && targets.scalar_type() == logits.scalar_type() &&
                  targets.device() == logits.device(),
              op, ": targets must match logits");
  const c10::cuda::CUDAGuard guard(logits.device());
  const std::int64_t rows = logits.size(0), k = logits.size(1);
  const auto acc_options = logits.options().dtype(accumulation_dtype(logits.scalar_type()));
  at::Tensor loss = at::empty({rows}, acc_options);
  at::Tensor lse = at::empty({rows}, acc_options);
  at::Tensor target_sum = at::empty({rows}, acc_options);
  SoftTargetForwardArgs args{.dtype = dtype_of(logits, op), .k = k, .logits = logits.data_ptr(),
                             .targets = targets.data_ptr(), .loss = loss.data_ptr(), .lse = lse.data_ptr(),
                             .target_sum = target_sum.data_ptr()};
  check_launch(cuda_launch::soft_target_forward(args, rows, stream()), op);
  return {loss, lse, target_sum};
}

std::tuple<at::Tensor, at::Tensor> soft_target_backward(const at::Tensor& grad, const at::Tensor& logits,
                                                        const at::Tensor& targets, const at::Tensor& lse,
                                                        const at::Tensor& target_sum, bool logits_grad,
                                                        bool targets_grad) {
  constexpr const char* op = "soft_target_backward";
  check_rows(logits, op, "logits");
  check_rows(targets, op, "targets");
  const c10::cuda::CUDAGuard guard(logits.device());
  const std::int64_t rows = logits.size(0), k = logits.size(1);
  const at::ScalarType acc = accumulation_dtype(logits.scalar_type());
  check_vector(grad, logits, rows, acc, op, "grad");
  check_vector(lse, logits, rows, acc, op, "lse");
  check_vector(target_sum, logits, rows, acc, op, "target_sum");
  at::Tensor grad_logits = logits_grad ? at::empty({rows, k}, logits.options()) : at::Tensor();
  at::Tensor grad_targets = targets_grad ? at::empty({rows, k}, logits.options()) : at::Tensor();
  SoftTargetBackwardArgs args{.dtype = dtype_of(logits, op), .k = k, .logits = logits.data_ptr(),
                              .targets = targets.data_ptr(), .grad = grad.data_ptr(), .lse = lse.data_ptr(),
                              .target_sum = target_sum.data_ptr(),
                              .grad_logits = logits_grad ? grad_logits.data_ptr() : nullptr,
                              .grad_targets = targets_grad ? grad_targets.data_ptr() : nullptr};
  check_launch(cuda_launch::soft_target_backward(args, rows, stream()), op);
  return {grad_logits, grad_targets};
}

void lce_chunk_forward(const at::Tensor& logits, const at::Tensor& target, at::Tensor& stats) {
  constexpr const char* op = "lce_chunk_forward";
  check_rows(logits, op, "logits");
  TORCH_CHECK(logits.scalar_type() == at::kFloat || logits.scalar_type() == at::kDouble, op,
              ": logits must be float32 or float64");
  const c10::cuda::CUDAGuard guard(logits.device());
  const std::int64_t rows = logits.size(0), k = logits.size(1);
  check_vector(target, logits, rows, at::kLong, op, "target");
  TORCH_CHECK(stats.device() == logits.device() && stats.is_contiguous() && stats.dim() == 2 &&
                  stats.size(0) == rows && stats.size(1) == 4 && stats.scalar_type() == logits.scalar_type(),
              op, ": stats must be a contiguous [rows, 4] tensor of the logits' dtype and device");
  LceChunkForwardArgs args{.dtype = dtype_of(logits, op), .k = k, .logits = logits.data_ptr(),
                           .target = target.data_ptr<std::int64_t>(), .stats = stats.data_ptr()};
  check_launch(cuda_launch::lce_chunk_forward(args, rows, stream()), op);
}

void lce_chunk_backward(at::Tensor& logits, const at::Tensor& target, const at::Tensor& lse,
                        const at::Tensor& entropy, const at::Tensor& coef_ce, const at::Tensor& coef_ent) {
  constexpr const char* op = "lce_chunk_backward";
  check_rows(logits, op, "logits");
  TORCH_CHECK(logits.scalar_type() == at::kFloat || logits.scalar_type() == at::kDouble, op,
              ": logits must be float32 or float64");
  const c10::cuda::CUDAGuard guard(logits.device());
  const std::int64_t rows = logits.size(0), k = logits.size(1);
  const at::ScalarType dt = logits.scalar_type();
  check_vector(target, logits, rows, at::kLong, op, "target");
  check_vector(lse, logits, rows, dt, op, "lse");
  check_vector(entropy, logits, rows, dt, op, "entropy");
  check_vector(coef_ce, logits, rows, dt, op, "coef_ce");
  check_vector(coef_ent, logits, rows, dt, op, "coef_ent");
  LceChunkBackwardArgs args{.dtype = dtype_of(logits, op), .k = k, .logits = logits.data_ptr(),
                            .target = target.data_ptr<std::int64_t>(), .lse = lse.data_ptr(),
                            .entropy = entropy.data_ptr(), .coef_ce = coef_ce.data_ptr(),
                            .coef_ent = coef_ent.data_ptr()};
  check_launch(cuda_launch::lce_chunk_backward(args, rows, stream()), op);
}

}  // namespace reglab::kernels::cuda
