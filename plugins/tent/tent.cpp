// tent — Fully Test-Time Adaptation by Entropy Minimization (Wang et al.
// 2021), as the official DequanWang/tent @ e9e926a (tent.py, cifar10c.py)
// computes it.
//
// tta_setup: train mode; requires_grad off everywhere except the BatchNorm
// affine weights and biases; every BatchNorm normalises with the statistics
// of the batch it sees, in train and eval mode alike (running statistics off).
// tta_step, `steps` times: z = f(x); loss = mean_i H(softmax(z_i)); step.
// Returns the z of the last forward, computed before that forward's update.
#include <torch/nn/functional/activation.h>
#include <torch/nn/module.h>
#include <torch/nn/modules/batchnorm.h>
#include <torch/optim/adam.h>
#include <torch/optim/optimizer.h>
#include <torch/optim/sgd.h>
#include <torch/types.h>

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
    {.name = "optimizer", .type = reglab::ParamType::kString, .default_value = "\"adam\"", .choices = "adam|sgd",
     .doc = "adam (official CIFAR-10-C) or sgd"},
    {.name = "lr", .type = reglab::ParamType::kFloat, .default_value = "0.001", .min = 0.0, .has_min = true,
     .doc = "learning rate (official CIFAR-10-C: 1e-3)"},
    {.name = "beta", .type = reglab::ParamType::kFloat, .default_value = "0.9", .min = 0.0, .max = 1.0,
     .has_min = true, .has_max = true, .doc = "adam: beta1 (beta2 is 0.999, as in the official code)"},
    {.name = "momentum", .type = reglab::ParamType::kFloat, .default_value = "0.9", .min = 0.0, .max = 1.0,
     .has_min = true, .has_max = true, .doc = "sgd: momentum"},
    {.name = "dampening", .type = reglab::ParamType::kFloat, .default_value = "0.0", .min = 0.0, .max = 1.0,
     .has_min = true, .has_max = true, .doc = "sgd: dampening (must be 0 with nesterov)"},
    {.name = "nesterov", .type = reglab::ParamType::kBool, .default_value = "true",
     .doc = "sgd: Nesterov momentum (official default true)"},
    {.name = "weight_decay", .type = reglab::ParamType::kFloat, .default_value = "0.0", .min = 0.0,
     .has_min = true, .doc = "L2 coefficient of the optimizer (official 0)"},
    {.name = "steps", .type = reglab::ParamType::kInt, .default_value = "1", .min = 1.0, .max = 100.0,
     .has_min = true, .has_max = true, .doc = "forward-and-adapt iterations per test batch"},
    {.name = "episodic", .type = reglab::ParamType::kBool, .default_value = "false",
     .doc = "restore the source affine parameters and a fresh optimizer before every batch"},
};

class Tent final : public reglab::Method {
 public:
  void setup(const reglab::MethodContext& ctx) override {
    optimizer_name_ = ctx.params.get_string("optimizer");
    lr_ = ctx.params.get_double("lr");
    beta_ = ctx.params.get_double("beta");
    momentum_ = ctx.params.get_double("momentum");
    dampening_ = ctx.params.get_double("dampening");
    nesterov_ = ctx.params.get_bool("nesterov");
    weight_decay_ = ctx.params.get_double("weight_decay");
    steps_ = ctx.params.get_int("steps");
    episodic_ = ctx.params.get_bool("episodic");
    num_classes_ = ctx.num_classes;
    if (optimizer_name_ == "sgd" && nesterov_ && (momentum_ <= 0.0 || dampening_ != 0.0))
      throw std::invalid_argument("tent: sgd with nesterov needs momentum > 0 and dampening 0 (got momentum " +
                                  std::to_string(momentum_) + ", dampening " + std::to_string(dampening_) + ")");
  }

  void tta_setup(reglab::TtaModel& model, const reglab::TtaContext& /*ctx*/) override {
    model_ = &model;
    model.module.train();
    const bool has_bn = reglab::tta::has_batch_norm(model.module);
    reglab::tta::use_batch_statistics(model.module);
    params_ = reglab::tta::adapt_batch_norm_affine(model.module);
    if (!has_bn) throw std::invalid_argument("tent: the model has no BatchNorm layer to adapt");
    if (params_.empty()) throw std::invalid_argument("tent: the model's BatchNorm layers have no affine parameters");
    source_.clear();
    for (auto& p : params_) {
      p.mutable_grad() = torch::Tensor();
      source_.push_back(p.detach().clone());
    }
    make_optimizer();
  }

  reglab::TtaStepResult tta_step(const torch::Tensor& inputs, const reglab::StepContext& /*step*/) override {
    if (model_ == nullptr) throw std::logic_error("tent: tta_step before tta_setup");
    if (episodic_) restore_source();
    torch::AutoGradMode grad(true);
    torch::Tensor logits;
    for (std::int64_t s = 0; s < steps_; ++s) {
      logits = model_->forward(model_->module, inputs);
      TORCH_CHECK(logits.dim() == 2 && logits.size(1) == num_classes_, "tent: the model must return [B, K] logits with K = ",
                  num_classes_, ", got ", logits.sizes());
      const torch::Tensor entropy = reglab::tta::softmax_entropy(logits);
      entropy.mean(0).backward();
      optimizer_->step();
      optimizer_->zero_grad();
    }
    return {logits.detach(), inputs.size(0)};
  }

 private:
  void make_optimizer() {
    if (optimizer_name_ == "adam") {
      optimizer_ = std::make_unique<torch::optim::Adam>(
          params_, torch::optim::AdamOptions(lr_).betas({beta_, 0.999}).weight_decay(weight_decay_));
    } else {
      optimizer_ = std::make_unique<torch::optim::SGD>(params_, torch::optim::SGDOptions(lr_)
                                                                    .momentum(momentum_)
                                                                    .dampening(dampening_)
                                                                    .weight_decay(weight_decay_)
                                                                    .nesterov(nesterov_));
    }
  }

  void restore_source() {
    {
      torch::NoGradGuard no_grad;
      for (std::size_t i = 0; i < params_.size(); ++i) params_[i].copy_(source_[i]);
    }
    make_optimizer();
  }

  std::string optimizer_name_ = "adam";
  double lr_ = 1e-3, beta_ = 0.9, momentum_ = 0.9, dampening_ = 0.0, weight_decay_ = 0.0;
  bool nesterov_ = true, episodic_ = false;
  std::int64_t steps_ = 1;
  std::int64_t num_classes_ = 0;
  reglab::TtaModel* model_ = nullptr;
  std::vector<torch::Tensor> params_;
  std::vector<torch::Tensor> source_;
  std::unique_ptr<torch::optim::Optimizer> optimizer_;
};

}  // namespace

REGLAB_PLUGIN(Tent,
              .name = "tent", .version = "1.0.0",
              .summary = "Test-time entropy minimisation of the BatchNorm affine parameters, batch statistics only",
              .paper = "Wang et al. 2021, Tent: Fully Test-Time Adaptation by Entropy Minimization",
              .paradigms = reglab::kTta,
              .params = kParams, .num_params = std::size(kParams))
