// ldr_kl — Label Distributionally Robust loss with a KL ball (Zhu, Ying,
// Yang 2023), as the official ICML2023_LDR loss.py::LDRLoss_V1 computes it.
//
// With K classes, labels y, margin c and temperature λ, per row:
//   s   = softplus(z) / mean_k softplus(z)_k        (gradient through the mean too)
//   d_k = c·(1 − [k = y]) + s_k − s_y
//   m   = sg(max_k d_k/λ)
//   ℓ   = λ·(log((1/K) Σ_k exp(d_k/λ − m)) + m)
// and the loss is the batch mean of ℓ. Stateless.
#include <torch/types.h>

#include <iterator>
#include <stdexcept>
#include <string>

#include "reglab/method.h"
#include "reglab/plugin.h"

namespace {

// The schema has only inclusive bounds; λ divides d, so the smallest
// accepted value stands in for "> 0".
constexpr double kMinLambda = 1e-6;

constexpr reglab::ParamSpec kParams[] = {
    {.name = "c", .type = reglab::ParamType::kFloat, .default_value = "0.1",
     .min = 0.0, .has_min = true,
     .doc = "margin added to every wrong class (official --margin, 0.1)"},
    {.name = "lambda", .type = reglab::ParamType::kFloat, .default_value = "10.0",
     .min = kMinLambda, .has_min = true,
     .doc = "temperature of the KL ball (official: 10)"},
};

class LdrKl final : public reglab::Method {
 public:
  void setup(const reglab::MethodContext& ctx) override {
    c_ = ctx.params.get_double("c");
    lambda_ = ctx.params.get_double("lambda");
    // The core validates against the schema; these guard direct use.
    if (!(c_ >= 0.0)) throw std::invalid_argument("ldr_kl: c must be >= 0, got " + std::to_string(c_));
    if (!(lambda_ >= kMinLambda))
      throw std::invalid_argument("ldr_kl: lambda must be >= 1e-6, got " + std::to_string(lambda_));
    if (ctx.num_classes < 1)
      throw std::invalid_argument("ldr_kl: needs num_classes >= 1, got " + std::to_string(ctx.num_classes));
    num_classes_ = ctx.num_classes;
  }

  torch::Tensor training_loss(const reglab::Batch& batch, const reglab::Outputs& outputs,
                              const reglab::StepContext& /*step*/) override {
    const torch::Tensor& logits = outputs.at("logits");
    TORCH_CHECK(logits.dim() == 2 && logits.size(1) == num_classes_, "ldr_kl: logits must be [B, K] with K = ",
                num_classes_, " (num_classes), got ", logits.sizes());
    TORCH_CHECK(logits.is_floating_point(), "ldr_kl: logits must be floating, got ", logits.scalar_type());
    TORCH_CHECK(batch.targets.defined() && batch.targets.dim() == 1 && batch.targets.size(0) == logits.size(0) &&
                    batch.targets.scalar_type() == torch::kLong,
                "ldr_kl: targets must be int64 [B] with B = ", logits.size(0), ", got ",
                batch.targets.defined() ? batch.targets.sizes() : torch::IntArrayRef{});

    const torch::Tensor positive = torch::softplus(logits);
    const torch::Tensor s = positive / positive.mean(1, true);
    const torch::Tensor wrong = 1.0 - torch::one_hot(batch.targets, num_classes_).to(s.scalar_type());
    const torch::Tensor d = (c_ * wrong + (s - s.gather(1, batch.targets.unsqueeze(1)))) / lambda_;
    // The shift keeps exp finite when d/λ is large (small λ); detached as in
    // the official code, so it changes no gradient.
    const torch::Tensor shift = std::get<0>(d.max(1, true)).detach();
    return (lambda_ * (torch::log(torch::exp(d - shift).mean(1, true)) + shift)).mean();
  }

 private:
  double c_ = 0.1;
  double lambda_ = 10.0;
  std::int64_t num_classes_ = 0;
};

}  // namespace

REGLAB_PLUGIN(LdrKl,
              .name = "ldr_kl", .version = "1.0.0",
              .summary = "lambda*log mean_k exp((c*[k!=y] + s_k - s_y)/lambda) on mean-normalised softplus logits s",
              .paper = "Zhu, Ying, Yang 2023, Label Distributionally Robust Losses for Multi-class Classification: "
                       "Consistency, Robustness and Adaptivity",
              .paradigms = reglab::kClassify,
              .params = kParams, .num_params = std::size(kParams))
