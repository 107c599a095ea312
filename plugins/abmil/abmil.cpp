// abmil — attention-based MIL trained with plain cross-entropy on the bag
// labels (Ilse et al. 2018), the baseline of the mil paradigm.
//
// loss = mean_b −log softmax(z_b)[y_b] over the step's bags, the value and
// gradient of torch.nn.functional.cross_entropy(z, y). The attention is the
// model's (the mil paradigm's gated or plain attention pooling); this loss
// places no constraint on it. Stateless.
#include <torch/nn/functional/loss.h>
#include <torch/types.h>

#include <limits>

#include "reglab/method.h"
#include "reglab/plugin.h"

namespace {

class Abmil final : public reglab::Method {
 public:
  torch::Tensor training_loss(const reglab::Batch& batch, const reglab::Outputs& outputs,
                              const reglab::StepContext& /*step*/) override {
    const torch::Tensor& logits = outputs.at("logits");
    TORCH_CHECK(logits.dim() == 2, "abmil: logits must be [B, K] (one row per bag), got ", logits.sizes());
    TORCH_CHECK(batch.targets.dim() == 1 && batch.targets.size(0) == logits.size(0),
                "abmil: targets must be [B] bag labels with B = ", logits.size(0), ", got ", batch.targets.sizes());
    return torch::nn::functional::cross_entropy(logits, batch.targets, options_);
  }

 private:
  // An ignore_index no label can take: a label outside [0, K) is an error
  // rather than silently skipped (the default skips -100).
  const torch::nn::functional::CrossEntropyFuncOptions options_ =
      torch::nn::functional::CrossEntropyFuncOptions().ignore_index(std::numeric_limits<std::int64_t>::min());
};

}  // namespace

REGLAB_PLUGIN(Abmil,
              .name = "abmil", .version = "1.0.0",
              .summary = "Attention-based MIL: cross-entropy on the bag labels, batch mean over bags",
              .paper = "Ilse, Tomczak, Welling 2018, Attention-based Deep Multiple Instance Learning",
              .paradigms = reglab::kMil)
