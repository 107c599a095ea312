// bn_adapt — test-time BatchNorm: normalise with the statistics of each test
// batch instead of the source's running statistics; no parameter changes.
//
// As the `norm` baseline of Tent's code (DequanWang/tent @ e9e926a,
// norm.py): every BatchNorm layer in train mode, everything else in eval
// mode, no gradient. A BatchNorm layer in train mode normalises with the
// batch mean and the biased batch variance (eps as configured, 1e-5 by
// default) and moves its running statistics by its momentum; those are not
// used while the model adapts (they would be by an eval-mode copy), and the
// paradigm restores them with the source weights on every reset.
#include <torch/nn/module.h>
#include <torch/nn/modules/batchnorm.h>
#include <torch/types.h>
#include <torch/utils.h>

#include "reglab/method.h"
#include "reglab/plugin.h"
#include "reglab/tta.h"

namespace {

class BnAdapt final : public reglab::Method {
 public:
  void tta_setup(reglab::TtaModel& model, const reglab::TtaContext& /*ctx*/) override {
    model_ = &model;
    model.module.eval();
    for (torch::Tensor& p : model.module.parameters()) p.set_requires_grad(false);
    int layers = 0;
    reglab::tta::for_each_batch_norm(model.module, [&](auto& bn) {
      bn.train();
      ++layers;
    });
    TORCH_CHECK(layers > 0,
                "bn_adapt: the model has no BatchNorm layer to adapt (model.arch = \"cnn\" has them, \"mlp\" "
                "does not)");
  }

  reglab::TtaStepResult tta_step(const torch::Tensor& inputs, const reglab::StepContext& /*step*/) override {
    TORCH_CHECK(model_ != nullptr, "bn_adapt: tta_step before tta_setup");
    torch::NoGradGuard no_grad;
    return {model_->forward(model_->module, inputs), 0};
  }

 private:
  reglab::TtaModel* model_ = nullptr;
};

}  // namespace

REGLAB_PLUGIN(BnAdapt,
              .name = "bn_adapt", .version = "1.0.0",
              .summary = "Test-time BatchNorm: each test batch's own statistics, no parameter update",
              .paper = "Schneider et al. 2020, Improving robustness against common corruptions by covariate "
                       "shift adaptation; Nado et al. 2020, Evaluating prediction-time batch normalization",
              .paradigms = reglab::kTta)
