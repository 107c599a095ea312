// The CUDA implementation against the CPU one (itself checked against the
// plain compositions in the other files): every operation, dtype, both row
// layouts (a warp per row up to 1024 entries, a block beyond), masks and the
// edge rows. These need a build against a LibTorch with CUDA and a device
// (tools/gpu-check); elsewhere they are skipped and say why.
#include <gtest/gtest.h>
#include <torch/cuda.h>
#include <torch/torch.h>

#include <string>

#include "kernels/kernel_test_util.h"
#include "reglab/kernels/ops.h"

namespace reglab::kernels::testing {
namespace {

class Cuda : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!built_with_cuda()) GTEST_SKIP() << "reglab_kernels was built against a LibTorch without CUDA";
    if (!torch::cuda::is_available()) GTEST_SKIP() << "no CUDA device";
    torch::manual_seed(0);
  }
  const torch::Device gpu{torch::kCUDA, 0};
};

double rtol_for(torch::ScalarType t) {
  return t == torch::kDouble ? 1e-10 : t == torch::kFloat ? 1e-4 : t == torch::kHalf ? 4e-3 : 2e-2;
}
double atol_for(torch::ScalarType t) {
  return t == torch::kDouble ? 1e-12 : t == torch::kFloat ? 1e-5 : 2e-3;
}

const torch::ScalarType kDtypes[] = {torch::kFloat, torch::kDouble, torch::kHalf, torch::kBFloat16};
const std::int64_t kWidths[] = {0, 1, 5, 31, 32, 33, 1000, 1024, 1025, 5000, 40000};

// f(x) on the device and on the CPU, values and gradients (upstream v).
void compare(const std::function<torch::Tensor(const torch::Tensor&)>& f, const torch::Tensor& x_cpu,
             const std::string& what, torch::ScalarType dtype) {
  torch::Tensor a = x_cpu.detach().clone().requires_grad_();
  torch::Tensor b = x_cpu.detach().to(torch::Device(torch::kCUDA, 0)).requires_grad_();
  const torch::Tensor ya = f(a), yb = f(b);
  ASSERT_TRUE(yb.is_cuda()) << what;
  expect_close(yb.cpu(), ya, rtol_for(dtype), atol_for(dtype), what + " value");
  const torch::Tensor v = torch::randn(ya.sizes(), torch::kDouble);
  const auto ga = autograd_grads({ya}, {v}, {a});
  const auto gb = autograd_grads({yb}, {v.to(yb.device())}, {b});
  expect_close(gb[0].cpu(), ga[0], rtol_for(dtype), atol_for(dtype), what + " grad");
}

TEST_F(Cuda, SoftmaxEntropyMatchesCpu) {
  for (auto dtype : kDtypes) {
    for (std::int64_t k : kWidths) {
      const torch::Tensor x = (torch::randn({37, k}) * 3).to(dtype);
      compare([](const torch::Tensor& z) { return softmax_entropy(z); }, x,
              "softmax_entropy K=" + std::to_string(k) + " " + c10::toString(dtype), dtype);
    }
  }
  // dims other than the last, non-contiguous input
  const torch::Tensor x = torch::randn({6, 70, 9}, torch::kDouble).transpose(0, 2);
  compare([](const torch::Tensor& z) { return softmax_entropy(z, 1); }, x, "dim 1 transposed", torch::kDouble);
}

TEST_F(Cuda, SoftmaxEntropyEdgeRows) {
  for (std::int64_t k : {7, 3000}) {
    torch::Tensor x = torch::randn({5, k}, torch::kDouble);
    x.index_put_({0, torch::indexing::Slice(0, k, 2)}, -kInf);  // −inf entries
    x[1] = -kInf;                                                // no finite logit: NaN
    x[2].mul_(1e4);                                              // extreme logits
    const torch::Tensor a = softmax_entropy(x), b = softmax_entropy(x.to(gpu)).cpu();
    expect_close(b, a, 1e-10, 1e-12, "edge rows K=" + std::to_string(k));
    EXPECT_TRUE(std::isnan(b[1].item<double>()));
    torch::Tensor xa = x.clone().requires_grad_(), xb = x.to(gpu).requires_grad_();
    softmax_entropy(xa).index({torch::tensor({0, 2, 3, 4})}).sum().backward();
    softmax_entropy(xb).index({torch::tensor({0, 2, 3, 4}).to(gpu)}).sum().backward();
    expect_close(xb.grad().cpu(), xa.grad(), 1e-10, 1e-12, "edge rows grad K=" + std::to_string(k));
  }
}

TEST_F(Cuda, SoftTargetCrossEntropyMatchesCpu) {
  for (auto dtype : kDtypes) {
    for (std::int64_t k : kWidths) {
      const torch::Tensor x = torch::randn({19, k}).to(dtype);
      const torch::Tensor t_cpu = torch::softmax(torch::randn({19, k}), 1).to(dtype);
      const torch::Tensor t_gpu = t_cpu.to(gpu);
      compare(
          [&](const torch::Tensor& z) { return soft_target_cross_entropy(z, z.is_cuda() ? t_gpu : t_cpu); }, x,
          "soft_target K=" + std::to_string(k) + " " + c10::toString(dtype), dtype);
    }
  }
  // Gradient for the targets and the t = 0 / −inf convention.
  torch::Tensor z = torch::randn({4, 2000}, torch::kDouble);
  z.index_put_({torch::indexing::Slice(), torch::indexing::Slice(0, 10)}, -kInf);
  torch::Tensor t = torch::softmax(torch::randn({4, 2000}, torch::kDouble), 1);
  t.index_put_({torch::indexing::Slice(), torch::indexing::Slice(0, 10)}, 0.0);
  torch::Tensor ta = t.clone().requires_grad_(), tb = t.to(gpu).requires_grad_();
  const torch::Tensor la = soft_target_cross_entropy(z, ta), lb = soft_target_cross_entropy(z.to(gpu), tb);
  expect_close(lb.cpu(), la, 1e-10, 1e-12, "t = 0 at -inf");
  la.sum().backward();
  lb.sum().backward();
  expect_close(tb.grad().cpu(), ta.grad(), 1e-10, 1e-12, "grad targets");
}

TEST_F(Cuda, AttentionEntropyMatchesCpu) {
  for (auto dtype : kDtypes) {
    for (std::int64_t keys : {9, 1024, 1500}) {
      const torch::Tensor x = torch::randn({3, 2, 4, keys}).to(dtype);
      const torch::Tensor lengths = torch::tensor({keys, keys / 2, 0});  // the last batch is all padding
      const torch::Tensor mask_cpu =
          (torch::arange(keys).view({1, keys}) < lengths.view({3, 1})).view({3, 1, 1, keys});
      const torch::Tensor mask_gpu = mask_cpu.to(gpu);
      compare([&](const torch::Tensor& z) { return attention_entropy(z, z.is_cuda() ? mask_gpu : mask_cpu); }, x,
              "attention keys=" + std::to_string(keys) + " " + c10::toString(dtype), dtype);
    }
  }
}

TEST_F(Cuda, LinearCrossEntropyMatchesCpu) {
  for (auto dtype : {torch::kFloat, torch::kDouble}) {
    for (std::int64_t v : {7, 1000, 3000}) {
      const torch::Tensor hidden = torch::randn({50, 16}, dtype);
      const torch::Tensor weight = torch::randn({v, 16}, dtype);
      const torch::Tensor bias = torch::randn({v}, dtype);
      torch::Tensor targets = torch::randint(0, v, {50}, torch::kLong);
      targets.index_put_({torch::tensor({1, 7})}, -100);
      for (Reduction red : {Reduction::kMean, Reduction::kSum, Reduction::kNone}) {
        for (bool outputs : {false, true}) {
          LinearCrossEntropyOptions o;
          o.reduction = red;
          o.return_entropy = o.return_target_logprob = outputs;
          o.token_chunk = 13;
          o.vocab_chunk = v > 7 ? 600 : 0;
          const std::string what = "V=" + std::to_string(v) + " " + c10::toString(dtype) + " red " +
                                   std::to_string(static_cast<int>(red)) + (outputs ? " +outputs" : "");
          torch::Tensor ha = hidden.clone().requires_grad_(), wa = weight.clone().requires_grad_(),
                        ba = bias.clone().requires_grad_();
          torch::Tensor hb = hidden.to(gpu).requires_grad_(), wb = weight.to(gpu).requires_grad_(),
                        bb = bias.to(gpu).requires_grad_();
          const LinearCrossEntropyResult ra = linear_cross_entropy(ha, wa, targets, ba, o);
          const LinearCrossEntropyResult rb = linear_cross_entropy(hb, wb, targets.to(gpu), bb, o);
          expect_close(rb.loss.cpu(), ra.loss, rtol_for(dtype), atol_for(dtype), what + " loss");
          std::vector<torch::Tensor> oa{ra.loss}, ob{rb.loss};
          std::vector<torch::Tensor> w{torch::randn(ra.loss.sizes(), torch::kDouble)};
          if (outputs) {
            expect_close(rb.entropy.cpu(), ra.entropy, rtol_for(dtype), atol_for(dtype), what + " entropy");
            expect_close(rb.target_logprob.cpu(), ra.target_logprob, rtol_for(dtype), atol_for(dtype),
                         what + " logprob");
            oa.insert(oa.end(), {ra.entropy, ra.target_logprob});
            ob.insert(ob.end(), {rb.entropy, rb.target_logprob});
            w.push_back(torch::randn({50}, torch::kDouble));
            w.push_back(torch::randn({50}, torch::kDouble));
          }
          std::vector<torch::Tensor> wg;
          for (const auto& x : w) wg.push_back(x.to(gpu));
          const auto ga = autograd_grads(oa, w, {ha, wa, ba});
          const auto gb = autograd_grads(ob, wg, {hb, wb, bb});
          for (int i = 0; i < 3; ++i) {
            expect_close(gb[i].cpu(), ga[i], rtol_for(dtype), atol_for(dtype), what + " grad " + std::to_string(i));
          }
        }
      }
    }
  }
}

}  // namespace
}  // namespace reglab::kernels::testing
