// Helpers for the kernel tests: the plain LibTorch compositions each fused
// operation must agree with, autograd and finite-difference gradients, and
// the CPU code paths to run every check on.
#pragma once

#include <gtest/gtest.h>
#include <torch/csrc/autograd/autograd.h>
#include <torch/types.h>
#include <torch/utils.h>

#include <cmath>
#include <functional>
#include <limits>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "reglab/kernels/ops.h"

namespace reglab::kernels::testing {

constexpr double kInf = std::numeric_limits<double>::infinity();

inline std::string path_name(CpuPath p) { return p == CpuPath::kAvx2 ? "avx2" : "portable"; }

// Every CPU code path this build and machine can run.
inline std::vector<CpuPath> cpu_paths() {
  std::vector<CpuPath> paths{CpuPath::kPortable};
  if (cpu_path_available(CpuPath::kAvx2)) paths.push_back(CpuPath::kAvx2);
  return paths;
}

// Runs a test body on one CPU path and restores the previous one.
class PathGuard {
 public:
  explicit PathGuard(CpuPath p) : saved_(cpu_path()) { set_cpu_path(p); }
  ~PathGuard() { set_cpu_path(saved_); }
  PathGuard(const PathGuard&) = delete;
  PathGuard& operator=(const PathGuard&) = delete;

 private:
  CpuPath saved_;
};

// Fixture parameterised by CPU path; each test runs once per path.
class OnEachCpuPath : public ::testing::TestWithParam<CpuPath> {
 protected:
  void SetUp() override {
    guard_ = std::make_unique<PathGuard>(GetParam());
    torch::manual_seed(0);
  }
  void TearDown() override { guard_.reset(); }

 private:
  std::unique_ptr<PathGuard> guard_;
};

inline std::string param_name(const ::testing::TestParamInfo<CpuPath>& info) { return path_name(info.param); }

// ---- the plain compositions -------------------------------------------------

inline torch::Tensor plain_entropy(const torch::Tensor& z, std::int64_t dim) {
  const torch::Tensor log_p = torch::log_softmax(z, dim);
  return -(log_p.exp() * log_p).sum(dim);
}

inline torch::Tensor plain_soft_target_ce(const torch::Tensor& z, const torch::Tensor& t, std::int64_t dim) {
  return -(t * torch::log_softmax(z, dim)).sum(dim);
}

// Masked entries filled with −inf before the softmax; their log p is replaced
// by 0 before the product so that neither the value nor the gradient meets
// 0·(−inf). Rows with nothing allowed come out NaN here (the fused op defines
// them as 0); callers keep such rows out of comparisons.
inline torch::Tensor plain_attention_entropy(const torch::Tensor& z, const torch::Tensor& mask) {
  const torch::Tensor allowed = mask.expand(z.sizes());
  const torch::Tensor log_p = torch::log_softmax(z.masked_fill(allowed.logical_not(), -kInf), -1);
  const torch::Tensor safe = log_p.masked_fill(allowed.logical_not(), 0.0);
  return -(log_p.exp() * safe).sum(-1);
}

// ---- comparisons ------------------------------------------------------------

// |actual − expected| ≤ atol + rtol·|expected| everywhere, NaN matching NaN and
// ±inf matching itself; reports the worst element.
inline void expect_close(const torch::Tensor& actual, const torch::Tensor& expected, double rtol, double atol,
                         const std::string& what) {
  ASSERT_TRUE(actual.defined()) << what << ": undefined";
  ASSERT_EQ(actual.sizes(), expected.sizes()) << what;
  const torch::Tensor a = actual.to(torch::kDouble).cpu();
  const torch::Tensor e = expected.to(torch::kDouble).cpu();
  const torch::Tensor ok = torch::isclose(a, e, rtol, atol, /*equal_nan=*/true);
  if (ok.all().item<bool>()) return;
  const torch::Tensor bad = ok.logical_not().nonzero();
  const torch::Tensor first = bad[0];
  std::ostringstream where;
  where << what << ": " << bad.size(0) << " of " << a.numel() << " elements differ; first at (";
  for (std::int64_t i = 0; i < first.numel(); ++i) where << (i ? ", " : "") << first[i].item<std::int64_t>();
  std::vector<torch::indexing::TensorIndex> idx;
  for (std::int64_t i = 0; i < first.numel(); ++i) idx.emplace_back(first[i].item<std::int64_t>());
  where << "): " << a.index(idx).item<double>() << " vs expected " << e.index(idx).item<double>();
  ADD_FAILURE() << where.str();
}

// ---- gradients --------------------------------------------------------------

// Gradients of Σ_i Σ v_i·outputs_i w.r.t. `inputs` (each requiring grad).
inline std::vector<torch::Tensor> autograd_grads(const std::vector<torch::Tensor>& outputs,
                                                 const std::vector<torch::Tensor>& weights,
                                                 const std::vector<torch::Tensor>& inputs) {
  torch::Tensor s = torch::zeros({}, outputs[0].options().dtype(torch::kDouble));
  for (std::size_t i = 0; i < outputs.size(); ++i) s = s + (outputs[i].to(torch::kDouble) * weights[i]).sum();
  return torch::autograd::grad({s}, inputs, {}, /*retain_graph=*/false, /*create_graph=*/false,
                               /*allow_unused=*/true);
}

// Central differences of the scalar f() w.r.t. every element of `x` (float64),
// perturbing x in place.
inline torch::Tensor numeric_grad(const std::function<double()>& f, torch::Tensor x, double eps = 1e-6) {
  torch::NoGradGuard no_grad;
  torch::Tensor g = torch::zeros_like(x);
  torch::Tensor flat = x.view({-1});
  torch::Tensor gflat = g.view({-1});
  for (std::int64_t i = 0; i < flat.numel(); ++i) {
    const double orig = flat[i].item<double>();
    flat[i] = orig + eps;
    const double up = f();
    flat[i] = orig - eps;
    const double down = f();
    flat[i] = orig;
    gflat[i] = (up - down) / (2 * eps);
  }
  return g;
}

}  // namespace reglab::kernels::testing
