// The differentiable operations: shape handling and one autograd function
// each; the arithmetic is in the device kernels (internal.h).
#include <ATen/ExpandUtils.h>
#include <ATen/WrapDimUtils.h>
#include <ATen/ops/arange.h>
#include <ATen/ops/zeros.h>
#include <c10/util/Exception.h>
#include <torch/csrc/autograd/custom_function.h>

#include <vector>

#include "reglab/kernels/ops.h"
#include "src/internal.h"

namespace reglab::kernels {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

void check_floating(const at::Tensor& t, const char* op, const char* what) {
  TORCH_CHECK(t.defined(), op, ": ", what, " is undefined");
  const at::ScalarType s = t.scalar_type();
  TORCH_CHECK(s == at::kFloat || s == at::kDouble || s == at::kHalf || s == at::kBFloat16, op, ": ", what,
              " must be float32, float64, float16 or bfloat16, got ", s);
  TORCH_CHECK(t.layout() == at::kStrided, op, ": ", what, " must be a dense tensor");
}

// `t` with `dim` moved last, as a contiguous [rows, k] tensor, and the shape
// of one value per row.
struct Rows {
  at::Tensor data;
  std::vector<std::int64_t> row_shape;
};

Rows as_rows(const at::Tensor& t, std::int64_t dim) {
  const at::Tensor moved = dim == t.dim() - 1 ? t : t.movedim(dim, -1);
  std::vector<std::int64_t> row_shape(moved.sizes().begin(), moved.sizes().end() - 1);
  std::int64_t rows = 1;
  for (std::int64_t s : row_shape) rows *= s;
  return {moved.reshape({rows, moved.size(-1)}).contiguous(), std::move(row_shape)};
}

// The incoming gradient per row, in the accumulation dtype the kernels read.
at::Tensor row_grad(const at::Tensor& grad, const at::Tensor& logits) {
  return grad.to(accumulation_dtype(logits.scalar_type())).contiguous();
}

struct SoftmaxEntropyFn : torch::autograd::Function<SoftmaxEntropyFn> {
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& logits) {
    auto [entropy, lse] = dispatch::entropy_forward(logits, c10::nullopt, c10::nullopt, 1, false);
    ctx->save_for_backward({logits, lse, entropy});
    return entropy.to(logits.scalar_type());
  }
  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const variable_list saved = ctx->get_saved_variables();
    return {dispatch::entropy_backward(row_grad(grads[0], saved[0]), saved[0], c10::nullopt, c10::nullopt, 1,
                                       saved[1], saved[2])};
  }
};

struct AttentionEntropyFn : torch::autograd::Function<AttentionEntropyFn> {
  // The mask is not a differentiable input (and autograd inputs cannot be
  // undefined), so it travels as an optional.
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& logits, const c10::optional<at::Tensor>& mask,
                            const c10::optional<at::Tensor>& row_offset, std::int64_t col_stride) {
    auto [entropy, lse] = dispatch::entropy_forward(logits, mask, row_offset, col_stride, true);
    ctx->save_for_backward({logits, lse, entropy});
    if (mask.has_value()) {
      ctx->saved_data["mask"] = *mask;
      ctx->saved_data["row_offset"] = *row_offset;
    }
    ctx->saved_data["col_stride"] = col_stride;
    return entropy.to(logits.scalar_type());
  }
  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const variable_list saved = ctx->get_saved_variables();
    c10::optional<at::Tensor> mask, row_offset;
    if (ctx->saved_data.count("mask") != 0) {
      mask = ctx->saved_data["mask"].toTensor();
      row_offset = ctx->saved_data["row_offset"].toTensor();
    }
    at::Tensor grad = dispatch::entropy_backward(row_grad(grads[0], saved[0]), saved[0], mask, row_offset,
                                                 ctx->saved_data["col_stride"].toInt(), saved[1], saved[2]);
    return {grad, at::Tensor(), at::Tensor(), at::Tensor()};
  }
};

struct SoftTargetCrossEntropyFn : torch::autograd::Function<SoftTargetCrossEntropyFn> {
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& logits, const at::Tensor& targets) {
    auto [loss, lse, target_sum] = dispatch::soft_target_forward(logits, targets);
    ctx->save_for_backward({logits, targets, lse, target_sum});
    return loss.to(logits.scalar_type());
  }
  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const variable_list saved = ctx->get_saved_variables();
    auto [grad_logits, grad_targets] =
        dispatch::soft_target_backward(row_grad(grads[0], saved[0]), saved[0], saved[1], saved[2], saved[3],
                                       ctx->needs_input_grad(0), ctx->needs_input_grad(1));
    return {grad_logits, grad_targets};
  }
};

}  // namespace

at::Tensor softmax_entropy(const at::Tensor& logits, std::int64_t dim) {
  constexpr const char* op = "reglab::kernels::softmax_entropy";
  check_floating(logits, op, "logits");
  TORCH_CHECK(logits.dim() >= 1, op, ": logits must have at least one dimension");
  dim = c10::maybe_wrap_dim(dim, logits.dim());
  Rows rows = as_rows(logits, dim);
  return SoftmaxEntropyFn::apply(rows.data).view(rows.row_shape);
}

at::Tensor soft_target_cross_entropy(const at::Tensor& logits, const at::Tensor& target_probs, std::int64_t dim) {
  constexpr const char* op = "reglab::kernels::soft_target_cross_entropy";
  check_floating(logits, op, "logits");
  check_floating(target_probs, op, "target_probs");
  TORCH_CHECK(logits.dim() >= 1, op, ": logits must have at least one dimension");
  TORCH_CHECK(target_probs.sizes() == logits.sizes(), op, ": target_probs must have the logits' shape ",
              logits.sizes(), ", got ", target_probs.sizes());
  TORCH_CHECK(target_probs.scalar_type() == logits.scalar_type(), op, ": target_probs must have the logits' dtype ",
              logits.scalar_type(), ", got ", target_probs.scalar_type());
  TORCH_CHECK(target_probs.device() == logits.device(), op, ": target_probs must be on the logits' device ",
              logits.device(), ", got ", target_probs.device());
  dim = c10::maybe_wrap_dim(dim, logits.dim());
  Rows z = as_rows(logits, dim);
  Rows t = as_rows(target_probs, dim);
  return SoftTargetCrossEntropyFn::apply(z.data, t.data).view(z.row_shape);
}

at::Tensor attention_entropy(const at::Tensor& attention_logits, const at::Tensor& mask) {
  constexpr const char* op = "reglab::kernels::attention_entropy";
  check_floating(attention_logits, op, "attention_logits");
  TORCH_CHECK(attention_logits.dim() >= 1, op, ": attention_logits must have at least one dimension");
  Rows rows = as_rows(attention_logits, attention_logits.dim() - 1);
  c10::optional<at::Tensor> expanded, row_offset;
  std::int64_t col_stride = 1;
  if (mask.defined()) {
    TORCH_CHECK(mask.scalar_type() == at::kBool, op, ": mask must be a bool tensor (true = takes part), got ",
                mask.scalar_type());
    TORCH_CHECK(mask.device() == attention_logits.device(), op, ": mask must be on the logits' device ",
                attention_logits.device(), ", got ", mask.device());
    TORCH_CHECK(at::is_expandable_to(mask.sizes(), attention_logits.sizes()), op, ": mask of shape ", mask.sizes(),
                " does not broadcast to the logits' shape ", attention_logits.sizes());
    // A strided view: broadcast dimensions have stride 0, so the kernels read
    // each stored mask value in place. The row offsets locate each row's first
    // entry within it.
    const at::Tensor view = mask.expand(attention_logits.sizes());
    const std::int64_t lead = attention_logits.dim() - 1;
    col_stride = view.stride(lead);
    at::Tensor offset = at::zeros(rows.row_shape, attention_logits.options().dtype(at::kLong));
    for (std::int64_t i = 0; i < lead; ++i) {
      std::vector<std::int64_t> shape(static_cast<std::size_t>(lead), 1);
      shape[i] = view.size(i);
      offset.add_(at::arange(view.size(i), offset.options()).mul_(view.stride(i)).view(shape));
    }
    expanded = view;
    row_offset = offset.reshape({rows.data.size(0)}).contiguous();
  }
  return AttentionEntropyFn::apply(rows.data, expanded, row_offset, col_stride).view(rows.row_shape);
}

}  // namespace reglab::kernels
