// confidence_penalty — cross-entropy minus β times the mean predictive entropy
// (Pereyra et al. 2017): loss = mean_i [−log p_i,y_i − β·H(p_i)],
// H(p) = −Σ_k p_k log p_k in nats. Stateless.
#include <torch/nn/functional/loss.h>
#include <torch/types.h>

#include <iterator>
#include <limits>
#include <stdexcept>
#include <string>

#include "reglab/kernels/ops.h"
#include "reglab/method.h"
#include "reglab/plugin.h"

namespace {

constexpr reglab::ParamSpec kParams[] = {
    {.name = "beta", .type = reglab::ParamType::kFloat, .default_value = "0.1",
     .min = 0.0, .max = 10.0, .has_min = true, .has_max = true,
     .doc = "weight of the entropy bonus (0 = plain cross-entropy; task-tuned, typically 0.1-1)"},
};

class ConfidencePenalty final : public reglab::Method {
 public:
  void setup(const reglab::MethodContext& ctx) override {
    beta_ = ctx.params.get_double("beta");
    if (!(beta_ >= 0.0 && beta_ <= 10.0))
      throw std::invalid_argument("confidence_penalty: beta must be in [0, 10], got " +
                                  std::to_string(beta_));
  }

  torch::Tensor training_loss(const reglab::Batch& batch, const reglab::Outputs& outputs,
                              const reglab::StepContext& /*step*/) override {
    const torch::Tensor& logits = outputs.at("logits");
    TORCH_CHECK(logits.dim() == 2, "confidence_penalty: logits must be [B, K], got ", logits.sizes());
    TORCH_CHECK(batch.targets.dim() == 1 && batch.targets.size(0) == logits.size(0),
                "confidence_penalty: targets must be [B] with B = ", logits.size(0), ", got ",
                batch.targets.sizes());
    // Per-sample −log p_y from LibTorch's fused cross-entropy; an
    // ignore_index no label can take makes every label outside [0, K) an
    // error (as in the ce plugin).
    const torch::Tensor nll = torch::nn::functional::cross_entropy(logits, batch.targets, options_);
    // The fused entropy (reglab::kernels): one pass over the logits, and a
    // gradient −p(log p + H) formed without the p and log p tensors; a class
    // whose probability underflows to 0 contributes exactly 0, not 0·(−inf).
    const torch::Tensor entropy = reglab::kernels::softmax_entropy(logits, 1);
    return (nll - beta_ * entropy).mean();
  }

 private:
  double beta_ = 0.1;
  const torch::nn::functional::CrossEntropyFuncOptions options_ =
      torch::nn::functional::CrossEntropyFuncOptions()
          .reduction(torch::kNone)
          .ignore_index(std::numeric_limits<std::int64_t>::min());
};

}  // namespace

REGLAB_PLUGIN(ConfidencePenalty,
              .name = "confidence_penalty", .version = "1.0.0",
              .summary = "Cross-entropy minus beta times the mean predictive entropy",
              .paper = "Pereyra et al. 2017, Regularizing Neural Networks by Penalizing Confident "
                       "Output Distributions",
              .paradigms = reglab::kClassify,
              .params = kParams, .num_params = std::size(kParams))
