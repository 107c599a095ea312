// cotta — Continual Test-Time Adaptation (Wang et al. 2022), as the official
// qinenergy/cotta @ c212a20 `cifar/cotta.py::CoTTA.forward_and_adapt`
// computes it (set up by `cifar10c.py::setup_cotta`, `configure_model`,
// `collect_params`). Per test batch x:
//   z_s = student(x)                                   (graph kept)
//   a_i = max_k softmax(anchor(x))_ik                  (anchor: frozen source copy)
//   ẑ   = mean over N augmentations of teacher(aug(x))  if mean_i a_i < AP
//       = teacher(x)                                    otherwise
//   loss = mean_i −Σ_k softmax(ẑ)_ik · log_softmax(z_s)_ik;  Adam step
//   teacher ← α·teacher + (1 − α)·student   (parameters only, after the step)
//   each adapted element of the student, with probability rst: ← its source value
//   returns ẑ
// Student, teacher and anchor run in train mode with BatchNorm on batch
// statistics only.
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

#include "augment.h"
#include "reglab/method.h"
#include "reglab/plugin.h"
#include "reglab/tta.h"

namespace {

constexpr reglab::ParamSpec kParams[] = {
    {.name = "lr", .type = reglab::ParamType::kFloat, .default_value = "0.001", .min = 0.0, .has_min = true,
     .doc = "Adam learning rate (betas 0.9, 0.999, no weight decay; official CIFAR-10-C config)"},
    {.name = "alpha", .type = reglab::ParamType::kFloat, .default_value = "0.999",
     .min = 0.0, .max = 1.0, .has_min = true, .has_max = true,
     .doc = "teacher EMA momentum (official OPTIM.MT)"},
    {.name = "rst", .type = reglab::ParamType::kFloat, .default_value = "0.01",
     .min = 0.0, .max = 1.0, .has_min = true, .has_max = true,
     .doc = "stochastic restore probability per parameter element (official OPTIM.RST)"},
    {.name = "ap", .type = reglab::ParamType::kFloat, .default_value = "0.92",
     .min = 0.0, .max = 1.0, .has_min = true, .has_max = true,
     .doc = "anchor confidence below which the augmentation average is the pseudo-label (0.92 CIFAR-10, 0.72 CIFAR-100)"},
    {.name = "num_aug", .type = reglab::ParamType::kInt, .default_value = "32",
     .min = 1.0, .max = 1024.0, .has_min = true, .has_max = true,
     .doc = "augmented teacher passes per batch"},
    {.name = "aug_rotation", .type = reglab::ParamType::kFloat, .default_value = "15.0",
     .min = 0.0, .max = 180.0, .has_min = true, .has_max = true,
     .doc = "maximum rotation in degrees (images only)"},
    {.name = "aug_translate", .type = reglab::ParamType::kFloat, .default_value = "0.125",
     .min = 0.0, .max = 0.5, .has_min = true, .has_max = true,
     .doc = "maximum translation as a fraction of the side, per axis (images only)"},
    {.name = "aug_scale_min", .type = reglab::ParamType::kFloat, .default_value = "0.9",
     .min = 0.1, .max = 10.0, .has_min = true, .has_max = true, .doc = "smallest zoom factor (images only)"},
    {.name = "aug_scale_max", .type = reglab::ParamType::kFloat, .default_value = "1.1",
     .min = 0.1, .max = 10.0, .has_min = true, .has_max = true, .doc = "largest zoom factor (images only)"},
    {.name = "aug_flip", .type = reglab::ParamType::kFloat, .default_value = "0.5",
     .min = 0.0, .max = 1.0, .has_min = true, .has_max = true,
     .doc = "probability of a horizontal flip (images only; 0 where mirror images change the class)"},
    {.name = "aug_noise_std", .type = reglab::ParamType::kFloat, .default_value = "0.005",
     .min = 0.0, .max = 10.0, .has_min = true, .has_max = true, .doc = "std of the additive Gaussian noise"},
    {.name = "aug_clip", .type = reglab::ParamType::kBool, .default_value = "true",
     .doc = "clip augmented inputs to [0, 1] (false for standardised inputs)"},
};

bool is_weight_or_bias(const std::string& name) { return name == "weight" || name == "bias"; }

class Cotta final : public reglab::Method {
 public:
  void setup(const reglab::MethodContext& ctx) override {
    const reglab::Params& p = ctx.params;
    lr_ = p.get_double("lr");
    alpha_ = p.get_double("alpha");
    rst_ = p.get_double("rst");
    ap_ = p.get_double("ap");
    num_aug_ = p.get_int("num_aug");
    aug_.max_rotation_deg = p.get_double("aug_rotation");
    aug_.max_translate = p.get_double("aug_translate");
    aug_.min_scale = p.get_double("aug_scale_min");
    aug_.max_scale = p.get_double("aug_scale_max");
    aug_.flip_probability = p.get_double("aug_flip");
    aug_.noise_std = p.get_double("aug_noise_std");
    aug_.clip = p.get_bool("aug_clip");
    if (aug_.min_scale > aug_.max_scale)
      throw std::invalid_argument("cotta: aug_scale_min (" + std::to_string(aug_.min_scale) +
                                  ") must not exceed aug_scale_max (" + std::to_string(aug_.max_scale) + ")");
    num_classes_ = ctx.num_classes;
  }

  void tta_setup(reglab::TtaModel& model, const reglab::TtaContext& ctx) override {
    model_ = &model;
    torch::nn::Module& student = model.module;
    // BatchNorm back on running buffers so the copies can be made (a reset
    // leaves it on batch statistics).
    reglab::tta::use_running_statistics(student);
    teacher_ = model.clone();
    anchor_ = model.clone();
    for (torch::nn::Module* m : {&student, teacher_.get(), anchor_.get()}) {
      m->train();
      reglab::tta::use_batch_statistics(*m);
    }
    for (auto& t : teacher_->parameters())
      if (t.defined()) t.set_requires_grad(false);
    for (auto& t : anchor_->parameters())
      if (t.defined()) t.set_requires_grad(false);

    // All parameters require grad; the optimizer and the restore take those
    // named weight or bias, in module order.
    adapted_.clear();
    source_.clear();
    for (auto& t : student.parameters())
      if (t.defined()) t.set_requires_grad(true);
    for (const auto& m : student.modules(/*include_self=*/true))
      for (const auto& item : m->named_parameters(/*recurse=*/false))
        if (is_weight_or_bias(item.key()) && item.value().defined() && item.value().requires_grad()) {
          adapted_.push_back(item.value());
          source_.push_back(item.value().detach().clone());
        }
    if (adapted_.empty()) throw std::invalid_argument("cotta: the model has no weight or bias parameters to adapt");
    optimizer_ = std::make_unique<torch::optim::Adam>(
        adapted_, torch::optim::AdamOptions(lr_).betas({0.9, 0.999}).weight_decay(0.0));
    // Separate streams, so that the restore masks do not depend on how many
    // augmentations were drawn.
    aug_gen_ = reglab::cotta::make_generator(ctx.seed);
    restore_gen_ = reglab::cotta::make_generator(ctx.seed + 1);
  }

  reglab::TtaStepResult tta_step(const torch::Tensor& x, const reglab::StepContext& /*step*/) override {
    if (model_ == nullptr || !optimizer_) throw std::logic_error("cotta: tta_step before tta_setup");
    torch::AutoGradMode grad_on(true);
    const torch::Tensor z = model_->forward(model_->module, x);
    if (z.dim() != 2 || z.size(1) != num_classes_)
      throw std::invalid_argument("cotta: the model's logits must be [B, " + std::to_string(num_classes_) + "]");

    torch::Tensor pseudo;
    {
      torch::NoGradGuard no_grad;
      const torch::Tensor anchor_conf = std::get<0>(torch::softmax(model_->forward(*anchor_, x), 1).max(1));
      const torch::Tensor teacher_x = model_->forward(*teacher_, x);
      // The official code always runs the augmented passes; they only matter
      // when the anchor is unsure, so they run only then.
      if (anchor_conf.mean(0).item<double>() < ap_) {
        std::vector<torch::Tensor> outs;
        outs.reserve(static_cast<std::size_t>(num_aug_));
        for (std::int64_t i = 0; i < num_aug_; ++i)
          outs.push_back(model_->forward(*teacher_, reglab::cotta::augment(x, aug_, aug_gen_)));
        pseudo = torch::stack(outs).mean(0);
      } else {
        pseudo = teacher_x;
      }
    }

    const torch::Tensor loss = (-(pseudo.softmax(1) * z.log_softmax(1)).sum(1)).mean(0);
    optimizer_->zero_grad();
    loss.backward();
    optimizer_->step();
    optimizer_->zero_grad();

    torch::NoGradGuard no_grad;
    const auto teacher_params = teacher_->parameters();
    const auto student_params = model_->module.parameters();
    for (std::size_t i = 0; i < teacher_params.size(); ++i) {
      torch::Tensor t = teacher_params[i];
      if (!t.defined()) continue;
      t.copy_(alpha_ * t + (1.0 - alpha_) * student_params[i]);
    }
    for (std::size_t i = 0; i < adapted_.size(); ++i) {
      torch::Tensor& p = adapted_[i];
      const torch::Tensor mask = (torch::rand(p.sizes(), restore_gen_) < rst_).to(p.options());
      p.copy_(source_[i] * mask + p * (1.0 - mask));
    }
    return {pseudo.detach(), x.size(0)};
  }

 private:
  double lr_ = 1e-3;
  double alpha_ = 0.999;
  double rst_ = 0.01;
  double ap_ = 0.92;
  std::int64_t num_aug_ = 32;
  std::int64_t num_classes_ = 0;
  reglab::cotta::AugmentOptions aug_;
  reglab::TtaModel* model_ = nullptr;
  std::shared_ptr<torch::nn::Module> teacher_;
  std::shared_ptr<torch::nn::Module> anchor_;
  std::vector<torch::Tensor> adapted_;
  std::vector<torch::Tensor> source_;
  std::unique_ptr<torch::optim::Adam> optimizer_;
  at::Generator aug_gen_;
  at::Generator restore_gen_;
};

}  // namespace

REGLAB_PLUGIN(Cotta,
              .name = "cotta", .version = "1.0.0",
              .summary = "Mean-teacher self-training on augmentation-averaged pseudo-labels with stochastic restore",
              .paper = "Wang et al. 2022, Continual Test-Time Domain Adaptation",
              .paradigms = reglab::kTta,
              .params = kParams, .num_params = std::size(kParams))
