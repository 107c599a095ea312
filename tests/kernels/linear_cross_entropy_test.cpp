// linear_cross_entropy against cross_entropy(hidden @ weightᵀ + bias): every
// reduction, ignore_index, chunk sizes that do not divide the token count or
// the vocabulary, the optional entropy and target log-prob outputs and their
// gradients, finite differences in float64, and a hand-worked example.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <string>

#include "kernels/kernel_test_util.h"
#include "reglab/kernels/ops.h"

namespace reglab::kernels::testing {
namespace {

using LinearCrossEntropy = OnEachCpuPath;

struct Plain {
  torch::Tensor loss, entropy, target_logprob;
};

// The composition: full logits, LibTorch's cross_entropy, and the per-token
// entropy and log p(target) (0 for ignored tokens).
Plain plain_lce(const torch::Tensor& hidden, const torch::Tensor& weight, const torch::Tensor& targets,
                const torch::Tensor& bias, std::int64_t ignore_index, Reduction reduction) {
  const std::int64_t d = weight.size(1);
  const torch::Tensor h = hidden.reshape({-1, d});
  const torch::Tensor t = targets.reshape({-1});
  const torch::Tensor logits = bias.defined() ? torch::addmm(bias, h, weight.t()) : h.mm(weight.t());
  const std::int64_t red = reduction == Reduction::kNone  ? at::Reduction::None
                           : reduction == Reduction::kSum ? at::Reduction::Sum
                                                          : at::Reduction::Mean;
  Plain p;
  p.loss = at::cross_entropy_loss(logits, t, {}, red, ignore_index, 0.0);
  if (reduction == Reduction::kNone) p.loss = p.loss.view(targets.sizes());
  const torch::Tensor counted = t != ignore_index;
  const torch::Tensor log_p = torch::log_softmax(logits, 1);
  p.entropy = (-(log_p.exp() * log_p).sum(1)).masked_fill(counted.logical_not(), 0.0).view(targets.sizes());
  p.target_logprob = log_p.gather(1, t.masked_fill(counted.logical_not(), 0).unsqueeze(1))
                         .squeeze(1)
                         .masked_fill(counted.logical_not(), 0.0)
                         .view(targets.sizes());
  return p;
}

std::string name(Reduction r) {
  return r == Reduction::kNone ? "none" : r == Reduction::kSum ? "sum" : "mean";
}

// hidden [1, 0], [0, 1]; weight rows (0, 0), (ln 2, 0), (ln 3, 0); no bias.
// Logits: row 0 = (0, ln 2, ln 3), p = (1, 2, 3)/6; row 1 = (0, 0, 0), p = 1/3.
// Targets (2, 0): losses ln 2 and ln 3, mean ½·ln 6.
// ∂mean/∂z = (p − onehot)/2: row 0 (1/12, 1/6, −1/4), row 1 (−1/3, 1/6, 1/6).
// ∂/∂weight[v] = Σ_n ∂z[n, v]·hidden[n] = (∂z[0, v], ∂z[1, v]).
// ∂/∂hidden[n] = Σ_v ∂z[n, v]·weight[v]: row 0 (ln 2/6 − ln 3/4, 0), row 1 (ln 6/6, 0).
// Entropy: row 0 (1/6)·ln 6 + (1/3)·ln 3 + (1/2)·ln 2, row 1 ln 3.
// log p(target): −ln 2, −ln 3.
TEST_P(LinearCrossEntropy, TwoTokensThreeClassesByHand) {
  const double ln2 = std::log(2.0), ln3 = std::log(3.0), ln6 = std::log(6.0);
  for (bool outputs : {false, true}) {  // the direct and the recomputing gradient
    torch::Tensor hidden = torch::tensor({{1.0, 0.0}, {0.0, 1.0}}, torch::kDouble).requires_grad_();
    torch::Tensor weight = torch::tensor({{0.0, 0.0}, {ln2, 0.0}, {ln3, 0.0}}, torch::kDouble).requires_grad_();
    LinearCrossEntropyOptions o;
    o.return_entropy = outputs;
    o.return_target_logprob = outputs;
    const LinearCrossEntropyResult r = linear_cross_entropy(hidden, weight, torch::tensor({2, 0}), {}, o);
    EXPECT_NEAR(r.loss.item<double>(), ln6 / 2, 1e-14);
    if (outputs) {
      expect_close(r.entropy, torch::tensor({ln6 / 6 + ln3 / 3 + ln2 / 2, ln3}, torch::kDouble), 0, 1e-14, "H");
      expect_close(r.target_logprob, torch::tensor({-ln2, -ln3}, torch::kDouble), 0, 1e-14, "log p");
    } else {
      EXPECT_FALSE(r.entropy.defined());
      EXPECT_FALSE(r.target_logprob.defined());
    }
    r.loss.backward();
    expect_close(weight.grad(),
                 torch::tensor({{1.0 / 12, -1.0 / 3}, {1.0 / 6, 1.0 / 6}, {-0.25, 1.0 / 6}}, torch::kDouble), 0,
                 1e-14, "grad weight");
    expect_close(hidden.grad(), torch::tensor({{ln2 / 6 - ln3 / 4, 0.0}, {ln6 / 6, 0.0}}, torch::kDouble), 0, 1e-14,
                 "grad hidden");
  }
}

struct Chunks {
  std::int64_t tokens, vocab;
};

// Every reduction × bias × chunking × extra outputs, values and gradients.
TEST_P(LinearCrossEntropy, MatchesComposition) {
  const std::int64_t n = 23, d = 6, v = 37;
  for (auto dtype : {torch::kFloat, torch::kDouble}) {
    const torch::Tensor hb = torch::randn({n, d}, dtype);
    const torch::Tensor wb = torch::randn({v, d}, dtype);
    const torch::Tensor bb = torch::randn({v}, dtype);
    torch::Tensor targets = torch::randint(0, v, {n});
    targets.index_put_({torch::tensor({3, 4, 17})}, -100);
    const double rtol = dtype == torch::kDouble ? 1e-10 : 2e-4, atol = dtype == torch::kDouble ? 1e-11 : 2e-5;
    for (Chunks c : {Chunks{0, 0}, Chunks{5, 8}, Chunks{23, 37}, Chunks{4, 36}, Chunks{100, 100}}) {
      for (Reduction red : {Reduction::kMean, Reduction::kSum, Reduction::kNone}) {
        for (bool with_bias : {false, true}) {
          for (bool outputs : {false, true}) {
            const std::string what = std::string(c10::toString(dtype)) + " chunks " + std::to_string(c.tokens) +
                                     "x" + std::to_string(c.vocab) + " " + name(red) +
                                     (with_bias ? " bias" : "") + (outputs ? " +outputs" : "");
            torch::Tensor h1 = hb.clone().requires_grad_(), w1 = wb.clone().requires_grad_();
            torch::Tensor b1 = with_bias ? bb.clone().requires_grad_() : torch::Tensor();
            torch::Tensor h2 = hb.clone().requires_grad_(), w2 = wb.clone().requires_grad_();
            torch::Tensor b2 = with_bias ? bb.clone().requires_grad_() : torch::Tensor();
            LinearCrossEntropyOptions o;
            o.reduction = red;
            o.token_chunk = c.tokens;
            o.vocab_chunk = c.vocab;
            o.return_entropy = outputs;
            o.return_target_logprob = outputs;
            const LinearCrossEntropyResult got = linear_cross_entropy(h1, w1, targets, b1, o);
            const Plain want = plain_lce(h2, w2, targets, b2, -100, red);
            expect_close(got.loss, want.loss, rtol, atol, what + " loss");
            std::vector<torch::Tensor> outs1{got.loss}, outs2{want.loss};
            std::vector<torch::Tensor> weights{torch::randn(want.loss.sizes(), torch::kDouble)};
            if (outputs) {
              expect_close(got.entropy, want.entropy, rtol, atol, what + " entropy");
              expect_close(got.target_logprob, want.target_logprob, rtol, atol, what + " logprob");
              outs1.insert(outs1.end(), {got.entropy, got.target_logprob});
              outs2.insert(outs2.end(), {want.entropy, want.target_logprob});
              weights.push_back(torch::randn({n}, torch::kDouble));
              weights.push_back(torch::randn({n}, torch::kDouble));
            }
            std::vector<torch::Tensor> in1{h1, w1}, in2{h2, w2};
            if (with_bias) {
              in1.push_back(b1);
              in2.push_back(b2);
            }
            const auto g1 = autograd_grads(outs1, weights, in1);
            const auto g2 = autograd_grads(outs2, weights, in2);
            expect_close(g1[0], g2[0], rtol, atol, what + " grad hidden");
            expect_close(g1[1], g2[1], rtol, atol, what + " grad weight");
            if (with_bias) expect_close(g1[2], g2[2], rtol, atol, what + " grad bias");
          }
        }
      }
    }
  }
}

// One token and one vocabulary entry per chunk: every merge of the online
// log-sum-exp is exercised.
TEST_P(LinearCrossEntropy, SingleElementChunks) {
  torch::Tensor h1 = torch::randn({4, 3}, torch::kDouble).requires_grad_();
  torch::Tensor w1 = torch::randn({5, 3}, torch::kDouble).requires_grad_();
  torch::Tensor h2 = h1.detach().clone().requires_grad_(), w2 = w1.detach().clone().requires_grad_();
  const torch::Tensor targets = torch::tensor({4, 0, -100, 2});
  LinearCrossEntropyOptions o;
  o.token_chunk = o.vocab_chunk = 1;
  o.return_entropy = o.return_target_logprob = true;
  const LinearCrossEntropyResult got = linear_cross_entropy(h1, w1, targets, {}, o);
  const Plain want = plain_lce(h2, w2, targets, {}, -100, Reduction::kMean);
  expect_close(got.loss, want.loss, 1e-12, 1e-12, "loss");
  expect_close(got.entropy, want.entropy, 1e-12, 1e-12, "entropy");
  expect_close(got.target_logprob, want.target_logprob, 1e-12, 1e-12, "logprob");
  const torch::Tensor v = torch::randn({4}, torch::kDouble);
  const auto g1 = autograd_grads({got.loss, got.entropy}, {torch::ones({}, torch::kDouble), v}, {h1, w1});
  const auto g2 = autograd_grads({want.loss, want.entropy}, {torch::ones({}, torch::kDouble), v}, {h2, w2});
  expect_close(g1[0], g2[0], 1e-11, 1e-12, "grad hidden");
  expect_close(g1[1], g2[1], 1e-11, 1e-12, "grad weight");
}

TEST_P(LinearCrossEntropy, FiniteDifferencesFloat64) {
  torch::Tensor hidden = torch::randn({5, 3}, torch::kDouble);
  torch::Tensor weight = torch::randn({7, 3}, torch::kDouble);
  torch::Tensor bias = torch::randn({7}, torch::kDouble);
  const torch::Tensor targets = torch::tensor({1, 6, -100, 0, 3});
  LinearCrossEntropyOptions o;
  o.reduction = Reduction::kNone;
  o.return_entropy = o.return_target_logprob = true;
  o.token_chunk = 2;
  o.vocab_chunk = 3;
  const torch::Tensor v1 = torch::randn({5}, torch::kDouble), v2 = torch::randn({5}, torch::kDouble),
                      v3 = torch::randn({5}, torch::kDouble);
  auto f = [&] {
    const LinearCrossEntropyResult r = linear_cross_entropy(hidden, weight, targets, bias, o);
    return ((r.loss * v1).sum() + (r.entropy * v2).sum() + (r.target_logprob * v3).sum()).item<double>();
  };
  torch::Tensor hg = hidden.clone().requires_grad_(), wg = weight.clone().requires_grad_(),
                bg = bias.clone().requires_grad_();
  const LinearCrossEntropyResult r = linear_cross_entropy(hg, wg, targets, bg, o);
  const auto analytic = autograd_grads({r.loss, r.entropy, r.target_logprob}, {v1, v2, v3}, {hg, wg, bg});
  expect_close(analytic[0], numeric_grad(f, hidden), 1e-6, 1e-8, "d/dhidden");
  expect_close(analytic[1], numeric_grad(f, weight), 1e-6, 1e-8, "d/dweight");
  expect_close(analytic[2], numeric_grad(f, bias), 1e-6, 1e-8, "d/dbias");
  // The ignored token's row of hidden gets nothing.
  expect_close(analytic[0][2], torch::zeros({3}, torch::kDouble), 0, 0, "ignored token");
}

TEST_P(LinearCrossEntropy, IgnoreIndex) {
  const torch::Tensor hidden = torch::randn({6, 4}, torch::kDouble);
  const torch::Tensor weight = torch::randn({5, 4}, torch::kDouble);
  // A custom ignore_index inside [0, V): that class is ignored as a target.
  const torch::Tensor targets = torch::tensor({0, 3, 3, 1, 4, 2});
  for (Reduction red : {Reduction::kMean, Reduction::kSum, Reduction::kNone}) {
    LinearCrossEntropyOptions o;
    o.ignore_index = 3;
    o.reduction = red;
    o.return_entropy = true;
    const LinearCrossEntropyResult got = linear_cross_entropy(hidden, weight, targets, {}, o);
    const Plain want = plain_lce(hidden, weight, targets, {}, 3, red);
    expect_close(got.loss, want.loss, 1e-12, 1e-12, "ignore 3, " + name(red));
    expect_close(got.entropy, want.entropy, 1e-12, 1e-12, "entropy, " + name(red));
    EXPECT_EQ(got.entropy[1].item<double>(), 0.0);
  }
  // Every token ignored: mean is 0/0 = NaN (as cross_entropy), sum 0, none 0;
  // no gradient reaches anything.
  torch::Tensor h = hidden.clone().requires_grad_(), w = weight.clone().requires_grad_();
  const torch::Tensor all_ignored = torch::full({6}, -100, torch::kLong);
  LinearCrossEntropyOptions mean;
  EXPECT_TRUE(std::isnan(linear_cross_entropy(h, w, all_ignored, {}, mean).loss.item<double>()));
  LinearCrossEntropyOptions sum;
  sum.reduction = Reduction::kSum;
  const torch::Tensor s = linear_cross_entropy(h, w, all_ignored, {}, sum).loss;
  EXPECT_EQ(s.item<double>(), 0.0);
  s.backward();
  EXPECT_EQ(h.grad().abs().sum().item<double>(), 0.0);
  EXPECT_EQ(w.grad().abs().sum().item<double>(), 0.0);
  LinearCrossEntropyOptions none;
  none.reduction = Reduction::kNone;
  expect_close(linear_cross_entropy(h, w, all_ignored, {}, none).loss, torch::zeros({6}), 0, 0, "none");
}

TEST_P(LinearCrossEntropy, LeadingDimsNonContiguousAndExtremeLogits) {
  // hidden [2, 5, D] (non-contiguous), weight transposed storage, logits ~1e4.
  const torch::Tensor hidden = (torch::randn({5, 2, 8}, torch::kDouble) * 40).transpose(0, 1);
  const torch::Tensor weight = (torch::randn({8, 11}, torch::kDouble) * 40).t();
  ASSERT_FALSE(hidden.is_contiguous());
  ASSERT_FALSE(weight.is_contiguous());
  const torch::Tensor targets = torch::randint(0, 11, {2, 5});
  torch::Tensor h1 = hidden.detach().requires_grad_(), w1 = weight.detach().requires_grad_();
  torch::Tensor h2 = hidden.detach().clone().requires_grad_(), w2 = weight.detach().clone().requires_grad_();
  LinearCrossEntropyOptions o;
  o.reduction = Reduction::kNone;
  o.return_entropy = true;
  o.vocab_chunk = 4;
  const LinearCrossEntropyResult got = linear_cross_entropy(h1, w1, targets, {}, o);
  const Plain want = plain_lce(h2, w2, targets, {}, -100, Reduction::kNone);
  EXPECT_GT(want.loss.abs().max().item<double>(), 100.0);  // the logits are large
  ASSERT_EQ(got.loss.sizes(), torch::IntArrayRef({2, 5}));
  expect_close(got.loss, want.loss, 1e-10, 1e-9, "loss");
  expect_close(got.entropy, want.entropy, 1e-8, 1e-9, "entropy");
  const torch::Tensor v = torch::randn({2, 5}, torch::kDouble);
  const auto g1 = autograd_grads({got.loss}, {v}, {h1, w1});
  const auto g2 = autograd_grads({want.loss}, {v}, {h2, w2});
  expect_close(g1[0], g2[0], 1e-9, 1e-9, "grad hidden");
  expect_close(g1[1], g2[1], 1e-9, 1e-9, "grad weight");
}

// Gradients of the inputs that require them only; evaluation without autograd.
TEST_P(LinearCrossEntropy, PartialGradientsAndNoGrad) {
  const torch::Tensor hidden = torch::randn({9, 4});
  torch::Tensor weight = torch::randn({6, 4}).requires_grad_();
  const torch::Tensor targets = torch::randint(0, 6, {9});
  const torch::Tensor loss = linear_cross_entropy(hidden, weight, targets).loss;
  loss.backward();
  torch::Tensor w2 = weight.detach().clone().requires_grad_();
  plain_lce(hidden, w2, targets, {}, -100, Reduction::kMean).loss.backward();
  expect_close(weight.grad(), w2.grad(), 1e-4, 1e-6, "weight only");
  torch::NoGradGuard no_grad;
  const torch::Tensor eval = linear_cross_entropy(hidden, weight, targets).loss;
  EXPECT_FALSE(eval.requires_grad());
  expect_close(eval, loss.detach(), 0, 0, "no-grad value");
}

// A mean or sum loss without the extra outputs has its gradient formed in the
// forward pass and handed over by the backward pass: a second backward pass
// through it says so; with an extra output the gradient is recomputed and a
// second pass works.
TEST_P(LinearCrossEntropy, SecondBackwardPass) {
  torch::Tensor h = torch::randn({6, 4}, torch::kDouble).requires_grad_();
  torch::Tensor w = torch::randn({5, 4}, torch::kDouble).requires_grad_();
  const torch::Tensor t = torch::tensor({0, 1, 2, 3, 4, 0});
  const torch::Tensor direct = linear_cross_entropy(h, w, t).loss;
  direct.backward({}, /*retain_graph=*/true);
  EXPECT_THROW(direct.backward(), c10::Error);
  LinearCrossEntropyOptions o;
  o.return_target_logprob = true;
  const torch::Tensor recomputed = linear_cross_entropy(h, w, t, {}, o).loss;
  h.mutable_grad().reset();
  recomputed.backward({}, /*retain_graph=*/true);
  const torch::Tensor once = h.grad().clone();
  recomputed.backward();
  expect_close(h.grad(), 2 * once, 1e-12, 1e-12, "two passes accumulate");
}

TEST_P(LinearCrossEntropy, RejectsBadInputs) {
  const torch::Tensor h = torch::randn({3, 4}), w = torch::randn({5, 4});
  EXPECT_THROW(linear_cross_entropy(h, w, torch::tensor({0, 5, 1})), c10::Error);   // target = V
  EXPECT_THROW(linear_cross_entropy(h, w, torch::tensor({0, -1, 1})), c10::Error);  // negative, not ignored
  EXPECT_THROW(linear_cross_entropy(h, torch::randn({5, 3}), torch::tensor({0, 1, 2})), c10::Error);
  EXPECT_THROW(linear_cross_entropy(h, w, torch::tensor({0, 1})), c10::Error);
  EXPECT_THROW(linear_cross_entropy(h, w, torch::tensor({0, 1, 2}), torch::randn({4})), c10::Error);
  EXPECT_THROW(linear_cross_entropy(h.to(torch::kBFloat16), w.to(torch::kBFloat16), torch::tensor({0, 1, 2})),
               c10::Error);
}

INSTANTIATE_TEST_SUITE_P(Paths, LinearCrossEntropy, ::testing::ValuesIn(cpu_paths()), param_name);

}  // namespace
}  // namespace reglab::kernels::testing
