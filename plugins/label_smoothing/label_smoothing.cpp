// label_smoothing — cross-entropy against a smoothed target (Szegedy et al. 2016).
//
// t_i = (1 − ε)·onehot(y_i) + ε/K over all K classes (the true class included),
// loss = mean_i −Σ_k t_ik log p_ik, exactly torch's
// F.cross_entropy(z, y, label_smoothing=ε). Stateless.
#include <torch/types.h>

#include <iterator>
#include <stdexcept>
#include <string>

#include "reglab/method.h"
#include "reglab/plugin.h"

namespace {

constexpr reglab::ParamSpec kParams[] = {
    {.name = "epsilon", .type = reglab::ParamType::kFloat, .default_value = "0.1",
     .min = 0.0, .max = 1.0, .has_min = true, .has_max = true,
     .doc = "probability mass spread uniformly over all K classes (0 = plain cross-entropy)"},
};

class LabelSmoothing final : public reglab::Method {
 public:
  void setup(const reglab::MethodContext& ctx) override {
    epsilon_ = ctx.params.get_double("epsilon");
    // The core validates against the schema; this guards direct use.
    if (!(epsilon_ >= 0.0 && epsilon_ <= 1.0))
      throw std::invalid_argument("label_smoothing: epsilon must be in [0, 1], got " +
                                  std::to_string(epsilon_));
  }

  torch::Tensor training_loss(const reglab::Batch& batch, const reglab::Outputs& outputs,
                              const reglab::StepContext& /*step*/) override {
    const torch::Tensor& logits = outputs.at("logits");
    TORCH_CHECK(logits.dim() == 2, "label_smoothing: logits must be [B, K], got ", logits.sizes());
    TORCH_CHECK(batch.targets.dim() == 1 && batch.targets.size(0) == logits.size(0),
                "label_smoothing: targets must be [B] with B = ", logits.size(0), ", got ",
                batch.targets.sizes());
    const torch::Tensor log_p = torch::log_softmax(logits, 1);
    // −Σ_k t_k log p_k split into its two parts, so no [B, K] target is built:
    // (1 − ε)·(−log p_y) + ε·(−mean_k log p_k).
    const torch::Tensor nll = -log_p.gather(1, batch.targets.unsqueeze(1)).squeeze(1);
    const torch::Tensor uniform = -log_p.mean(1);
    return ((1.0 - epsilon_) * nll + epsilon_ * uniform).mean();
  }

 private:
  double epsilon_ = 0.1;
};

}  // namespace

REGLAB_PLUGIN(LabelSmoothing,
              .name = "label_smoothing", .version = "1.0.0",
              .summary = "Cross-entropy against (1-eps)*onehot + eps/K",
              .paper = "Szegedy et al. 2016, Rethinking the Inception Architecture for Computer Vision",
              .paradigms = reglab::kClassify,
              .params = kParams, .num_params = std::size(kParams))
