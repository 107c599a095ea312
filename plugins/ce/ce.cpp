// ce — plain cross-entropy, the baseline every other method is compared with.
//
// loss = mean_i −log softmax(z_i)[y_i], the same value and gradient as
// torch.nn.functional.cross_entropy(z, y) for labels in [0, K). Stateless.
#include <torch/types.h>

#include "reglab/method.h"
#include "reglab/plugin.h"

namespace {

class CrossEntropy final : public reglab::Method {
 public:
  torch::Tensor training_loss(const reglab::Batch& batch, const reglab::Outputs& outputs,
                              const reglab::StepContext& /*step*/) override {
    const torch::Tensor& logits = outputs.at("logits");
    TORCH_CHECK(logits.dim() == 2, "ce: logits must be [B, K], got ", logits.sizes());
    TORCH_CHECK(batch.targets.dim() == 1 && batch.targets.size(0) == logits.size(0),
                "ce: targets must be [B] with B = ", logits.size(0), ", got ", batch.targets.sizes());
    // gather rather than nll_loss: nll_loss silently skips label -100 (its
    // ignore_index), gather rejects every label outside [0, K).
    const torch::Tensor log_p = torch::log_softmax(logits, 1);
    return -log_p.gather(1, batch.targets.unsqueeze(1)).mean();
  }
};

}  // namespace

REGLAB_PLUGIN(CrossEntropy,
              .name = "ce", .version = "1.0.0",
              .summary = "Cross-entropy with hard labels, batch mean (the baseline)",
              .paper = "-- (standard maximum-likelihood training)",
              .paradigms = reglab::kClassify)
