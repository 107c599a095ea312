// source — the unadapted source model: the baseline of test-time adaptation.
//
// tta_setup puts the model in eval mode (BatchNorm uses the running
// statistics of the source training data) and freezes every parameter;
// tta_step returns the model's logits and never updates anything.
#include <torch/nn/module.h>
#include <torch/types.h>
#include <torch/utils.h>

#include "reglab/method.h"
#include "reglab/plugin.h"

namespace {

class Source final : public reglab::Method {
 public:
  void tta_setup(reglab::TtaModel& model, const reglab::TtaContext& /*ctx*/) override {
    model_ = &model;
    model.module.eval();
    for (torch::Tensor& p : model.module.parameters()) p.set_requires_grad(false);
  }

  reglab::TtaStepResult tta_step(const torch::Tensor& inputs, const reglab::StepContext& /*step*/) override {
    TORCH_CHECK(model_ != nullptr, "source: tta_step before tta_setup");
    torch::NoGradGuard no_grad;
    return {model_->forward(model_->module, inputs), 0};
  }

 private:
  reglab::TtaModel* model_ = nullptr;
};

}  // namespace

REGLAB_PLUGIN(Source,
              .name = "source", .version = "1.0.0",
              .summary = "No adaptation: the source model in eval mode (the test-time baseline)",
              .paper = "-- (the unadapted source model)",
              .paradigms = reglab::kTta)
