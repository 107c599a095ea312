// An out-of-tree method: mean over the batch of Σ_k≠y max(0, 1 + z_k − z_y)².
#include <torch/nn/functional/activation.h>

#include "reglab/method.h"

namespace {

class SquaredMargin final : public reglab::Method {
 public:
  void setup(const reglab::MethodContext& ctx) override { margin_ = ctx.params.get_double("margin"); }
  torch::Tensor training_loss(const reglab::Batch& batch, const reglab::Outputs& out,
                              const reglab::StepContext&) override {
    const torch::Tensor& z = out.at("logits");
    torch::Tensor zy = z.gather(1, batch.targets.unsqueeze(1));
    torch::Tensor m = torch::relu(margin_ + z - zy).pow(2);
    m = m.scatter(1, batch.targets.unsqueeze(1), 0.0);
    return m.sum(1).mean();
  }

 private:
  double margin_ = 1.0;
};

const reglab::ParamSpec kParams[] = {
    {.name = "margin", .type = reglab::ParamType::kFloat, .default_value = "1.0", .min = 0, .has_min = true,
     .doc = "required gap between the true logit and the others"},
};

}  // namespace

REGLAB_PLUGIN(SquaredMargin, .name = "squared_margin", .version = "0.1.0",
              .summary = "squared multi-class hinge (out-of-tree example)", .paper = "none",
              .paradigms = reglab::kClassify, .params = kParams, .num_params = std::size(kParams))
