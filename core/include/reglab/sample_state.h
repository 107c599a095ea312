// reglab/sample_state.h — helpers for methods that keep one row of state per
// training sample (ELR's target average, PS-KD's past predictions, ALDR-KL's
// per-sample λ, ...). Header-only, part of the SDK.
//
// Contract:
//   check_indices(method, indices, batch, num_samples)
//       indices must be an int64 [batch] tensor with values in
//       [0, num_samples); otherwise throws c10::Error naming the method.
//       On the CPU the range is checked in one pass over the values; on an
//       accelerator it is left to the indexing op (a check would cost a sync).
//   assign_rows(state, indices, rows)
//       state[indices[j]] = rows[j] for j = 0, 1, ... in order, so when an
//       index repeats the last row wins — what element-by-element index
//       assignment does, and what the official implementations get on the
//       CPU. rows is converted to state's dtype and device.
//   shape_text(t)
//       "[2, 3]", for error messages.
#pragma once

#include <torch/types.h>

#include <cstdint>
#include <cstring>
#include <string>

namespace reglab {

inline std::string shape_text(const torch::Tensor& t) {
  if (!t.defined()) return "an undefined tensor";
  std::string s = "[";
  for (std::int64_t d = 0; d < t.dim(); ++d) s += (d ? ", " : "") + std::to_string(t.size(d));
  return s + "]";
}

inline void check_indices(const char* method, const torch::Tensor& indices, std::int64_t batch,
                          std::int64_t num_samples) {
  TORCH_CHECK(indices.defined() && indices.dim() == 1 && indices.size(0) == batch &&
                  indices.scalar_type() == torch::kLong,
              method, ": indices must be int64 [B] with B = ", batch, " (positions in the training set), got ",
              shape_text(indices));
  if (batch == 0 || !indices.device().is_cpu()) return;
  const torch::Tensor ix = indices.contiguous();
  const std::int64_t* v = ix.data_ptr<std::int64_t>();
  std::int64_t lo = v[0], hi = v[0];
  for (std::int64_t j = 1; j < batch; ++j) {
    lo = v[j] < lo ? v[j] : lo;
    hi = v[j] > hi ? v[j] : hi;
  }
  TORCH_CHECK(lo >= 0 && hi < num_samples, method, ": indices must be in [0, ", num_samples,
              ") (num_train_samples), got values in [", lo, ", ", hi, "]");
}

inline void assign_rows(torch::Tensor& state, const torch::Tensor& indices, const torch::Tensor& rows) {
  torch::NoGradGuard no_grad;
  const torch::Tensor src = rows.to(state.device(), state.scalar_type()).contiguous();
  const std::int64_t n = indices.size(0);
  TORCH_CHECK(src.dim() >= 1 && src.size(0) == n && state.dim() == src.dim() &&
                  state.sizes().slice(1).equals(src.sizes().slice(1)),
              "assign_rows: rows must be [", n, ", ...] matching the state's row shape ",
              shape_text(state), ", got ", shape_text(src));
  if (n == 0) return;
  if (state.device().is_cpu() && state.is_contiguous()) {
    // A plain copy per row: ordered, and without the dispatch of indexing ops,
    // which dominates for the small rows methods keep (tools/bench).
    const torch::Tensor ix = indices.contiguous();
    const std::int64_t* v = ix.data_ptr<std::int64_t>();
    const std::size_t row_bytes = static_cast<std::size_t>(src.numel() / n) * src.element_size();
    auto* dst = static_cast<char*>(state.data_ptr());
    const auto* from = static_cast<const char*>(src.data_ptr());
    for (std::int64_t j = 0; j < n; ++j)
      std::memcpy(dst + static_cast<std::size_t>(v[j]) * row_bytes, from + static_cast<std::size_t>(j) * row_bytes,
                  row_bytes);
    return;
  }
  // Elsewhere index_put_ leaves the winner of a repeated index unspecified, so
  // only the last occurrence of each index is written.
  const torch::Tensor same = indices.unsqueeze(1).eq(indices.unsqueeze(0)).to(torch::kLong);
  const torch::Tensor position = torch::arange(n, indices.options().dtype(torch::kLong));
  const torch::Tensor last = same.mul(position.unsqueeze(0)).amax(1);
  state.index_put_({indices}, src.index_select(0, last));
}

}  // namespace reglab
