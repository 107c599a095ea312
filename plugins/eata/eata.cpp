// eata — Efficient Test-Time Model Adaptation without Forgetting (Niu et al.
// 2022), as the official mr-eggplant/EATA @ f739b36 computes it (eata.py;
// the Fisher estimate in main.py).
//
// tta_setup (model at its source weights): Tent's configuration (train mode,
// only BatchNorm affine parameters require grad, batch statistics only);
// then, on the first `fisher_size` held-out samples in batches of the stream's
// batch size, F = (1/T) Σ_t (∇ CE(f(x_t), argmax f(x_t)))² over the T batches
// (batch-mean CE, the last batch possibly smaller), θ₀ = source parameters.
// tta_step, with p = softmax(z), E_i = H(p_i), E0 = e_margin_ratio · ln K:
//   S1 = {i : E_i < E0};  if m exists: S = {i ∈ S1 : |cos(m, p_i)| < ε}, else S = S1
//   m ← m absent ? mean_{S1} p : 0.9·m + 0.1·mean_S p  (unchanged when the set is empty; no grad)
//   loss = mean_{i∈S} exp(E0 − sg(E_i))·E_i + β·Σ F·(θ − θ₀)²; a step only if S ≠ ∅.
// Returns the z of the forward before the update; num_used = |S|.
#include <torch/nn/functional/distance.h>
#include <torch/nn/functional/loss.h>
#include <torch/nn/module.h>
#include <torch/nn/modules/batchnorm.h>
#include <torch/optim/sgd.h>
#include <torch/types.h>

#include <algorithm>
#include <cmath>
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
    {.name = "e_margin_ratio", .type = reglab::ParamType::kFloat, .default_value = "0.4", .min = 0.0, .max = 1.0,
     .has_min = true, .has_max = true,
     .doc = "entropy margin E0 as a fraction of ln K (official: --e_margin ln(1000)*0.40)"},
    {.name = "d_margin", .type = reglab::ParamType::kFloat, .default_value = "0.05", .min = 0.0, .max = 1.0,
     .has_min = true, .has_max = true,
     .doc = "cosine-similarity threshold epsilon of the redundancy filter (official ImageNet 0.05; CIFAR-10-C 0.4)"},
    {.name = "fisher_alpha", .type = reglab::ParamType::kFloat, .default_value = "2000.0", .min = 0.0,
     .has_min = true, .doc = "weight beta of the Fisher (EWC) term (official ImageNet 2000; CIFAR-10-C 1)"},
    {.name = "fisher_size", .type = reglab::ParamType::kInt, .default_value = "2000", .min = 0.0, .has_min = true,
     .doc = "held-out samples used for the Fisher estimate (0: no EWC term, the official 'eta')"},
    {.name = "lr", .type = reglab::ParamType::kFloat, .default_value = "0.00025", .min = 0.0, .has_min = true,
     .doc = "SGD learning rate (official 0.00025)"},
    {.name = "momentum", .type = reglab::ParamType::kFloat, .default_value = "0.9", .min = 0.0, .max = 1.0,
     .has_min = true, .has_max = true, .doc = "SGD momentum (official 0.9)"},
    {.name = "steps", .type = reglab::ParamType::kInt, .default_value = "1", .min = 1.0, .max = 100.0,
     .has_min = true, .has_max = true, .doc = "forward-and-adapt iterations per test batch"},
    {.name = "episodic", .type = reglab::ParamType::kBool, .default_value = "false",
     .doc = "restore the source affine parameters and a fresh optimizer before every batch"},
};

constexpr double kAverageMomentum = 0.9;

class Eata final : public reglab::Method {
 public:
  void setup(const reglab::MethodContext& ctx) override {
    num_classes_ = ctx.num_classes;
    if (num_classes_ < 2) throw std::invalid_argument("eata: needs at least 2 classes");
    e_margin_ = ctx.params.get_double("e_margin_ratio") * std::log(static_cast<double>(num_classes_));
    d_margin_ = ctx.params.get_double("d_margin");
    fisher_alpha_ = ctx.params.get_double("fisher_alpha");
    fisher_size_ = ctx.params.get_int("fisher_size");
    lr_ = ctx.params.get_double("lr");
    momentum_ = ctx.params.get_double("momentum");
    steps_ = ctx.params.get_int("steps");
    episodic_ = ctx.params.get_bool("episodic");
    log_ = &ctx.log;
  }

  void tta_setup(reglab::TtaModel& model, const reglab::TtaContext& ctx) override {
    model_ = &model;
    model.module.train();
    const bool has_bn = reglab::tta::has_batch_norm(model.module);
    reglab::tta::use_batch_statistics(model.module);
    params_ = reglab::tta::adapt_batch_norm_affine(model.module);
    if (!has_bn) throw std::invalid_argument("eata: the model has no BatchNorm layer to adapt");
    if (params_.empty()) throw std::invalid_argument("eata: the model's BatchNorm layers have no affine parameters");
    source_.clear();
    for (auto& p : params_) {
      p.mutable_grad() = torch::Tensor();
      source_.push_back(p.detach().clone());
    }
    average_ = torch::Tensor();
    estimate_fisher(ctx);
    make_optimizer();
  }

  reglab::TtaStepResult tta_step(const torch::Tensor& inputs, const reglab::StepContext& /*step*/) override {
    if (model_ == nullptr) throw std::logic_error("eata: tta_step before tta_setup");
    if (episodic_) restore_source();
    torch::AutoGradMode grad(true);
    torch::Tensor logits;
    std::int64_t used = 0;
    for (std::int64_t s = 0; s < steps_; ++s) {
      logits = model_->forward(model_->module, inputs);
      TORCH_CHECK(logits.dim() == 2 && logits.size(1) == num_classes_, "eata: the model must return [B, K] logits with K = ",
                  num_classes_, ", got ", logits.sizes());
      const torch::Tensor entropy = reglab::tta::softmax_entropy(logits);
      const torch::Tensor reliable = torch::nonzero(entropy < e_margin_).squeeze(1);
      torch::Tensor kept_entropy = entropy.index_select(0, reliable);
      torch::Tensor kept_probs = torch::softmax(logits.index_select(0, reliable), 1);
      torch::Tensor next_average;
      if (average_.defined()) {
        const torch::Tensor cos =
            torch::nn::functional::cosine_similarity(average_.unsqueeze(0), kept_probs,
                                                     torch::nn::functional::CosineSimilarityFuncOptions().dim(1));
        const torch::Tensor diverse = torch::nonzero(torch::abs(cos) < d_margin_).squeeze(1);
        kept_entropy = kept_entropy.index_select(0, diverse);
        kept_probs = kept_probs.index_select(0, diverse);
      }
      {
        torch::NoGradGuard no_grad;
        if (kept_probs.size(0) == 0) {
          next_average = average_;
        } else if (!average_.defined()) {
          next_average = kept_probs.detach().mean(0);
        } else {
          next_average = kAverageMomentum * average_ + (1.0 - kAverageMomentum) * kept_probs.detach().mean(0);
        }
      }
      used = kept_entropy.size(0);
      if (used > 0) {
        const torch::Tensor weight = torch::reciprocal(torch::exp(kept_entropy.detach() - e_margin_));
        torch::Tensor loss = (kept_entropy * weight).mean(0);
        for (std::size_t i = 0; i < fisher_.size(); ++i)
          loss = loss + fisher_alpha_ * (fisher_[i] * (params_[i] - source_[i]).pow(2)).sum();
        loss.backward();
        optimizer_->step();
      }
      optimizer_->zero_grad();
      average_ = next_average;
    }
    return {logits.detach(), used};
  }

  // What tta_setup estimated and what the stream has taught so far:
  // "fisher.<i>" and "anchor.<i>" (F and θ₀ of the i-th adapted tensor, in
  // module order, weight before bias) and "average" once it exists.
  reglab::StateDict state_dict() const override {
    reglab::StateDict out;
    for (std::size_t i = 0; i < fisher_.size(); ++i) {
      out["fisher." + std::to_string(i)] = fisher_[i];
      out["anchor." + std::to_string(i)] = source_[i];
    }
    if (average_.defined()) out["average"] = average_;
    return out;
  }

 private:
  // main.py's loop: per batch, the squared gradient of the batch-mean CE to
  // the batch's own argmax, summed over batches; the sum is divided by the
  // number of batches at the last one. No optimizer step.
  void estimate_fisher(const reglab::TtaContext& ctx) {
    fisher_.clear();
    if (fisher_size_ == 0) return;
    const torch::Tensor& held = ctx.held_out_inputs;
    const std::int64_t available = held.defined() && held.dim() > 0 ? held.size(0) : 0;
    if (available == 0) throw std::invalid_argument("eata: fisher_size is " + std::to_string(fisher_size_) +
                                                    " but there are no held-out samples (set fisher_size = 0 to run without the Fisher term)");
    const std::int64_t n = std::min(fisher_size_, available);
    if (n < fisher_size_ && log_ != nullptr)
      log_->warn("eata: only " + std::to_string(n) + " held-out samples for a fisher_size of " +
                 std::to_string(fisher_size_));
    const std::int64_t bs = ctx.batch_size > 0 ? ctx.batch_size : n;
    const std::int64_t batches = (n + bs - 1) / bs;
    torch::AutoGradMode grad(true);
    std::vector<torch::Tensor> sum(params_.size());
    for (std::int64_t t = 0; t < batches; ++t) {
      const torch::Tensor x = held.slice(0, t * bs, std::min(n, (t + 1) * bs));
      const torch::Tensor z = model_->forward(model_->module, x);
      const torch::Tensor pseudo = std::get<1>(z.detach().max(1));
      torch::nn::functional::cross_entropy(z, pseudo).backward();
      for (std::size_t i = 0; i < params_.size(); ++i) {
        const torch::Tensor g2 = params_[i].grad().detach().pow(2);
        sum[i] = t == 0 ? g2 : g2 + sum[i];
        params_[i].mutable_grad() = torch::Tensor();
      }
    }
    for (auto& s : sum) fisher_.push_back(s / static_cast<double>(batches));
  }

  void make_optimizer() {
    optimizer_ = std::make_unique<torch::optim::SGD>(params_, torch::optim::SGDOptions(lr_).momentum(momentum_));
  }

  void restore_source() {
    {
      torch::NoGradGuard no_grad;
      for (std::size_t i = 0; i < params_.size(); ++i) params_[i].copy_(source_[i]);
    }
    make_optimizer();
  }

  double e_margin_ = 0.0, d_margin_ = 0.05, fisher_alpha_ = 2000.0, lr_ = 0.00025, momentum_ = 0.9;
  std::int64_t fisher_size_ = 2000, steps_ = 1, num_classes_ = 0;
  bool episodic_ = false;
  reglab::Logger* log_ = nullptr;
  reglab::TtaModel* model_ = nullptr;
  std::vector<torch::Tensor> params_, source_, fisher_;
  torch::Tensor average_;
  std::unique_ptr<torch::optim::SGD> optimizer_;
};

}  // namespace

REGLAB_PLUGIN(Eata,
              .name = "eata", .version = "1.0.0",
              .summary = "Entropy minimisation on reliable, non-redundant samples with a Fisher anti-forgetting term",
              .paper = "Niu et al. 2022, Efficient Test-Time Model Adaptation without Forgetting",
              .paradigms = reglab::kTta,
              .params = kParams, .num_params = std::size(kParams))
