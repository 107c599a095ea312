// ce — plain cross-entropy, the baseline every other method is compared with.
//
// loss = mean_i −log softmax(z_i)[y_i], the same value and gradient as
// torch.nn.functional.cross_entropy(z, y) for labels in [0, K). Stateless.
#include <torch/nn/functional/loss.h>
#include <torch/types.h>

#include <limits>

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
    // LibTorch's fused cross-entropy (log_softmax + nll_loss), the fastest
    // path (tools/bench: log_softmax + gather cost 4-13% more per step). Its
    // default ignore_index would silently skip label -100; an ignore_index no
    // label can take makes every label outside [0, K) an error instead.
    return torch::nn::functional::cross_entropy(logits, batch.targets, options_);
  }

 private:
  const torch::nn::functional::CrossEntropyFuncOptions options_ =
      torch::nn::functional::CrossEntropyFuncOptions().ignore_index(std::numeric_limits<std::int64_t>::min());
};

}  // namespace

REGLAB_PLUGIN(CrossEntropy,
              .name = "ce", .version = "1.0.0",
              .summary = "Cross-entropy with hard labels, batch mean (the baseline)",
              .paper = "-- (standard maximum-likelihood training)",
              .paradigms = reglab::kClassify | reglab::kSft)
