// Helpers for the golden tests of test-time adaptation methods: a tiny model
// with BatchNorm, and one tta method set up on it the way the tta paradigm
// does (setup, then tta_setup; tta_step per batch; restore the source weights
// in place and tta_setup again on reset).
#pragma once

#include <torch/nn/modules/container/sequential.h>
#include <torch/types.h>

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "methods/method_harness.h"
#include "paradigms/tta_model.h"
#include "plugins/method_handle.h"
#include "reglab/method.h"

namespace reglab::testing {

// Linear(D,H) -> BatchNorm1d(H) -> ReLU -> Linear(H,K) with the given weights
// (rows = out features), float32; BatchNorm with eps 1e-5, momentum 0.1 and
// fresh running statistics (mean 0, variance 1).
torch::nn::Sequential make_tiny_bn_model(const Rows& w1, const std::vector<double>& b1,
                                         const std::vector<double>& gamma, const std::vector<double>& beta,
                                         const Rows& w2, const std::vector<double>& b2);

// One tta method loaded from the build's plugin folder, set up on `model`
// (CPU, float32) as the tta paradigm does: setup(ctx), tta_setup(model, tctx).
class TtaSession {
 public:
  TtaSession(const std::string& method, const std::string& params_json, torch::nn::Sequential model,
             std::int64_t num_classes, torch::Tensor held_out_inputs = {}, std::int64_t batch_size = 4,
             std::uint64_t seed = 0);
  ~TtaSession();
  TtaSession(const TtaSession&) = delete;
  TtaSession& operator=(const TtaSession&) = delete;

  // One tta_step; the StepContext's step counter advances by one per call.
  TtaStepResult step(const torch::Tensor& inputs);
  // Restores the source weights in place (paradigms::SourceWeights) and calls
  // tta_setup again, as the paradigm does between corruptions.
  void reset();
  torch::nn::Sequential& model() { return model_; }
  plugins::MethodHandle& handle() { return *handle_; }

 private:
  Params params_;
  std::unique_ptr<Logger> log_;
  std::unique_ptr<MetricSink> metrics_;
  std::unique_ptr<plugins::MethodHandle> handle_;
  torch::nn::Sequential model_;
  std::unique_ptr<TtaModel> tta_model_;
  TtaContext tctx_;
  std::unique_ptr<paradigms::SourceWeights> source_;
  std::int64_t steps_ = 0;
};

}  // namespace reglab::testing
