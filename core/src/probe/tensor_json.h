// probe/tensor_json.h — tensors to and from JSON nested lists.
//
// A tensor of rank r is written as r nested JSON arrays of numbers, row-major
// (a rank-0 tensor is a bare number); `[[1, 2], [3, 4]]` is a 2×2 tensor.
// Reading checks that the nesting is rectangular and that every leaf is a
// number, and reports the first problem with its position, e.g.
// "logits[1]: ragged list: expected 3 elements, found 2". JSON has no NaN or
// infinity, so floating values may also be the strings "nan", "inf" and
// "-inf", and writing produces those strings for non-finite values (plain
// numbers otherwise, integers for integer tensors, booleans for bool).
// Writing accepts a tensor on any device; reading makes CPU tensors.
// Stateless functions, safe to call from any thread.
#pragma once

#include <nlohmann/json_fwd.hpp>
#include <torch/types.h>

#include <string>

namespace reglab::probe {

// `what` names the value in error messages ("logits", "steps[2].labels").
// For an integer dtype every leaf must be an integer (no 1.0, no "nan").
// Throws std::invalid_argument.
torch::Tensor tensor_from_json(const nlohmann::json& value, torch::ScalarType dtype,
                               const std::string& what);

nlohmann::json tensor_to_json(const torch::Tensor& tensor);

}  // namespace reglab::probe
