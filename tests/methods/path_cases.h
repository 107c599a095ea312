// Parameters for the golden tests of methods with two loss paths (a fused
// CPU autograd function and the generic tensor ops an accelerator takes; see
// reglab/fused_paths.h): every case runs in both dtypes through both paths.
#pragma once

#include <gtest/gtest.h>
#include <torch/types.h>

#include <cstdlib>
#include <string>

namespace reglab::testing {

struct PathCase {
  torch::ScalarType dtype;
  bool tensor_ops;  // REGLAB_TENSOR_OPS_ONLY=1 while the case runs
};

inline const auto kPathCases = ::testing::Values(PathCase{torch::kDouble, false}, PathCase{torch::kFloat, false},
                                                 PathCase{torch::kDouble, true}, PathCase{torch::kFloat, true});

inline std::string path_case_name(const ::testing::TestParamInfo<PathCase>& info) {
  return std::string(info.param.dtype == torch::kDouble ? "Float64" : "Float32") +
         (info.param.tensor_ops ? "TensorOps" : "Fused");
}

// The fixture: sets the switch for the case's path and clears it afterwards.
class PathCaseTest : public ::testing::TestWithParam<PathCase> {
 protected:
  void SetUp() override {
    if (GetParam().tensor_ops)
      ::setenv("REGLAB_TENSOR_OPS_ONLY", "1", 1);
    else
      ::unsetenv("REGLAB_TENSOR_OPS_ONLY");
  }
  void TearDown() override { ::unsetenv("REGLAB_TENSOR_OPS_ONLY"); }
  torch::ScalarType dtype() const { return GetParam().dtype; }
};

// Whether the loss came out of the autograd function named `fn` (the fused
// path) rather than a chain of tensor ops (StepResult::loss_fn): what proves
// the switch took effect.
inline bool made_by(const std::string& loss_fn, const std::string& fn) {
  return loss_fn.find(fn) != std::string::npos;
}

}  // namespace reglab::testing
