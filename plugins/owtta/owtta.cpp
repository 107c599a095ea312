// owtta — open-set test-time adaptation with the wisdom of crowds (Lee et al.
// 2023). No official code was released; this follows the re-implementation
// gaozhengqing/UniEnt @ af7faa8 `cifar/ostta.py::forward_and_adapt` with its
// defaults (criterion "ent", alpha [0.5], Adam lr 1e-3 from `cifar/main.py`).
// Per test batch x, with a frozen copy f₀ of the source model:
//   p⁰ = softmax(f₀(x)),  c_i = argmax_k p⁰_ik,  v⁰_i = p⁰_i,c_i
//   z = f(x),  p = softmax(z),  v_i = p_i,c_i
//   S = { i : v_i ≥ v⁰_i }
//   loss = mean_{i∈S} H(p_i) − α·H(mean_i p_i)      (the second mean over the whole batch)
//   Adam step on the BatchNorm affine parameters; returns z (before the update)
// An empty S takes no step (the re-implementation would step on a NaN loss).
#include <torch/nn/module.h>
#include <torch/nn/modules/batchnorm.h>
#include <torch/optim/adam.h>
#include <torch/types.h>

#include <cstdint>
#include <iterator>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "reglab/method.h"
#include "reglab/plugin.h"
#include "reglab/tta.h"

namespace {

constexpr reglab::ParamSpec kParams[] = {
    {.name = "lr", .type = reglab::ParamType::kFloat, .default_value = "0.001", .min = 0.0, .has_min = true,
     .doc = "Adam learning rate (betas 0.9, 0.999, no weight decay)"},
    {.name = "alpha", .type = reglab::ParamType::kFloat, .default_value = "0.5", .min = 0.0, .has_min = true,
     .doc = "weight of the batch-diversity term −H(mean p); 0 disables it"},
};

class Owtta final : public reglab::Method {
 public:
  void setup(const reglab::MethodContext& ctx) override {
    lr_ = ctx.params.get_double("lr");
    alpha_ = ctx.params.get_double("alpha");
    num_classes_ = ctx.num_classes;
  }

  void tta_setup(reglab::TtaModel& model, const reglab::TtaContext& /*ctx*/) override {
    model_ = &model;
    torch::nn::Module& m = model.module;
    // BatchNorm back on running buffers so the copy can be made (a reset
    // leaves it on batch statistics).
    reglab::tta::use_running_statistics(m);
    source_ = model.clone();
    for (torch::nn::Module* mod : {&m, source_.get()}) {
      mod->train();
      reglab::tta::use_batch_statistics(*mod);
    }
    for (auto& t : source_->parameters())
      if (t.defined()) t.set_requires_grad(false);
    const std::vector<torch::Tensor> params = reglab::tta::adapt_batch_norm_affine(m);
    if (params.empty())
      throw std::invalid_argument("owtta adapts BatchNorm affine parameters, and the model has no BatchNorm layer "
                                  "with affine parameters");
    optimizer_ = std::make_unique<torch::optim::Adam>(
        params, torch::optim::AdamOptions(lr_).betas({0.9, 0.999}).weight_decay(0.0));
  }

  reglab::TtaStepResult tta_step(const torch::Tensor& x, const reglab::StepContext& /*step*/) override {
    if (model_ == nullptr || !optimizer_) throw std::logic_error("owtta: tta_step before tta_setup");
    torch::AutoGradMode grad_on(true);
    torch::Tensor v0, c;
    {
      torch::NoGradGuard no_grad;
      std::tie(v0, c) = torch::softmax(model_->forward(*source_, x), 1).max(1);
    }
    const torch::Tensor z = model_->forward(model_->module, x);
    if (z.dim() != 2 || z.size(1) != num_classes_)
      throw std::invalid_argument("owtta: the model's logits must be [B, " + std::to_string(num_classes_) + "]");
    const torch::Tensor p = z.softmax(1);
    const torch::Tensor keep = p.detach().gather(1, c.unsqueeze(1)).squeeze(1) >= v0;
    const std::int64_t used = keep.sum().item<std::int64_t>();
    if (used == 0) return {z.detach(), 0};

    torch::Tensor loss = reglab::tta::softmax_entropy(z).masked_select(keep).mean(0);
    if (alpha_ != 0) {
      const torch::Tensor mean_p = p.mean(0);
      loss = loss - alpha_ * (-(mean_p * torch::log(mean_p)).sum());
    }
    optimizer_->zero_grad();
    loss.backward();
    optimizer_->step();
    optimizer_->zero_grad();
    return {z.detach(), used};
  }

 private:
  double lr_ = 1e-3;
  double alpha_ = 0.5;
  std::int64_t num_classes_ = 0;
  reglab::TtaModel* model_ = nullptr;
  std::shared_ptr<torch::nn::Module> source_;
  std::unique_ptr<torch::optim::Adam> optimizer_;
};

}  // namespace

REGLAB_PLUGIN(Owtta,
              .name = "owtta", .version = "1.0.0",
              .summary = "Entropy minimisation on the samples whose source-class confidence does not drop, "
                         "minus a batch-diversity term",
              .paper = "Lee et al. 2023, Towards Open-Set Test-Time Adaptation Utilizing the Wisdom of Crowds "
                       "in Entropy Minimization",
              .paradigms = reglab::kTta,
              .params = kParams, .num_params = std::size(kParams))
