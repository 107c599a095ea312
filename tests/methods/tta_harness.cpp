#include "methods/tta_harness.h"

#include <torch/nn/modules/activation.h>
#include <torch/nn/modules/batchnorm.h>
#include <torch/nn/modules/linear.h>
#include <torch/types.h>
#include <torch/utils.h>

#include <string>

namespace reglab::testing {
namespace {

torch::Tensor matrix(const Rows& rows) { return make_logits(rows, torch::kFloat); }

torch::Tensor vec(const std::vector<double>& v) { return torch::tensor(v, torch::kDouble).to(torch::kFloat); }

}  // namespace

torch::nn::Sequential make_tiny_bn_model(const Rows& w1, const std::vector<double>& b1,
                                         const std::vector<double>& gamma, const std::vector<double>& beta,
                                         const Rows& w2, const std::vector<double>& b2) {
  const auto h = static_cast<std::int64_t>(w1.size());
  const auto d = static_cast<std::int64_t>(w1.at(0).size());
  const auto k = static_cast<std::int64_t>(w2.size());
  torch::nn::Linear fc1(d, h);
  torch::nn::BatchNorm1d bn(torch::nn::BatchNorm1dOptions(h).eps(1e-5).momentum(0.1));
  torch::nn::Linear fc2(h, k);
  {
    torch::NoGradGuard no_grad;
    fc1->weight.copy_(matrix(w1));
    fc1->bias.copy_(vec(b1));
    bn->weight.copy_(vec(gamma));
    bn->bias.copy_(vec(beta));
    fc2->weight.copy_(matrix(w2));
    fc2->bias.copy_(vec(b2));
  }
  return torch::nn::Sequential(fc1, bn, torch::nn::ReLU(), fc2);
}

TtaSession::TtaSession(const std::string& method, const std::string& params_json, torch::nn::Sequential model,
                       std::int64_t num_classes, torch::Tensor held_out_inputs, std::int64_t batch_size,
                       std::uint64_t seed)
    : log_(std::make_unique<NullLogger>()), metrics_(std::make_unique<NullSink>()), model_(std::move(model)) {
  const plugins::LoadedPlugin& plugin = build_plugin(method);
  params_ = plugins::resolve_params(*plugin.info, params_json);
  handle_ = std::make_unique<plugins::MethodHandle>(plugin);
  const MethodContext ctx{params_, *log_, *metrics_, kTta, 0, num_classes, 1, torch::kCPU, torch::kFloat};
  handle_->setup(ctx);

  source_ = std::make_unique<paradigms::SourceWeights>(*model_);
  tta_model_ = std::make_unique<TtaModel>(paradigms::sequential_tta_model(model_));
  if (!held_out_inputs.defined()) held_out_inputs = torch::empty({0}, torch::kFloat);
  tctx_ = TtaContext{held_out_inputs, batch_size, seed};
  handle_->tta_setup(*tta_model_, tctx_);
}

TtaSession::~TtaSession() = default;

TtaStepResult TtaSession::step(const torch::Tensor& inputs) {
  const StepContext ctx{0, 1, steps_++, *log_, *metrics_};
  return handle_->tta_step(inputs, ctx);
}

void TtaSession::reset() {
  source_->restore(*model_);
  steps_ = 0;
  handle_->tta_setup(*tta_model_, tctx_);
}

}  // namespace reglab::testing
