// softmax_entropy against the plain composition −Σ exp(log_softmax)·log_softmax
// (values and autograd gradients), finite differences in float64, values
// worked out by hand, and the edge cases its contract names.
#include <ATen/Parallel.h>
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>

#include "kernels/kernel_test_util.h"
#include "reglab/kernels/ops.h"

namespace reglab::kernels::testing {
namespace {

using SoftmaxEntropy = OnEachCpuPath;

// Row 0: z = (0, 0, 0): p = 1/3 each, H = ln 3, gradient −p(log p + H) = 0.
// Row 1: z = (0, ln 2, ln 3): p = (1, 2, 3)/6,
//   H = (1/6)·ln 6 + (1/3)·ln 3 + (1/2)·ln 2,
//   ∂H/∂z_k = −p_k(ln p_k + H).
TEST_P(SoftmaxEntropy, TwoByThreeByHand) {
  const double ln2 = std::log(2.0), ln3 = std::log(3.0), ln6 = std::log(6.0);
  for (auto dtype : {torch::kFloat, torch::kDouble}) {
    torch::Tensor z = torch::tensor({0.0, 0.0, 0.0, 0.0, ln2, ln3}, dtype).view({2, 3}).requires_grad_();
    const torch::Tensor h = softmax_entropy(z);
    const double h1 = ln6 / 6 + ln3 / 3 + ln2 / 2;
    const double tol = dtype == torch::kDouble ? 1e-14 : 1e-6;
    ASSERT_EQ(h.sizes(), torch::IntArrayRef({2}));
    EXPECT_EQ(h.scalar_type(), dtype);
    EXPECT_NEAR(h[0].item<double>(), ln3, tol);
    EXPECT_NEAR(h[1].item<double>(), h1, tol);
    h.sum().backward();
    const torch::Tensor expected = torch::tensor(
        {0.0, 0.0, 0.0, -(1.0 / 6) * (-ln6 + h1), -(1.0 / 3) * (-ln3 + h1), -(1.0 / 2) * (-ln2 + h1)},
        torch::kDouble);
    expect_close(z.grad().view({-1}), expected, 0, tol, "grad");
  }
}

TEST_P(SoftmaxEntropy, MatchesCompositionWithAutograd) {
  for (auto dtype : {torch::kFloat, torch::kDouble}) {
    for (std::int64_t k : {1, 2, 7, 8, 9, 31, 64, 1000, 4099}) {
      const torch::Tensor base = torch::randn({13, k}, dtype) * 3;
      torch::Tensor z1 = base.clone().requires_grad_(), z2 = base.clone().requires_grad_();
      const torch::Tensor v = torch::randn({13}, torch::kDouble);
      const torch::Tensor got = softmax_entropy(z1), want = plain_entropy(z2, -1);
      const double rtol = dtype == torch::kDouble ? 1e-11 : 1e-4, atol = dtype == torch::kDouble ? 1e-12 : 2e-5;
      const std::string what = "K=" + std::to_string(k) + " " + std::string(c10::toString(dtype));
      expect_close(got, want, rtol, atol, what + " value");
      const auto g1 = autograd_grads({got}, {v}, {z1});
      const auto g2 = autograd_grads({want}, {v}, {z2});
      expect_close(g1[0], g2[0], rtol, atol, what + " grad");
    }
  }
}

TEST_P(SoftmaxEntropy, FiniteDifferencesFloat64) {
  torch::Tensor z = torch::randn({4, 6}, torch::kDouble) * 2;
  const torch::Tensor v = torch::randn({4}, torch::kDouble);
  torch::Tensor zg = z.clone().requires_grad_();
  const auto analytic = autograd_grads({softmax_entropy(zg)}, {v}, {zg})[0];
  const torch::Tensor numeric = numeric_grad(
      [&] { return (softmax_entropy(z) * v).sum().item<double>(); }, z);
  expect_close(analytic, numeric, 1e-6, 1e-8, "finite differences");
}

TEST_P(SoftmaxEntropy, OtherDimsAndNonContiguousInputs) {
  const torch::Tensor base = torch::randn({5, 6, 7}, torch::kDouble);
  for (std::int64_t dim : {0, 1, 2, -1, -2, -3}) {
    for (bool transpose : {false, true}) {
      torch::Tensor src = transpose ? base.transpose(0, 2) : base;  // non-contiguous when transposed
      torch::Tensor z1 = src.detach().requires_grad_(), z2 = src.detach().clone().requires_grad_();
      const torch::Tensor got = softmax_entropy(z1, dim), want = plain_entropy(z2, dim);
      const std::string what = "dim " + std::to_string(dim) + (transpose ? " transposed" : "");
      expect_close(got, want, 1e-11, 1e-12, what);
      const torch::Tensor v = torch::randn(want.sizes(), torch::kDouble);
      expect_close(autograd_grads({got}, {v}, {z1})[0], autograd_grads({want}, {v}, {z2})[0], 1e-11, 1e-12,
                   what + " grad");
    }
  }
  // A strided slice (every other column).
  const torch::Tensor wide = torch::randn({6, 20}, torch::kFloat);
  const torch::Tensor sliced = wide.slice(1, 0, 20, 2);
  ASSERT_FALSE(sliced.is_contiguous());
  expect_close(softmax_entropy(sliced), plain_entropy(sliced, 1), 1e-5, 1e-6, "strided slice");
}

// Logits of ±1e4: the plain composition is stable too; the fused op must be.
TEST_P(SoftmaxEntropy, ExtremeLogits) {
  for (auto dtype : {torch::kFloat, torch::kDouble}) {
    torch::Tensor z1 = (torch::randn({8, 50}, dtype) * 1e4).requires_grad_();
    torch::Tensor z2 = z1.detach().clone().requires_grad_();
    const torch::Tensor got = softmax_entropy(z1), want = plain_entropy(z2, -1);
    EXPECT_TRUE(torch::isfinite(got).all().item<bool>());
    expect_close(got, want, 1e-4, 1e-5, "1e4 scale value");
    got.sum().backward();
    want.sum().backward();
    EXPECT_TRUE(torch::isfinite(z1.grad()).all().item<bool>());
    expect_close(z1.grad(), z2.grad(), 1e-4, 1e-5, "1e4 scale grad");
  }
  // One dominant class: H ≈ 0 and gradient ≈ 0, both finite.
  torch::Tensor z = torch::tensor({{1e4, 0.0, -1e4}}).requires_grad_();
  const torch::Tensor h = softmax_entropy(z);
  EXPECT_NEAR(h.item<double>(), 0.0, 1e-30);
  h.sum().backward();
  EXPECT_TRUE(torch::isfinite(z.grad()).all().item<bool>());
  EXPECT_NEAR(z.grad().abs().max().item<double>(), 0.0, 1e-30);
}

// −inf logits are classes of probability 0: the entropy and gradient are
// those of the remaining classes, and the masked classes get gradient 0
// (the plain composition gives NaN for both).
TEST_P(SoftmaxEntropy, MinusInfinityEntries) {
  for (auto dtype : {torch::kFloat, torch::kDouble}) {
    const torch::Tensor kept = torch::randn({6, 11}, dtype);
    torch::Tensor z = torch::cat({kept.narrow(1, 0, 4), torch::full({6, 1}, -kInf, dtype), kept.narrow(1, 4, 7),
                                  torch::full({6, 2}, -kInf, dtype)},
                                 1)
                          .requires_grad_();
    torch::Tensor ref = kept.clone().requires_grad_();
    const torch::Tensor got = softmax_entropy(z), want = plain_entropy(ref, -1);
    expect_close(got, want, 1e-5, 1e-6, "value");
    got.sum().backward();
    want.sum().backward();
    const torch::Tensor g = z.grad();
    expect_close(g.narrow(1, 4, 1), torch::zeros({6, 1}), 0, 0, "grad at -inf");
    expect_close(g.narrow(1, 12, 2), torch::zeros({6, 2}), 0, 0, "grad at -inf (end)");
    expect_close(torch::cat({g.narrow(1, 0, 4), g.narrow(1, 5, 7)}, 1), ref.grad(), 1e-5, 1e-6, "grad elsewhere");
  }
}

// A row with no finite logit has no distribution: NaN, as in the composition.
TEST_P(SoftmaxEntropy, AllMinusInfinityRowIsNaN) {
  torch::Tensor z = torch::tensor({{0.0, 1.0, 2.0}, {-kInf, -kInf, -kInf}}, torch::kDouble).requires_grad_();
  const torch::Tensor h = softmax_entropy(z);
  EXPECT_TRUE(std::isfinite(h[0].item<double>()));
  EXPECT_TRUE(std::isnan(h[1].item<double>()));
  h.sum().backward();
  EXPECT_TRUE(torch::isfinite(z.grad()[0]).all().item<bool>());
  EXPECT_TRUE(torch::isnan(z.grad()[1]).all().item<bool>());
  // NaN logits propagate.
  const torch::Tensor n = softmax_entropy(torch::tensor({{0.0, std::nan(""), 1.0}}));
  EXPECT_TRUE(std::isnan(n.item<double>()));
}

TEST_P(SoftmaxEntropy, EmptyAndSingleClassRows) {
  // One class: H = 0, gradient 0.
  torch::Tensor one = torch::randn({5, 1}).requires_grad_();
  const torch::Tensor h1 = softmax_entropy(one);
  expect_close(h1, torch::zeros({5}), 0, 0, "K=1 value");
  h1.sum().backward();
  expect_close(one.grad(), torch::zeros({5, 1}), 0, 0, "K=1 grad");
  // Zero classes: an empty sum, H = 0 (the composition agrees).
  torch::Tensor none = torch::zeros({3, 0}).requires_grad_();
  const torch::Tensor h0 = softmax_entropy(none);
  expect_close(h0, torch::zeros({3}), 0, 0, "K=0 value");
  expect_close(h0, plain_entropy(none.detach(), 1), 0, 0, "K=0 composition");
  h0.sum().backward();
  EXPECT_EQ(none.grad().sizes(), torch::IntArrayRef({3, 0}));
  // Empty batch.
  torch::Tensor batch = torch::zeros({0, 4}).requires_grad_();
  const torch::Tensor hb = softmax_entropy(batch);
  EXPECT_EQ(hb.sizes(), torch::IntArrayRef({0}));
  hb.sum().backward();
  EXPECT_EQ(batch.grad().sizes(), torch::IntArrayRef({0, 4}));
  // A 1-D tensor is one row.
  EXPECT_EQ(softmax_entropy(torch::zeros({4})).dim(), 0);
  EXPECT_NEAR(softmax_entropy(torch::zeros({4})).item<double>(), std::log(4.0), 1e-6);
}

TEST_P(SoftmaxEntropy, ReducedPrecisionInputs) {
  for (auto dtype : {torch::kHalf, torch::kBFloat16}) {
    const torch::Tensor zr = (torch::randn({9, 300}) * 2).to(dtype);
    torch::Tensor z = zr.clone().requires_grad_();
    torch::Tensor ref = zr.to(torch::kFloat).requires_grad_();
    const torch::Tensor got = softmax_entropy(z), want = plain_entropy(ref, -1);
    EXPECT_EQ(got.scalar_type(), dtype);
    const double rtol = dtype == torch::kHalf ? 2e-3 : 1e-2;
    expect_close(got, want, rtol, 1e-3, std::string(c10::toString(dtype)) + " value");
    got.sum().backward();
    want.sum().backward();
    EXPECT_EQ(z.grad().scalar_type(), dtype);
    expect_close(z.grad(), ref.grad(), rtol, 1e-4, std::string(c10::toString(dtype)) + " grad");
  }
}

TEST_P(SoftmaxEntropy, RejectsBadInputs) {
  EXPECT_THROW(softmax_entropy(torch::zeros({2, 3}, torch::kLong)), c10::Error);
  EXPECT_THROW(softmax_entropy(torch::zeros({})), c10::Error);
  EXPECT_THROW(softmax_entropy(torch::zeros({2, 3}), 2), c10::Error);
  EXPECT_THROW(softmax_entropy(torch::Tensor()), c10::Error);
}

// Rows split over two threads (the test runner pins one otherwise).
TEST_P(SoftmaxEntropy, ManyRowsInParallel) {
  const int threads = at::get_num_threads();
  at::set_num_threads(2);
  torch::Tensor z = torch::randn({2000, 257}).requires_grad_();
  torch::Tensor ref = z.detach().clone().requires_grad_();
  const torch::Tensor got = softmax_entropy(z), want = plain_entropy(ref, 1);
  got.sum().backward();
  want.sum().backward();
  at::set_num_threads(threads);
  expect_close(got, want, 1e-4, 2e-5, "2000 rows");
  expect_close(z.grad(), ref.grad(), 1e-4, 2e-6, "2000 rows grad");
}

INSTANTIATE_TEST_SUITE_P(Paths, SoftmaxEntropy, ::testing::ValuesIn(cpu_paths()), param_name);

// The same operation reached through the dispatcher (what Python's
// torch.ops.reglab_kernels.softmax_entropy calls).
TEST(KernelRegistration, DispatcherReachesTheOperations) {
  const auto op = c10::Dispatcher::singleton()
                      .findSchemaOrThrow("reglab_kernels::softmax_entropy", "")
                      .typed<at::Tensor(const at::Tensor&, std::int64_t)>();
  const torch::Tensor z = torch::randn({3, 4});
  expect_close(op.call(z, -1), softmax_entropy(z), 0, 0, "dispatcher");
  for (const char* name : {"reglab_kernels::soft_target_cross_entropy", "reglab_kernels::attention_entropy",
                           "reglab_kernels::linear_cross_entropy", "reglab_kernels::entropy_forward",
                           "reglab_kernels::lce_chunk_backward"}) {
    EXPECT_TRUE(c10::Dispatcher::singleton().findSchema({name, ""}).has_value()) << name;
  }
}

TEST(KernelRegistration, CpuPathSelection) {
  EXPECT_TRUE(cpu_path_available(CpuPath::kPortable));
  const CpuPath before = cpu_path();
  set_cpu_path(CpuPath::kPortable);
  EXPECT_EQ(cpu_path(), CpuPath::kPortable);
  set_cpu_path(before);
  if (!cpu_path_available(CpuPath::kAvx2)) {
    EXPECT_THROW(set_cpu_path(CpuPath::kAvx2), c10::Error);
  }
}

}  // namespace
}  // namespace reglab::kernels::testing
