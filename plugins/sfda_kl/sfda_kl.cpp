// sfda_kl — source-free domain adaptation with an entropy and class-ratio
// prior loss (Bateson et al.), as the official mathilde-b/SFDA @ fdcd141
// (losses.py::EntKLProp with utils.py::norm_soft_size, power 1; the
// optimiser of main_sfda.py) computes it, for classification: the B samples
// of a test batch take the place of the pixels of one image.
//
// With p = softmax(z) [B, K], class weights w, prior π:
//   L_ent = −Σ_ic w_c·p_ic·log(p_ic + 1e-10) / (Σ_ic p_ic + 1e-10)
//   r_c   = Σ_i p_ic / (max_c' p_ic' + 1e-10);  est = r / (Σ_c r_c + 1e-10)
//   L_KL  = Σ_c est_c·log(est_c + 1e-10) − Σ_c est_c·log(π_c + 1e-10)
//   loss  = λ_ent·L_ent + λ_KL·L_KL, no detach anywhere; one Adam step.
// tta_setup: train mode; `adapt = "all"` (the official code's optimiser holds
// net.parameters(); BatchNorm in ordinary train mode) or "bn_affine" (only the
// BatchNorm affine parameters, batch statistics only, as Tent and EATA).
// Returns the z of the forward before the update; num_used = B.
#include <torch/nn/module.h>
#include <torch/nn/modules/batchnorm.h>
#include <torch/optim/adam.h>
#include <torch/types.h>

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
    {.name = "lr", .type = reglab::ParamType::kFloat, .default_value = "0.000001", .min = 0.0, .has_min = true,
     .doc = "Adam learning rate (official --l_rate 1e-6 in every SFDA configuration)"},
    {.name = "weight_decay", .type = reglab::ParamType::kFloat, .default_value = "0.00001", .min = 0.0,
     .has_min = true, .doc = "Adam L2 coefficient (official default 1e-5; 1e-3 for the heart data)"},
    {.name = "lambda_ent", .type = reglab::ParamType::kFloat, .default_value = "1.0", .min = 0.0, .has_min = true,
     .doc = "weight of the class-weighted entropy (official lamb_se 1)"},
    {.name = "lambda_kl", .type = reglab::ParamType::kFloat, .default_value = "1.0", .min = 0.0, .has_min = true,
     .doc = "weight of the class-ratio KL term (official lamb_consprior 1)"},
    {.name = "class_weights", .type = reglab::ParamType::kFloatList, .default_value = "[]", .min = 0.0,
     .has_min = true, .doc = "per-class weights of the entropy, K values ([]: all 1)"},
    {.name = "prior", .type = reglab::ParamType::kFloatList, .default_value = "[]", .min = 0.0, .max = 1.0,
     .has_min = true, .has_max = true, .doc = "class-ratio prior, K values summing to 1 ([]: uniform 1/K)"},
    {.name = "adapt", .type = reglab::ParamType::kString, .default_value = "\"all\"", .choices = "all|bn_affine",
     .doc = "what adapts: all parameters (official) or the BatchNorm affine ones with batch statistics"},
};

constexpr double kEps = 1e-10;

std::vector<double> per_class(const std::vector<double>& given, std::int64_t k, double fill, const char* name) {
  if (given.empty()) return std::vector<double>(static_cast<std::size_t>(k), fill);
  if (static_cast<std::int64_t>(given.size()) != k)
    throw std::invalid_argument(std::string("sfda_kl: ") + name + " has " + std::to_string(given.size()) +
                                " values for " + std::to_string(k) + " classes");
  return given;
}

class SfdaKl final : public reglab::Method {
 public:
  void setup(const reglab::MethodContext& ctx) override {
    num_classes_ = ctx.num_classes;
    if (num_classes_ < 2) throw std::invalid_argument("sfda_kl: needs at least 2 classes");
    lr_ = ctx.params.get_double("lr");
    weight_decay_ = ctx.params.get_double("weight_decay");
    lambda_ent_ = ctx.params.get_double("lambda_ent");
    lambda_kl_ = ctx.params.get_double("lambda_kl");
    adapt_all_ = ctx.params.get_string("adapt") == "all";
    const std::vector<double> w =
        per_class(ctx.params.get_double_list("class_weights"), num_classes_, 1.0, "class_weights");
    const std::vector<double> prior = per_class(ctx.params.get_double_list("prior"), num_classes_,
                                                1.0 / static_cast<double>(num_classes_), "prior");
    double total = 0;
    for (double v : prior) total += v;
    if (std::abs(total - 1.0) > 1e-6)
      throw std::invalid_argument("sfda_kl: prior must sum to 1, sums to " + std::to_string(total));
    const auto opts = torch::TensorOptions().dtype(ctx.dtype).device(ctx.device);
    class_weights_ = torch::tensor(w, torch::kDouble).to(opts);
    log_prior_ = torch::log(torch::tensor(prior, torch::kDouble) + kEps).to(opts);
  }

  void tta_setup(reglab::TtaModel& model, const reglab::TtaContext& /*ctx*/) override {
    model_ = &model;
    model.module.train();
    params_.clear();
    if (adapt_all_) {
      for (auto& p : model.module.parameters()) {
        p.requires_grad_(true);
        params_.push_back(p);
      }
    } else {
      const bool has_bn = reglab::tta::has_batch_norm(model.module);
      reglab::tta::use_batch_statistics(model.module);
      params_ = reglab::tta::adapt_batch_norm_affine(model.module);
      if (!has_bn) throw std::invalid_argument("sfda_kl: adapt = \"bn_affine\" but the model has no BatchNorm layer");
    }
    if (params_.empty()) throw std::invalid_argument("sfda_kl: the model has no parameters to adapt");
    for (auto& p : params_) p.mutable_grad() = torch::Tensor();
    optimizer_ = std::make_unique<torch::optim::Adam>(
        params_, torch::optim::AdamOptions(lr_).betas({0.9, 0.999}).weight_decay(weight_decay_));
  }

  reglab::TtaStepResult tta_step(const torch::Tensor& inputs, const reglab::StepContext& /*step*/) override {
    if (model_ == nullptr) throw std::logic_error("sfda_kl: tta_step before tta_setup");
    torch::AutoGradMode grad(true);
    optimizer_->zero_grad();
    const torch::Tensor logits = model_->forward(model_->module, inputs);
    TORCH_CHECK(logits.dim() == 2 && logits.size(1) == num_classes_,
                "sfda_kl: the model must return [B, K] logits with K = ", num_classes_, ", got ", logits.sizes());
    const torch::Tensor p = torch::softmax(logits, 1);
    const torch::Tensor entropy = -(p * class_weights_ * torch::log(p + kEps)).sum() / (p.sum() + kEps);
    const torch::Tensor ratio = (p / (std::get<0>(p.max(1, true)) + kEps)).sum(0);
    const torch::Tensor est = ratio / (ratio.sum() + kEps);
    const torch::Tensor kl = (est * torch::log(est + kEps)).sum() - (est * log_prior_).sum();
    (lambda_ent_ * entropy + lambda_kl_ * kl).backward();
    optimizer_->step();
    return {logits.detach(), inputs.size(0)};
  }

 private:
  double lr_ = 1e-6, weight_decay_ = 1e-5, lambda_ent_ = 1.0, lambda_kl_ = 1.0;
  bool adapt_all_ = true;
  std::int64_t num_classes_ = 0;
  torch::Tensor class_weights_, log_prior_;
  reglab::TtaModel* model_ = nullptr;
  std::vector<torch::Tensor> params_;
  std::unique_ptr<torch::optim::Adam> optimizer_;
};

}  // namespace

REGLAB_PLUGIN(SfdaKl,
              .name = "sfda_kl", .version = "1.0.0",
              .summary = "Class-weighted entropy plus KL of the batch's class-ratio estimate to a prior",
              .paper = "Bateson et al. 2022, Source-free domain adaptation for image segmentation (MedIA)",
              .paradigms = reglab::kTta,
              .params = kParams, .num_params = std::size(kParams))
