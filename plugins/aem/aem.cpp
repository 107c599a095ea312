// aem — Attention Entropy Maximization for attention-based MIL, as the
// official code computes it (dazhangyu123/AEM @ 4a928a8, main.py,
// train_one_epoch).
//
// For a bag with attention logits A [H, N] (H heads, N instances):
//   a_h  = softmax_n(A_h)
//   div  = (1/H) Σ_h Σ_n a_hn log a_hn      (the negative attention entropy;
//                                            H = 1 for single-head ABMIL)
//   loss = CE(z, y) + λ · div
// The official code trains one bag per step. With B bags per step (padded,
// "attention_mask" marking the real instances) CE is the batch mean over the
// bags and so is div: each bag's div is computed over its own instances only.
// ∂(λ·div)/∂A_hn = (λ/H)·a_hn·(log a_hn + H(a_h)), with H(a_h) = −Σ a log a.
// Stateless.
#include <torch/nn/functional/loss.h>
#include <torch/types.h>

#include <iterator>
#include <limits>
#include <stdexcept>
#include <string>

#include "reglab/method.h"
#include "reglab/plugin.h"

namespace {

constexpr reglab::ParamSpec kParams[] = {
    {.name = "lambda", .type = reglab::ParamType::kFloat, .default_value = "0.1",
     .min = 0.0, .has_min = true,
     .doc = "weight of the negative attention entropy (official default 0.1; 0 = ABMIL's cross-entropy)"},
};

class Aem final : public reglab::Method {
 public:
  void setup(const reglab::MethodContext& ctx) override {
    lambda_ = ctx.params.get_double("lambda");
    // The core validates against the schema; this guards direct use.
    if (!(lambda_ >= 0.0)) throw std::invalid_argument("aem: lambda must be >= 0, got " + std::to_string(lambda_));
  }

  torch::Tensor training_loss(const reglab::Batch& batch, const reglab::Outputs& outputs,
                              const reglab::StepContext& /*step*/) override {
    const torch::Tensor& logits = outputs.at("logits");
    const torch::Tensor& attention = outputs.at("attention_logits");
    TORCH_CHECK(logits.dim() == 2, "aem: logits must be [B, K] (one row per bag), got ", logits.sizes());
    const std::int64_t b = logits.size(0);
    TORCH_CHECK(batch.targets.dim() == 1 && batch.targets.size(0) == b, "aem: targets must be [B] bag labels with B = ",
                b, ", got ", batch.targets.sizes());
    TORCH_CHECK(attention.dim() == 3 && attention.size(0) == b && attention.size(1) >= 1 && attention.size(2) >= 1,
                "aem: attention_logits must be [B, H, N] with B = ", b, " bags, H >= 1 heads, N >= 1 instances, got ",
                attention.sizes());
    TORCH_CHECK(attention.is_floating_point(), "aem: attention_logits must be floating, got ", attention.scalar_type());

    const torch::Tensor ce = torch::nn::functional::cross_entropy(logits, batch.targets, ce_options_);
    const torch::Tensor log_a = torch::log_softmax(attention, 2);
    torch::Tensor a_log_a;
    if (outputs.has("attention_mask")) {
      const torch::Tensor& mask = outputs.at("attention_mask");
      TORCH_CHECK(mask.dim() == 2 && mask.size(0) == b && mask.size(1) == attention.size(2) &&
                      mask.scalar_type() == torch::kBool,
                  "aem: attention_mask must be bool [B, N] matching attention_logits ", attention.sizes(), ", got ",
                  mask.sizes(), " ", mask.scalar_type());
      // Padding has log a = −inf: zero it before the product, so neither the
      // value nor the gradient meets 0·(−inf).
      const torch::Tensor padding = mask.logical_not().unsqueeze(1);
      a_log_a = log_a.exp() * log_a.masked_fill(padding, 0.0);
    } else {
      a_log_a = log_a.exp() * log_a;
    }
    const double heads = static_cast<double>(attention.size(1));
    const torch::Tensor div = a_log_a.sum({1, 2}).mean() / heads;
    return ce + lambda_ * div.to(ce.scalar_type());
  }

 private:
  double lambda_ = 0.1;
  // An ignore_index no label can take: a label outside [0, K) is an error.
  const torch::nn::functional::CrossEntropyFuncOptions ce_options_ =
      torch::nn::functional::CrossEntropyFuncOptions().ignore_index(std::numeric_limits<std::int64_t>::min());
};

}  // namespace

REGLAB_PLUGIN(Aem,
              .name = "aem", .version = "1.0.0",
              .summary = "Attention-MIL cross-entropy + lambda * negative attention entropy (per head mean)",
              .paper = "Zhang et al. 2024, AEM: Attention Entropy Maximization for Multiple Instance Learning based Whole Slide Image Classification (arXiv 2406.15303)",
              .paradigms = reglab::kMil,
              .params = kParams, .num_params = std::size(kParams))
