// The one registration point: every operator's schema, the device
// implementations behind each kernel, and the calls through the dispatcher.
//
// Kernels (per device; 2-D contiguous inputs, see internal.h) and the
// differentiable operations of ops.h (device-independent, autograd inside)
// are both registered, so torch.ops.reglab_kernels.* reaches them from Python
// once libreglab_kernels.so is loaded (torch.ops.load_library).
#include <ATen/core/dispatch/Dispatcher.h>
#include <c10/util/Exception.h>
#include <torch/library.h>

#include <string>

#include "reglab/kernels/ops.h"
#include "src/internal.h"

namespace reglab::kernels {
namespace {

at::Tensor attention_entropy_op(const at::Tensor& logits, const c10::optional<at::Tensor>& mask) {
  return attention_entropy(logits, mask.has_value() ? *mask : at::Tensor());
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> linear_cross_entropy_op(
    const at::Tensor& hidden, const at::Tensor& weight, const at::Tensor& targets,
    const c10::optional<at::Tensor>& bias, std::int64_t ignore_index, c10::string_view reduction,
    bool return_entropy, bool return_target_logprob, std::int64_t token_chunk, std::int64_t vocab_chunk) {
  LinearCrossEntropyOptions o;
  o.ignore_index = ignore_index;
  if (reduction == "mean") {
    o.reduction = Reduction::kMean;
  } else if (reduction == "sum") {
    o.reduction = Reduction::kSum;
  } else if (reduction == "none") {
    o.reduction = Reduction::kNone;
  } else {
    TORCH_CHECK(false, "linear_cross_entropy: reduction must be 'mean', 'sum' or 'none', got '",
                std::string(reduction), "'");
  }
  o.return_entropy = return_entropy;
  o.return_target_logprob = return_target_logprob;
  o.token_chunk = token_chunk;
  o.vocab_chunk = vocab_chunk;
  LinearCrossEntropyResult r =
      linear_cross_entropy(hidden, weight, targets, bias.has_value() ? *bias : at::Tensor(), o);
  return {r.loss, r.entropy, r.target_logprob};
}

template <typename Sig>
c10::TypedOperatorHandle<Sig> handle(const char* name) {
  return c10::Dispatcher::singleton().findSchemaOrThrow(name, "").typed<Sig>();
}

}  // namespace

bool built_with_cuda() {
#if defined(REGLAB_KERNELS_WITH_CUDA)
  return true;
#else
  return false;
#endif
}

namespace dispatch {

std::tuple<at::Tensor, at::Tensor> entropy_forward(const at::Tensor& logits, const c10::optional<at::Tensor>& mask,
                                                   const c10::optional<at::Tensor>& mask_row_offset,
                                                   std::int64_t mask_col_stride, bool padding_rows_zero) {
  static const auto op = handle<decltype(cpu::entropy_forward)>("reglab_kernels::entropy_forward");
  return op.call(logits, mask, mask_row_offset, mask_col_stride, padding_rows_zero);
}

at::Tensor entropy_backward(const at::Tensor& grad, const at::Tensor& logits, const c10::optional<at::Tensor>& mask,
                            const c10::optional<at::Tensor>& mask_row_offset, std::int64_t mask_col_stride,
                            const at::Tensor& lse, const at::Tensor& entropy) {
  static const auto op = handle<decltype(cpu::entropy_backward)>("reglab_kernels::entropy_backward");
  return op.call(grad, logits, mask, mask_row_offset, mask_col_stride, lse, entropy);
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> soft_target_forward(const at::Tensor& logits,
                                                                   const at::Tensor& targets) {
  static const auto op = handle<decltype(cpu::soft_target_forward)>("reglab_kernels::soft_target_forward");
  return op.call(logits, targets);
}

std::tuple<at::Tensor, at::Tensor> soft_target_backward(const at::Tensor& grad, const at::Tensor& logits,
                                                        const at::Tensor& targets, const at::Tensor& lse,
                                                        const at::Tensor& target_sum, bool logits_grad,
                                                        bool targets_grad) {
  static const auto op = handle<decltype(cpu::soft_target_backward)>("reglab_kernels::soft_target_backward");
  return op.call(grad, logits, targets, lse, target_sum, logits_grad, targets_grad);
}

void lce_chunk_forward(const at::Tensor& logits, const at::Tensor& target, at::Tensor& stats) {
  static const auto op = handle<decltype(cpu::lce_chunk_forward)>("reglab_kernels::lce_chunk_forward");
  op.call(logits, target, stats);
}

void lce_chunk_backward(at::Tensor& logits, const at::Tensor& target, const at::Tensor& lse,
                        const at::Tensor& entropy, const at::Tensor& coef_ce, const at::Tensor& coef_ent) {
  static const auto op = handle<decltype(cpu::lce_chunk_backward)>("reglab_kernels::lce_chunk_backward");
  op.call(logits, target, lse, entropy, coef_ce, coef_ent);
}

}  // namespace dispatch
}  // namespace reglab::kernels

TORCH_LIBRARY(reglab_kernels, m) {
  namespace k = reglab::kernels;
  // Kernels.
  m.def("entropy_forward(Tensor logits, Tensor? mask, Tensor? mask_row_offset, int mask_col_stride, "
        "bool padding_rows_zero) -> (Tensor, Tensor)");
  m.def("entropy_backward(Tensor grad, Tensor logits, Tensor? mask, Tensor? mask_row_offset, int mask_col_stride, "
        "Tensor lse, Tensor entropy) -> Tensor");
  m.def("soft_target_forward(Tensor logits, Tensor targets) -> (Tensor, Tensor, Tensor)");
  m.def("soft_target_backward(Tensor grad, Tensor logits, Tensor targets, Tensor lse, Tensor target_sum, "
        "bool logits_grad, bool targets_grad) -> (Tensor, Tensor)");
  m.def("lce_chunk_forward(Tensor logits, Tensor target, Tensor(a!) stats) -> ()");
  m.def("lce_chunk_backward(Tensor(a!) logits, Tensor target, Tensor lse, Tensor entropy, Tensor coef_ce, "
        "Tensor coef_ent) -> ()");
  // The differentiable operations.
  m.def("softmax_entropy(Tensor logits, int dim=-1) -> Tensor", TORCH_FN(k::softmax_entropy));
  m.def("soft_target_cross_entropy(Tensor logits, Tensor target_probs, int dim=-1) -> Tensor",
        TORCH_FN(k::soft_target_cross_entropy));
  m.def("attention_entropy(Tensor attention_logits, Tensor? mask=None) -> Tensor", TORCH_FN(k::attention_entropy_op));
  m.def("linear_cross_entropy(Tensor hidden, Tensor weight, Tensor targets, Tensor? bias=None, "
        "int ignore_index=-100, str reduction='mean', bool return_entropy=False, bool return_target_logprob=False, "
        "int token_chunk=0, int vocab_chunk=0) -> (Tensor, Tensor, Tensor)",
        TORCH_FN(k::linear_cross_entropy_op));
}

#define REGLAB_KERNELS_IMPL(ns)                                                        \
  m.impl("entropy_forward", TORCH_FN(reglab::kernels::ns::entropy_forward));           \
  m.impl("entropy_backward", TORCH_FN(reglab::kernels::ns::entropy_backward));         \
  m.impl("soft_target_forward", TORCH_FN(reglab::kernels::ns::soft_target_forward));   \
  m.impl("soft_target_backward", TORCH_FN(reglab::kernels::ns::soft_target_backward)); \
  m.impl("lce_chunk_forward", TORCH_FN(reglab::kernels::ns::lce_chunk_forward));       \
  m.impl("lce_chunk_backward", TORCH_FN(reglab::kernels::ns::lce_chunk_backward));

TORCH_LIBRARY_IMPL(reglab_kernels, CPU, m) { REGLAB_KERNELS_IMPL(cpu) }

#if defined(REGLAB_KERNELS_WITH_CUDA)
TORCH_LIBRARY_IMPL(reglab_kernels, CUDA, m) { REGLAB_KERNELS_IMPL(cuda) }
#endif
