// weight_compander — Weight Compander (Cakaj, Mehnert, Yang 2023), from the
// paper (there is no official code).
//
// Every Linear and convolution weight W of the model is re-parameterised as
//     W = a·atan(V / b),   a, b > 0,
// and V is trained in its place (biases, normalisation layers and every other
// parameter stay as they are). V starts at b·tan(W₀ / a), so the initial
// model computes what the untransformed one does; this needs |W₀| < a·π/2,
// and a layer that breaks it is refused by name. Weight decay applies to W:
// V, a and b get none from the optimizer, and the gradient reaching W gets
// weight_decay·W added, i.e. the gradient of (weight_decay/2)·‖W‖² flows to
// V (and to a, b when learned) by the chain rule. The loss is cross-entropy.
//
// With `learnable`, each layer has its own scalars a and b, trained from the
// given values and clamped to >= 1e-6 after every optimizer step.
//
// V (and a, b) are registered on their modules as `weight_v` (`weight_a`,
// `weight_b`) in place of `weight`, so they are moved, checkpointed and
// restored with the model; before every forward pass the modules' `weight`
// is recomputed from them.
#include <torch/nn/functional/loss.h>
#include <torch/nn/module.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/linear.h>
#include <torch/types.h>

#include <cmath>
#include <iterator>
#include <limits>
#include <memory>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

#include "reglab/method.h"
#include "reglab/plugin.h"

namespace {

// The smallest a or b: the schema's lower bound and the clamp of learned values.
constexpr double kMinScale = 1e-6;
constexpr double kHalfPi = 1.57079632679489661923;

constexpr reglab::ParamSpec kParams[] = {
    {.name = "a", .type = reglab::ParamType::kFloat, .default_value = "1.0", .min = kMinScale, .has_min = true,
     .doc = "output scale: |W| < a*pi/2 (paper: 1.0 ResNet18, 0.7 VGG16; learnable start 0.5)"},
    {.name = "b", .type = reglab::ParamType::kFloat, .default_value = "0.6", .min = kMinScale, .has_min = true,
     .doc = "input scale of V (paper: 0.6 ResNet18, 0.7 VGG16; learnable start 1.0)"},
    {.name = "learnable", .type = reglab::ParamType::kBool, .default_value = "false",
     .doc = "train one (a, b) per layer, starting from a and b, clamped to >= 1e-6"},
};

// LibTorch 1.13 has no Module::unregister_parameter. Going through a derived
// class reaches the protected table, so the replaced weight stops being a
// parameter (not trained, not saved), as torch.nn.utils.parametrize does.
struct ParameterTable : torch::nn::Module {
  static torch::OrderedDict<std::string, torch::Tensor>& of(torch::nn::Module& m) {
    return m.*(&ParameterTable::parameters_);
  }
};

// The tensor a module's forward reads as its weight, for the layers the
// method re-parameterises; null for any other module.
torch::Tensor* forward_weight(torch::nn::Module& m) {
  if (auto* p = m.as<torch::nn::LinearImpl>()) return &p->weight;
  if (auto* p = m.as<torch::nn::Conv1dImpl>()) return &p->weight;
  if (auto* p = m.as<torch::nn::Conv2dImpl>()) return &p->weight;
  if (auto* p = m.as<torch::nn::Conv3dImpl>()) return &p->weight;
  if (auto* p = m.as<torch::nn::ConvTranspose1dImpl>()) return &p->weight;
  if (auto* p = m.as<torch::nn::ConvTranspose2dImpl>()) return &p->weight;
  if (auto* p = m.as<torch::nn::ConvTranspose3dImpl>()) return &p->weight;
  return nullptr;
}

class WeightCompander final : public reglab::Method {
 public:
  void setup(const reglab::MethodContext& ctx) override {
    a_ = ctx.params.get_double("a");
    b_ = ctx.params.get_double("b");
    learnable_ = ctx.params.get_bool("learnable");
    // The core validates against the schema; these guard direct use.
    if (!(a_ >= kMinScale) || !(b_ >= kMinScale) || !std::isfinite(a_) || !std::isfinite(b_))
      throw std::invalid_argument("weight_compander: a and b must be finite and >= 1e-6, got a = " +
                                  std::to_string(a_) + ", b = " + std::to_string(b_));
    log_ = &ctx.log;
  }

  std::vector<reglab::ParamGroup> transform_model(torch::nn::Module& model, const reglab::ModelContext& ctx) override {
    layers_.clear();
    weight_decay_ = ctx.weight_decay;

    // Find and check every layer before changing any, so a refused model is
    // left as it was.
    struct Found {
      std::string name;
      std::shared_ptr<torch::nn::Module> module;
      torch::Tensor* weight;
    };
    std::vector<Found> found;
    std::set<const torch::nn::Module*> seen;
    for (const auto& item : model.named_modules("", /*include_self=*/true)) {
      const std::shared_ptr<torch::nn::Module>& module = item.value();
      torch::Tensor* weight = forward_weight(*module);
      if (weight == nullptr || !seen.insert(module.get()).second) continue;
      const std::string layer = describe(item.key(), *module);
      if (ParameterTable::of(*module).find("weight") == nullptr)
        throw std::invalid_argument("weight_compander: " + layer + " has no parameter 'weight' (already transformed?)");
      check_range(*weight, layer);
      found.push_back({item.key(), module, weight});
    }
    if (found.empty()) {
      log_->warn("weight_compander: the model has no linear or convolution layer; it is trained unchanged");
      return {};
    }
    if (ctx.optimizer == "adamw" && weight_decay_ > 0)
      log_->warn("weight_compander: the decay on W is added to its gradient (L2, coupled), "
                 "not applied decoupled as adamw does for the other parameters");

    std::vector<torch::Tensor> vs, scales;
    std::set<const void*> replaced;
    for (Found& f : found) {
      torch::NoGradGuard no_grad;
      const torch::Tensor w0 = *f.weight;
      // tan in float64: the round trip W₀ → V → W then differs from W₀ by
      // float32 rounding only.
      const torch::Tensor v0 = (b_ * torch::tan(w0.to(torch::kDouble) / a_)).to(w0.scalar_type());
      ParameterTable::of(*f.module).erase("weight");
      Layer layer{f.name, f.module, f.weight, f.module->register_parameter("weight_v", v0), {}, {}};
      vs.push_back(layer.v);
      replaced.insert(layer.v.unsafeGetTensorImpl());
      if (learnable_) {
        layer.a = f.module->register_parameter("weight_a", torch::full({}, a_, w0.options()));
        layer.b = f.module->register_parameter("weight_b", torch::full({}, b_, w0.options()));
        for (const torch::Tensor& t : {layer.a, layer.b}) {
          scales.push_back(t);
          replaced.insert(t.unsafeGetTensorImpl());
        }
      }
      layers_.push_back(std::move(layer));
    }
    {
      // The modules read W even before the first before_forward.
      torch::NoGradGuard no_grad;
      refresh();
    }

    std::vector<torch::Tensor> others;
    for (const torch::Tensor& p : model.parameters())
      if (replaced.count(p.unsafeGetTensorImpl()) == 0) others.push_back(p);
    std::vector<reglab::ParamGroup> groups;
    if (!others.empty()) groups.push_back({others, weight_decay_});
    groups.push_back({vs, 0.0});
    if (!scales.empty()) groups.push_back({scales, 0.0});
    return groups;
  }

  void before_forward(bool /*training*/) override { refresh(); }

  torch::Tensor training_loss(const reglab::Batch& batch, const reglab::Outputs& outputs,
                              const reglab::StepContext& /*step*/) override {
    const torch::Tensor& logits = outputs.at("logits");
    TORCH_CHECK(logits.dim() == 2, "weight_compander: logits must be [B, K], got ", logits.sizes());
    TORCH_CHECK(batch.targets.dim() == 1 && batch.targets.size(0) == logits.size(0),
                "weight_compander: targets must be [B] with B = ", logits.size(0), ", got ", batch.targets.sizes());
    // As the ce method: every label outside [0, K) is an error, none ignored.
    return torch::nn::functional::cross_entropy(logits, batch.targets, ce_options_);
  }

  void after_optimizer_step(const reglab::Batch& /*batch*/, const reglab::Outputs& /*outputs*/,
                            const reglab::StepContext& /*step*/) override {
    if (!learnable_) return;
    torch::NoGradGuard no_grad;
    for (Layer& layer : layers_) {
      layer.a.clamp_min_(kMinScale);
      layer.b.clamp_min_(kMinScale);
    }
  }

 private:
  struct Layer {
    std::string name;
    std::shared_ptr<torch::nn::Module> module;  // keeps `weight` valid
    torch::Tensor* weight;                      // what the module's forward reads
    torch::Tensor v, a, b;                      // a, b defined when learnable
  };

  // "layer '3' (Linear)": the module's class without namespace and "Impl".
  static std::string describe(const std::string& name, const torch::nn::Module& module) {
    std::string kind = module.name();
    if (const auto colon = kind.rfind("::"); colon != std::string::npos) kind = kind.substr(colon + 2);
    if (kind.size() > 4 && kind.compare(kind.size() - 4, 4, "Impl") == 0) kind.resize(kind.size() - 4);
    return (name.empty() ? std::string("the model") : "layer '" + name + "'") + " (" + kind + ")";
  }

  void check_range(const torch::Tensor& w, const std::string& layer) const {
    if (w.numel() == 0) return;
    const double max_abs = w.detach().abs().max().item<double>();
    if (!std::isfinite(max_abs))
      throw std::invalid_argument("weight_compander: " + layer + " has a non-finite initial weight");
    if (!(max_abs < a_ * kHalfPi))
      throw std::invalid_argument("weight_compander: " + layer + " has an initial weight of magnitude " +
                                  std::to_string(max_abs) + ", but a*atan(v/b) only reaches |w| < a*pi/2 = " +
                                  std::to_string(a_ * kHalfPi) + " with a = " + std::to_string(a_) +
                                  "; choose a > " + std::to_string(max_abs / kHalfPi));
  }

  // W = a·atan(V / b) for every layer. When W is part of a graph, the decay
  // is added to the gradient arriving at W, before it reaches V, a and b.
  void refresh() {
    for (Layer& layer : layers_) {
      torch::Tensor w = learnable_ ? layer.a * torch::atan(layer.v / layer.b) : a_ * torch::atan(layer.v / b_);
      if (weight_decay_ > 0 && w.requires_grad()) {
        // The detached copy shares W's memory but not its graph, so the hook
        // does not keep the graph alive through W.
        w.register_hook([decay = weight_decay_, value = w.detach()](const torch::Tensor& grad) {
          return grad + decay * value;
        });
      }
      *layer.weight = w;
    }
  }

  double a_ = 1.0;
  double b_ = 0.6;
  bool learnable_ = false;
  double weight_decay_ = 0.0;
  reglab::Logger* log_ = nullptr;
  std::vector<Layer> layers_;
  const torch::nn::functional::CrossEntropyFuncOptions ce_options_ =
      torch::nn::functional::CrossEntropyFuncOptions().ignore_index(std::numeric_limits<std::int64_t>::min());
};

}  // namespace

REGLAB_PLUGIN(WeightCompander,
              .name = "weight_compander", .version = "1.0.0",
              .summary = "Cross-entropy with every linear/conv weight re-parameterised as W = a*atan(V/b)",
              .paper = "Cakaj, Mehnert, Yang 2023, Weight Compander: A Simple Weight Reparameterization for "
                       "Regularization",
              .paradigms = reglab::kClassify,
              .params = kParams, .num_params = std::size(kParams))
