// attention_entropy: entropy of masked attention distributions, against the
// masked composition, with broadcast masks, fully masked (padding) rows and
// finite differences.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>

#include "kernels/kernel_test_util.h"
#include "reglab/kernels/ops.h"

namespace reglab::kernels::testing {
namespace {

using AttentionEntropy = OnEachCpuPath;

// Row 0: z = (0, ln 2, 5), mask (1, 1, 0): p = (1/3, 2/3, 0),
//   H = (1/3)·ln 3 + (2/3)·ln(3/2); ∂H/∂z = −p(ln p + H), 0 on the masked entry.
// Row 1: fully masked: H = 0, gradient 0.
TEST_P(AttentionEntropy, TwoByThreeByHand) {
  const double ln2 = std::log(2.0), ln3 = std::log(3.0);
  for (auto dtype : {torch::kFloat, torch::kDouble}) {
    torch::Tensor z = torch::tensor({0.0, ln2, 5.0, 1.0, 2.0, 3.0}, dtype).view({2, 3}).requires_grad_();
    const torch::Tensor mask = torch::tensor({true, true, false, false, false, false}).view({2, 3});
    const torch::Tensor h = attention_entropy(z, mask);
    const double h0 = ln3 / 3 + (2.0 / 3) * std::log(1.5);
    const double tol = dtype == torch::kDouble ? 1e-14 : 1e-6;
    EXPECT_EQ(h.scalar_type(), dtype);
    EXPECT_NEAR(h[0].item<double>(), h0, tol);
    EXPECT_EQ(h[1].item<double>(), 0.0);
    h.sum().backward();
    const torch::Tensor expected = torch::tensor(
        {{-(1.0 / 3) * (-ln3 + h0), -(2.0 / 3) * (std::log(2.0 / 3) + h0), 0.0}, {0.0, 0.0, 0.0}}, torch::kDouble);
    expect_close(z.grad(), expected, 0, tol, "grad");
  }
}

TEST_P(AttentionEntropy, BroadcastMasksMatchComposition) {
  // [B, heads, queries, keys] with a key padding mask [B, 1, 1, keys] (read in
  // place), a per-head mask [1, heads, 1, keys] and a full mask.
  const std::int64_t b = 3, heads = 2, q = 4, keys = 9;
  const torch::Tensor zb = torch::randn({b, heads, q, keys}, torch::kDouble) * 2;
  const torch::Tensor lengths = torch::tensor({9, 5, 1});
  const torch::Tensor key_mask = (torch::arange(keys).view({1, keys}) < lengths.view({b, 1})).view({b, 1, 1, keys});
  const torch::Tensor head_mask = torch::rand({1, heads, 1, keys}) > 0.3;
  const torch::Tensor full_mask = torch::rand({b, heads, q, keys}) > 0.4;
  for (const torch::Tensor& mask : {key_mask, head_mask.logical_or(torch::eye(1, keys).to(torch::kBool)), full_mask}) {
    // Rows with nothing allowed are compared separately below.
    const torch::Tensor any = mask.expand(zb.sizes()).any(-1);
    torch::Tensor z1 = zb.clone().requires_grad_(), z2 = zb.clone().requires_grad_();
    const torch::Tensor got = attention_entropy(z1, mask);
    const torch::Tensor want = plain_attention_entropy(z2, mask);
    expect_close(got.masked_select(any), want.masked_select(any), 1e-11, 1e-12, "value");
    EXPECT_TRUE((got.masked_select(any.logical_not()) == 0).all().item<bool>());
    const torch::Tensor v = torch::randn(want.sizes(), torch::kDouble).masked_fill(any.logical_not(), 0.0);
    const auto g1 = autograd_grads({got}, {v}, {z1});
    const auto g2 = autograd_grads({want.masked_fill(any.logical_not(), 0.0)}, {v}, {z2});
    expect_close(g1[0], g2[0].nan_to_num(0.0), 1e-11, 1e-12, "grad");
  }
}

TEST_P(AttentionEntropy, WithoutMaskIsSoftmaxEntropy) {
  const torch::Tensor z = torch::randn({2, 3, 40});
  expect_close(attention_entropy(z), softmax_entropy(z, -1), 0, 0, "no mask");
  // A mask broadcast over keys ([.., 1]) keeps or drops whole rows.
  const torch::Tensor rows = torch::tensor({true, false, true}).view({1, 3, 1});
  const torch::Tensor h = attention_entropy(z, rows);
  expect_close(h.select(1, 0), softmax_entropy(z.select(1, 0), -1), 0, 0, "kept row");
  expect_close(h.select(1, 1), torch::zeros({2}), 0, 0, "dropped row");
}

// Padding rows (fully masked, or every allowed logit −inf) add 0 and pass no
// gradient, so they can be averaged with real rows.
TEST_P(AttentionEntropy, PaddingRowsAreZeroWithZeroGradient) {
  torch::Tensor z = torch::randn({4, 6}, torch::kDouble);
  {
    torch::NoGradGuard g;
    z[2].fill_(-kInf);
  }
  z.requires_grad_();
  const torch::Tensor mask = torch::tensor({1, 1, 1, 1}, torch::kBool).view({4, 1}).clone();
  mask[1] = false;
  const torch::Tensor h = attention_entropy(z, mask);
  EXPECT_EQ(h[1].item<double>(), 0.0);
  EXPECT_EQ(h[2].item<double>(), 0.0);
  EXPECT_GT(h[0].item<double>(), 0.0);
  h.mean().backward();
  EXPECT_TRUE(torch::isfinite(z.grad()).all().item<bool>());
  expect_close(z.grad()[1], torch::zeros({6}), 0, 0, "masked row grad");
  expect_close(z.grad()[2], torch::zeros({6}), 0, 0, "-inf row grad");
}

TEST_P(AttentionEntropy, FiniteDifferencesFloat64) {
  torch::Tensor z = torch::randn({2, 3, 5}, torch::kDouble);
  const torch::Tensor mask = torch::rand({2, 1, 5}) > 0.3;
  mask.select(2, 0).fill_(true);
  const torch::Tensor v = torch::randn({2, 3}, torch::kDouble);
  torch::Tensor zg = z.clone().requires_grad_();
  const auto analytic = autograd_grads({attention_entropy(zg, mask)}, {v}, {zg})[0];
  const torch::Tensor numeric =
      numeric_grad([&] { return (attention_entropy(z, mask) * v).sum().item<double>(); }, z);
  expect_close(analytic, numeric, 1e-6, 1e-8, "finite differences");
}

TEST_P(AttentionEntropy, NonContiguousLogitsAndMask) {
  const torch::Tensor zb = torch::randn({7, 5, 3}).transpose(0, 2);  // [3, 5, 7], non-contiguous
  torch::Tensor mb = torch::rand({7, 3}) > 0.2;
  mb[0] = true;                                    // key 0 always allowed
  const torch::Tensor mask = mb.t().unsqueeze(1);  // [3, 1, 7], key stride 3
  ASSERT_EQ(mask.stride(2), 3);
  expect_close(attention_entropy(zb, mask), plain_attention_entropy(zb, mask), 1e-5, 1e-6, "non-contiguous");
}

TEST_P(AttentionEntropy, ReducedPrecisionAndLargeRows) {
  const torch::Tensor zr = torch::randn({4, 3000}).to(torch::kBFloat16);
  const torch::Tensor mask = torch::rand({4, 3000}) > 0.5;
  const torch::Tensor got = attention_entropy(zr, mask);
  EXPECT_EQ(got.scalar_type(), torch::kBFloat16);
  expect_close(got, plain_attention_entropy(zr.to(torch::kFloat), mask), 1e-2, 1e-3, "bf16");
}

TEST_P(AttentionEntropy, RejectsBadMasks) {
  EXPECT_THROW(attention_entropy(torch::zeros({2, 3}), torch::ones({2, 3})), c10::Error);  // not bool
  EXPECT_THROW(attention_entropy(torch::zeros({2, 3}), torch::ones({4}, torch::kBool)), c10::Error);
}

INSTANTIATE_TEST_SUITE_P(Paths, AttentionEntropy, ::testing::ValuesIn(cpu_paths()), param_name);

}  // namespace
}  // namespace reglab::kernels::testing
