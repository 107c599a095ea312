// soft_target_cross_entropy against −Σ t·log_softmax(z): values, gradients
// for logits and targets, finite differences, hand-worked values, edge cases.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>

#include "kernels/kernel_test_util.h"
#include "reglab/kernels/ops.h"

namespace reglab::kernels::testing {
namespace {

using SoftTargetCrossEntropy = OnEachCpuPath;

torch::Tensor random_targets(std::int64_t rows, std::int64_t k, torch::ScalarType dtype) {
  return torch::softmax(torch::randn({rows, k}, torch::kDouble) * 2, 1).to(dtype);
}

// Row 0: z = (0, ln 2, ln 3), p = (1, 2, 3)/6, t = (1/2, 1/2, 0):
//   L = −½·ln(1/6) − ½·ln(1/3) = ½·ln 18; ∂L/∂z = p·Σt − t = (−1/3, −1/6, 1/2);
//   ∂L/∂t = −ln p = (ln 6, ln 3, ln 2).
// Row 1: z = (0, 0, −inf), p = (½, ½, 0), t = (1, 0, 0):
//   L = ln 2 (the t = 0 class at −inf adds 0); ∂L/∂z = (−½, ½, 0).
TEST_P(SoftTargetCrossEntropy, TwoByThreeByHand) {
  const double ln2 = std::log(2.0), ln3 = std::log(3.0), ln6 = std::log(6.0);
  for (auto dtype : {torch::kFloat, torch::kDouble}) {
    torch::Tensor z = torch::tensor({0.0, ln2, ln3, 0.0, 0.0, -kInf}, dtype).view({2, 3}).requires_grad_();
    torch::Tensor t = torch::tensor({0.5, 0.5, 0.0, 1.0, 0.0, 0.0}, dtype).view({2, 3}).requires_grad_();
    const torch::Tensor loss = soft_target_cross_entropy(z, t);
    const double tol = dtype == torch::kDouble ? 1e-14 : 1e-6;
    EXPECT_EQ(loss.scalar_type(), dtype);
    EXPECT_NEAR(loss[0].item<double>(), 0.5 * std::log(18.0), tol);
    EXPECT_NEAR(loss[1].item<double>(), ln2, tol);
    loss.sum().backward();
    expect_close(z.grad(), torch::tensor({{-1.0 / 3, -1.0 / 6, 0.5}, {-0.5, 0.5, 0.0}}, torch::kDouble), 0, tol,
                 "grad logits");
    expect_close(t.grad()[0], torch::tensor({ln6, ln3, ln2}, torch::kDouble), 0, tol, "grad targets");
    EXPECT_EQ(t.grad()[1][2].item<double>(), kInf);  // −log 0
  }
}

TEST_P(SoftTargetCrossEntropy, MatchesCompositionWithAutograd) {
  for (auto dtype : {torch::kFloat, torch::kDouble}) {
    for (std::int64_t k : {1, 3, 8, 17, 100, 2050}) {
      const torch::Tensor zb = torch::randn({11, k}, dtype) * 3;
      const torch::Tensor tb = random_targets(11, k, dtype);
      torch::Tensor z1 = zb.clone().requires_grad_(), z2 = zb.clone().requires_grad_();
      torch::Tensor t1 = tb.clone().requires_grad_(), t2 = tb.clone().requires_grad_();
      const torch::Tensor got = soft_target_cross_entropy(z1, t1), want = plain_soft_target_ce(z2, t2, -1);
      const double rtol = dtype == torch::kDouble ? 1e-11 : 1e-4, atol = dtype == torch::kDouble ? 1e-12 : 2e-5;
      const std::string what = "K=" + std::to_string(k) + " " + std::string(c10::toString(dtype));
      expect_close(got, want, rtol, atol, what + " value");
      const torch::Tensor v = torch::randn({11}, torch::kDouble);
      const auto g1 = autograd_grads({got}, {v}, {z1, t1});
      const auto g2 = autograd_grads({want}, {v}, {z2, t2});
      expect_close(g1[0], g2[0], rtol, atol, what + " grad logits");
      expect_close(g1[1], g2[1], rtol, atol, what + " grad targets");
    }
  }
}

// Targets that are not a distribution are used as given (Σt ≠ 1 scales the
// log-sum-exp term), and detached targets get no gradient.
TEST_P(SoftTargetCrossEntropy, UnnormalisedAndDetachedTargets) {
  const torch::Tensor zb = torch::randn({5, 9}, torch::kDouble);
  const torch::Tensor t = torch::rand({5, 9}, torch::kDouble) * 3;
  torch::Tensor z1 = zb.clone().requires_grad_(), z2 = zb.clone().requires_grad_();
  const torch::Tensor got = soft_target_cross_entropy(z1, t), want = plain_soft_target_ce(z2, t, 1);
  expect_close(got, want, 1e-12, 1e-12, "value");
  got.sum().backward();
  want.sum().backward();
  expect_close(z1.grad(), z2.grad(), 1e-12, 1e-12, "grad");
  EXPECT_FALSE(t.grad().defined());
}

TEST_P(SoftTargetCrossEntropy, FiniteDifferencesFloat64) {
  torch::Tensor z = torch::randn({3, 5}, torch::kDouble) * 2;
  torch::Tensor t = random_targets(3, 5, torch::kDouble);
  const torch::Tensor v = torch::randn({3}, torch::kDouble);
  torch::Tensor zg = z.clone().requires_grad_(), tg = t.clone().requires_grad_();
  const auto analytic = autograd_grads({soft_target_cross_entropy(zg, tg)}, {v}, {zg, tg});
  auto f = [&] { return (soft_target_cross_entropy(z, t) * v).sum().item<double>(); };
  expect_close(analytic[0], numeric_grad(f, z), 1e-6, 1e-8, "d/dlogits");
  expect_close(analytic[1], numeric_grad(f, t), 1e-6, 1e-8, "d/dtargets");
}

TEST_P(SoftTargetCrossEntropy, OtherDimsNonContiguousAndExtremeLogits) {
  const torch::Tensor zb = torch::randn({4, 6, 5}, torch::kDouble) * 1e4;
  const torch::Tensor tb = torch::softmax(torch::randn({4, 6, 5}, torch::kDouble), 1);
  for (std::int64_t dim : {0, 1, -1}) {
    torch::Tensor z1 = zb.transpose(0, 2).detach().requires_grad_();  // non-contiguous
    torch::Tensor z2 = z1.detach().clone().requires_grad_();
    const torch::Tensor t = tb.transpose(0, 2);
    const torch::Tensor got = soft_target_cross_entropy(z1, t, dim), want = plain_soft_target_ce(z2, t, dim);
    EXPECT_TRUE(torch::isfinite(got).all().item<bool>());
    expect_close(got, want, 1e-10, 1e-8, "dim " + std::to_string(dim));
    const torch::Tensor v = torch::randn(want.sizes(), torch::kDouble);
    expect_close(autograd_grads({got}, {v}, {z1})[0], autograd_grads({want}, {v}, {z2})[0], 1e-10, 1e-10,
                 "dim " + std::to_string(dim) + " grad");
  }
}

TEST_P(SoftTargetCrossEntropy, EdgeRows) {
  // t > 0 on a class at −inf: the true value, +inf.
  const torch::Tensor inf_loss =
      soft_target_cross_entropy(torch::tensor({{0.0, -kInf}}), torch::tensor({{0.5, 0.5}}));
  EXPECT_EQ(inf_loss.item<double>(), kInf);
  // One class: L = t·(z − z) = 0.
  expect_close(soft_target_cross_entropy(torch::randn({4, 1}), torch::ones({4, 1})), torch::zeros({4}), 0, 0, "K=1");
  // Zero classes and empty batch.
  expect_close(soft_target_cross_entropy(torch::zeros({2, 0}), torch::zeros({2, 0})), torch::zeros({2}), 0, 0, "K=0");
  torch::Tensor e = torch::zeros({0, 3}).requires_grad_();
  const torch::Tensor le = soft_target_cross_entropy(e, torch::zeros({0, 3}));
  EXPECT_EQ(le.sizes(), torch::IntArrayRef({0}));
  le.sum().backward();
  EXPECT_EQ(e.grad().sizes(), torch::IntArrayRef({0, 3}));
}

TEST_P(SoftTargetCrossEntropy, ReducedPrecisionInputs) {
  for (auto dtype : {torch::kHalf, torch::kBFloat16}) {
    const torch::Tensor zr = torch::randn({7, 130}).to(dtype);
    const torch::Tensor tr = random_targets(7, 130, dtype);
    torch::Tensor z = zr.clone().requires_grad_();
    torch::Tensor ref = zr.to(torch::kFloat).requires_grad_();
    const torch::Tensor got = soft_target_cross_entropy(z, tr);
    const torch::Tensor want = plain_soft_target_ce(ref, tr.to(torch::kFloat), 1);
    const double rtol = dtype == torch::kHalf ? 2e-3 : 1e-2;
    expect_close(got, want, rtol, 1e-3, std::string(c10::toString(dtype)) + " value");
    got.sum().backward();
    want.sum().backward();
    expect_close(z.grad(), ref.grad(), rtol, 1e-4, std::string(c10::toString(dtype)) + " grad");
  }
}

TEST_P(SoftTargetCrossEntropy, RejectsMismatchedTargets) {
  EXPECT_THROW(soft_target_cross_entropy(torch::zeros({2, 3}), torch::zeros({2, 4})), c10::Error);
  EXPECT_THROW(soft_target_cross_entropy(torch::zeros({2, 3}), torch::zeros({2, 3}, torch::kDouble)), c10::Error);
  EXPECT_THROW(soft_target_cross_entropy(torch::zeros({2, 3}), torch::Tensor()), c10::Error);
}

INSTANTIATE_TEST_SUITE_P(Paths, SoftTargetCrossEntropy, ::testing::ValuesIn(cpu_paths()), param_name);

}  // namespace
}  // namespace reglab::kernels::testing
