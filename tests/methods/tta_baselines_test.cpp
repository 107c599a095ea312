// source and bn_adapt, the two baselines of the tta paradigm, on a tiny
// Linear(2,2) – BatchNorm1d(2) – Linear(2,2) model set up as the paradigm
// sets it up (setup, tta_setup, tta_step through MethodHandle).
//
// Expected logits were worked out by hand from the BatchNorm equations (see
// plugins/bn_adapt/README.md): the first Linear is the identity, so the
// BatchNorm input is the batch x = (1,2), (3,6), (5,1); channel means 3 and 3,
// biased variances 8/3 and 14/3, eps 1e-5, γ = (2, 0.5), β = (1, −1); the head
// maps (u, v) to (u + v, u − v + 0.5). The source (eval-mode) logits use the
// running statistics mean (0.5, −0.5), variance (4, 0.25) instead. The same
// numbers come out of Debian's python3-torch 1.13 nn.BatchNorm1d in train and
// eval mode on this model in float64.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "method_harness.h"

namespace reglab::testing {
namespace {

torch::nn::Sequential tiny_model(bool with_bn = true) {
  torch::nn::Sequential seq;
  torch::NoGradGuard no_grad;
  auto l1 = torch::nn::Linear(2, 2);
  l1->weight.copy_(torch::eye(2));
  l1->bias.zero_();
  seq->push_back(l1);
  if (with_bn) {
    auto bn = torch::nn::BatchNorm1d(2);
    bn->weight.copy_(torch::tensor({2.0, 0.5}));
    bn->bias.copy_(torch::tensor({1.0, -1.0}));
    bn->running_mean.copy_(torch::tensor({0.5, -0.5}));
    bn->running_var.copy_(torch::tensor({4.0, 0.25}));
    seq->push_back(bn);
  }
  auto l2 = torch::nn::Linear(2, 2);
  l2->weight.copy_(torch::tensor({{1.0, 1.0}, {1.0, -1.0}}));
  l2->bias.copy_(torch::tensor({0.0, 0.5}));
  seq->push_back(l2);
  seq->to(torch::kDouble);
  return seq;
}

struct Session {
  explicit Session(const std::string& name, torch::nn::Sequential m)
      : model(std::move(m)),
        params(plugins::resolve_params(*build_plugin(name).info, "{}")),
        handle(build_plugin(name)),
        tta_model{*model,
                  [](torch::nn::Module& mod, const torch::Tensor& x) {
                    return dynamic_cast<torch::nn::SequentialImpl&>(mod).forward(x);
                  },
                  [this]() { return std::dynamic_pointer_cast<torch::nn::Module>(model->clone()); }} {
    handle.setup(MethodContext{params, log, sink, kTta, 3, 2, 1, torch::Device(torch::kCPU), torch::kDouble});
    model->train();  // the method, not the paradigm, chooses the mode
    handle.tta_setup(tta_model, TtaContext{torch::empty({0, 2}, torch::kDouble), 3, 0});
  }
  TtaStepResult step(const torch::Tensor& x) { return handle.tta_step(x, StepContext{0, 1, steps++, log, sink}); }

  torch::nn::Sequential model;
  NullLogger log;
  NullSink sink;
  Params params;
  plugins::MethodHandle handle;
  TtaModel tta_model;
  std::int64_t steps = 0;
};

const torch::Tensor kBatch = torch::tensor({{1.0, 2.0}, {3.0, 6.0}, {5.0, 1.0}}, torch::kDouble);
const Rows kSourceLogits = {{2.9999493765011214, 0.5000493735012221},
                            {8.999866878905728, -1.4998731288940101},
                            {5.999964375910516, 5.500024374110576}};
const Rows kBatchStatLogits = {{-2.680939926958837, 0.28196962695318195},
                               {0.6943643308680291, 1.8056356691319708},
                               {1.9865755960908082, 5.412394703914847}};

std::vector<torch::Tensor> snapshot(torch::nn::Module& m) {
  std::vector<torch::Tensor> out;
  for (const auto& p : m.parameters()) out.push_back(p.detach().clone());
  return out;
}

TEST(TtaBaselines, SourcePredictsWithRunningStatisticsAndChangesNothing) {
  Session s("source", tiny_model());
  const auto before = snapshot(*s.model);
  const torch::Tensor running_mean = s.model[1]->as<torch::nn::BatchNorm1d>()->running_mean.clone();
  for (int i = 0; i < 2; ++i) {
    const TtaStepResult r = s.step(kBatch);
    expect_rows_near(r.logits, kSourceLogits, 1e-12);
    EXPECT_EQ(r.num_used, 0);
    EXPECT_FALSE(r.logits.requires_grad());
  }
  EXPECT_FALSE(s.model->is_training());
  const auto after = snapshot(*s.model);
  for (std::size_t i = 0; i < before.size(); ++i) EXPECT_TRUE(before[i].equal(after[i])) << "parameter " << i;
  EXPECT_TRUE(running_mean.equal(s.model[1]->as<torch::nn::BatchNorm1d>()->running_mean));
  for (const auto& p : s.model->parameters()) EXPECT_FALSE(p.requires_grad());
}

TEST(TtaBaselines, BnAdaptNormalisesWithTheBatchStatistics) {
  Session s("bn_adapt", tiny_model());
  const auto before = snapshot(*s.model);
  const TtaStepResult r = s.step(kBatch);
  expect_rows_near(r.logits, kBatchStatLogits, 1e-9);
  EXPECT_EQ(r.num_used, 0);
  // Only the BatchNorm layer is in train mode; the parameters never move.
  EXPECT_FALSE(s.model->is_training());
  EXPECT_FALSE(s.model[0]->is_training());
  EXPECT_TRUE(s.model[1]->is_training());
  const auto after = snapshot(*s.model);
  for (std::size_t i = 0; i < before.size(); ++i) EXPECT_TRUE(before[i].equal(after[i])) << "parameter " << i;
  for (const auto& p : s.model->parameters()) EXPECT_FALSE(p.requires_grad());
  // The same batch again: its own statistics again, whatever the running
  // statistics became.
  expect_rows_near(s.step(kBatch).logits, kBatchStatLogits, 1e-9);
  // A different batch is normalised by its own statistics: shifting every
  // input by a constant changes nothing after the BatchNorm.
  expect_rows_near(s.step(kBatch + 10.0).logits, kBatchStatLogits, 1e-9);
}

TEST(TtaBaselines, BnAdaptRejectsAModelWithoutBatchNorm) {
  try {
    Session s("bn_adapt", tiny_model(/*with_bn=*/false));
    FAIL() << "a model without BatchNorm was accepted";
  } catch (const std::exception& e) {
    EXPECT_NE(std::string(e.what()).find("no BatchNorm layer"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("tta_setup"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace reglab::testing
