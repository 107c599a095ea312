// The CPU implementation: checks, output allocation, rows split over
// LibTorch's intra-op threads, and the choice of instruction set.
#include <ATen/Parallel.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <c10/util/Exception.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <cstring>

#include "cpu/row_kernels.h"
#include "reglab/kernels/ops.h"
#include "src/internal.h"

namespace reglab::kernels {
namespace {

CpuPath detect_cpu_path() {
  const char* env = std::getenv("ATEN_CPU_CAPABILITY");
  if (env != nullptr && std::strcmp(env, "default") == 0) return CpuPath::kPortable;
  return cpu_path_available(CpuPath::kAvx2) ? CpuPath::kAvx2 : CpuPath::kPortable;
}

std::atomic<CpuPath>& current_path() {
  static std::atomic<CpuPath> path{detect_cpu_path()};
  return path;
}

}  // namespace

bool cpu_path_available(CpuPath path) {
  if (path == CpuPath::kPortable) return true;
#if defined(REGLAB_KERNELS_HAVE_AVX2)
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#else
  return false;
#endif
}

CpuPath cpu_path() { return current_path().load(std::memory_order_relaxed); }

void set_cpu_path(CpuPath path) {
  TORCH_CHECK(cpu_path_available(path), "reglab::kernels::set_cpu_path: ",
              path == CpuPath::kAvx2 ? "avx2" : "portable",
              " is not available (not built, or the CPU lacks AVX2/FMA)");
  current_path().store(path, std::memory_order_relaxed);
}

namespace cpu {
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

// Rows per task: enough elements that a task outweighs its scheduling.
std::int64_t grain(std::int64_t k) { return std::max<std::int64_t>(1, 32768 / std::max<std::int64_t>(k, 1)); }

template <typename Args, typename Fn>
void run_rows(std::int64_t rows, std::int64_t k, const Args& args, Fn portable_fn, Fn avx2_fn) {
  const Fn fn = cpu_path() == CpuPath::kAvx2 && avx2_fn != nullptr ? avx2_fn : portable_fn;
  at::parallel_for(0, rows, grain(k), [&](std::int64_t begin, std::int64_t end) { fn(args, begin, end); });
}

#if defined(REGLAB_KERNELS_HAVE_AVX2)
#define REGLAB_AVX2(name) &avx2::name
#else
#define REGLAB_AVX2(name) nullptr
#endif
#define REGLAB_RUN_ROWS(name, rows, k, args)                                                    \
  run_rows<name##_args_t, void (*)(const name##_args_t&, std::int64_t, std::int64_t)>(         \
      rows, k, args, &portable::name, REGLAB_AVX2(name))

using entropy_forward_args_t = EntropyForwardArgs;
using entropy_backward_args_t = EntropyBackwardArgs;
using soft_target_forward_args_t = SoftTargetForwardArgs;
using soft_target_backward_args_t = SoftTargetBackwardArgs;
using lce_chunk_forward_args_t = LceChunkForwardArgs;
using lce_chunk_backward_args_t = LceChunkBackwardArgs;

void check_rows(const at::Tensor& t, const char* op, const char* what) {
  TORCH_CHECK(t.device().is_cpu() && t.dim() == 2 && t.is_contiguous(), op, ": ", what,
              " must be a contiguous 2-D CPU tensor, got ", t.sizes(), " on ", t.device());
}

void check_vector(const at::Tensor& t, std::int64_t rows, at::ScalarType dtype, const char* op, const char* what) {
  TORCH_CHECK(t.device().is_cpu() && t.dim() == 1 && t.size(0) == rows && t.is_contiguous() &&
                  t.scalar_type() == dtype,
              op, ": ", what, " must be a contiguous [", rows, "] ", dtype, " CPU tensor, got ", t.sizes(), " ",
              t.scalar_type());
}

struct MaskView {
  const bool* data = nullptr;
  const std::int64_t* row_offset = nullptr;
};

MaskView mask_view(const c10::optional<at::Tensor>& mask, const c10::optional<at::Tensor>& row_offset,
                   std::int64_t rows, const char* op) {
  if (!mask.has_value() || !mask->defined()) return {};
  TORCH_CHECK(mask->scalar_type() == at::kBool && mask->device().is_cpu(), op, ": mask must be a bool CPU tensor");
  TORCH_CHECK(row_offset.has_value() && row_offset->defined(), op, ": a mask needs its row offsets");
  check_vector(*row_offset, rows, at::kLong, op, "mask_row_offset");
  return {mask->data_ptr<bool>(), row_offset->data_ptr<std::int64_t>()};
}

}  // namespace

std::tuple<at::Tensor, at::Tensor> entropy_forward(const at::Tensor& logits, const c10::optional<at::Tensor>& mask,
                                                   const c10::optional<at::Tensor>& mask_row_offset,
                                                   std::int64_t mask_col_stride, bool padding_rows_zero) {
  constexpr const char* op = "entropy_forward";
  check_rows(logits, op, "logits");
  const std::int64_t rows = logits.size(0), k = logits.size(1);
  const auto acc_options = logits.options().dtype(accumulation_dtype(logits.scalar_type()));
  at::Tensor entropy = at::empty({rows}, acc_options);
  at::Tensor lse = at::empty({rows}, acc_options);
  const MaskView mv = mask_view(mask, mask_row_offset, rows, op);
  EntropyForwardArgs args{.dtype = dtype_of(logits, op), .k = k, .logits = logits.data_ptr(),
                          .mask = mv.data, .mask_row_offset = mv.row_offset, .mask_col_stride = mask_col_stride,
                          .padding_rows_zero = padding_rows_zero, .entropy = entropy.data_ptr(),
                          .lse = lse.data_ptr()};
  REGLAB_RUN_ROWS(entropy_forward, rows, k, args);
  return {entropy, lse};
}

at::Tensor entropy_backward(const at::Tensor& grad, const at::Tensor& logits, const c10::optional<at::Tensor>& mask,
                            const c10::optional<at::Tensor>& mask_row_offset, std::int64_t mask_col_stride,
                            const at::Tensor& lse, const at::Tensor& entropy) {
  constexpr const char* op = "entropy_backward";
  check_rows(logits, op, "logits");
  const std::int64_t rows = logits.size(0), k = logits.size(1);
  const at::ScalarType acc = accumulation_dtype(logits.scalar_type());
  check_vector(grad, rows, acc, op, "grad");
  check_vector(lse, rows, acc, op, "lse");
  check_vector(entropy, rows, acc, op, "entropy");
  at::Tensor out = at::empty({rows, k}, logits.options());
  const MaskView mv = mask_view(mask, mask_row_offset, rows, op);
  EntropyBackwardArgs args{.dtype = dtype_of(logits, op), .k = k, .logits = logits.data_ptr(),
                           .mask = mv.data, .mask_row_offset = mv.row_offset, .mask_col_stride = mask_col_stride,
                           .grad = grad.data_ptr(), .lse = lse.data_ptr(), .entropy = entropy.data_ptr(),
                           .grad_logits = out.data_ptr()};
  REGLAB_RUN_ROWS(entropy_backward, rows, k, args);
  return out;
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> soft_target_forward(const at::Tensor& logits,
                                                                   const at::Tensor& targets) {
  constexpr const char* op = "soft_target_forward";
  check_rows(logits, op, "logits");
  check_rows(targets, op, "targets");
  TORCH_CHECK(targets.sizes() == logits.sizes() && targets.scalar_type() == logits.scalar_type(), op,
              ": targets must match logits");
  const std::int64_t rows = logits.size(0), k = logits.size(1);
  const auto acc_options = logits.options().dtype(accumulation_dtype(logits.scalar_type()));
  at::Tensor loss = at::empty({rows}, acc_options);
  at::Tensor lse = at::empty({rows}, acc_options);
  at::Tensor target_sum = at::empty({rows}, acc_options);
  SoftTargetForwardArgs args{.dtype = dtype_of(logits, op), .k = k, .logits = logits.data_ptr(),
                             .targets = targets.data_ptr(), .loss = loss.data_ptr(), .lse = lse.data_ptr(),
                             .target_sum = target_sum.data_ptr()};
  REGLAB_RUN_ROWS(soft_target_forward, rows, k, args);
  return {loss, lse, target_sum};
}

std::tuple<at::Tensor, at::Tensor> soft_target_backward(const at::Tensor& grad, const at::Tensor& logits,
                                                        const at::Tensor& targets, const at::Tensor& lse,
                                                        const at::Tensor& target_sum, bool logits_grad,
                                                        bool targets_grad) {
  constexpr const char* op = "soft_target_backward";
  check_rows(logits, op, "logits");
  check_rows(targets, op, "targets");
  const std::int64_t rows = logits.size(0), k = logits.size(1);
  const at::ScalarType acc = accumulation_dtype(logits.scalar_type());
  check_vector(grad, rows, acc, op, "grad");
  check_vector(lse, rows, acc, op, "lse");
  check_vector(target_sum, rows, acc, op, "target_sum");
  at::Tensor grad_logits = logits_grad ? at::empty({rows, k}, logits.options()) : at::Tensor();
  at::Tensor grad_targets = targets_grad ? at::empty({rows, k}, logits.options()) : at::Tensor();
  SoftTargetBackwardArgs args{.dtype = dtype_of(logits, op), .k = k, .logits = logits.data_ptr(),
                              .targets = targets.data_ptr(), .grad = grad.data_ptr(), .lse = lse.data_ptr(),
                              .target_sum = target_sum.data_ptr(),
                              .grad_logits = logits_grad ? grad_logits.data_ptr() : nullptr,
                              .grad_targets = targets_grad ? grad_targets.data_ptr() : nullptr};
  REGLAB_RUN_ROWS(soft_target_backward, rows, k, args);
  return {grad_logits, grad_targets};
}

void lce_chunk_forward(const at::Tensor& logits, const at::Tensor& target, at::Tensor& stats) {
  constexpr const char* op = "lce_chunk_forward";
  check_rows(logits, op, "logits");
  TORCH_CHECK(logits.scalar_type() == at::kFloat || logits.scalar_type() == at::kDouble, op,
              ": logits must be float32 or float64");
  const std::int64_t rows = logits.size(0), k = logits.size(1);
  check_vector(target, rows, at::kLong, op, "target");
  TORCH_CHECK(stats.device().is_cpu() && stats.is_contiguous() && stats.dim() == 2 && stats.size(0) == rows &&
                  stats.size(1) == 4 && stats.scalar_type() == logits.scalar_type(),
              op, ": stats must be a contiguous [rows, 4] tensor of the logits' dtype");
  LceChunkForwardArgs args{.dtype = dtype_of(logits, op), .k = k, .logits = logits.data_ptr(),
                           .target = target.data_ptr<std::int64_t>(), .stats = stats.data_ptr()};
  REGLAB_RUN_ROWS(lce_chunk_forward, rows, k, args);
}

void lce_chunk_backward(at::Tensor& logits, const at::Tensor& target, const at::Tensor& lse,
                        const at::Tensor& entropy, const at::Tensor& coef_ce, const at::Tensor& coef_ent) {
  constexpr const char* op = "lce_chunk_backward";
  check_rows(logits, op, "logits");
  TORCH_CHECK(logits.scalar_type() == at::kFloat || logits.scalar_type() == at::kDouble, op,
              ": logits must be float32 or float64");
  const std::int64_t rows = logits.size(0), k = logits.size(1);
  const at::ScalarType dt = logits.scalar_type();
  check_vector(target, rows, at::kLong, op, "target");
  check_vector(lse, rows, dt, op, "lse");
  check_vector(entropy, rows, dt, op, "entropy");
  check_vector(coef_ce, rows, dt, op, "coef_ce");
  check_vector(coef_ent, rows, dt, op, "coef_ent");
  LceChunkBackwardArgs args{.dtype = dtype_of(logits, op), .k = k, .logits = logits.data_ptr(),
                            .target = target.data_ptr<std::int64_t>(), .lse = lse.data_ptr(),
                            .entropy = entropy.data_ptr(), .coef_ce = coef_ce.data_ptr(),
                            .coef_ent = coef_ent.data_ptr()};
  REGLAB_RUN_ROWS(lce_chunk_backward, rows, k, args);
}

}  // namespace cpu
}  // namespace reglab::kernels
