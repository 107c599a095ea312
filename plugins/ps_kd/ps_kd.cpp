// ps_kd — Progressive Self-Knowledge Distillation (Kim et al. 2021), as the
// official PS-KD-Pytorch main.py::train and loss/pskd_loss.py compute it.
//
// α_t = α_T·(epoch + 1)/E (epoch 0-based). Per training step:
//   1. in epoch 0 only, the batch's rows of P become the one-hot labels;
//   2. t_i = (1 − α_t)·onehot(y_i) + α_t·P[i] (a constant);
//      loss = mean_i Σ_k −t_ik log p_ik (so epoch-0 targets are one-hot);
//   3. after the optimizer step, the batch's rows of P become sg(softmax(z))
//      of the same training forward (every epoch, epoch 0 included).
// When an index repeats in a batch the last row's value is written (as index
// assignment does). State: P, N×K, zeros at setup, in the logits' dtype,
// saved as "past_predictions".
#include <torch/types.h>

#include <iterator>
#include <stdexcept>
#include <string>

#include "reglab/method.h"
#include "reglab/plugin.h"

namespace {

constexpr reglab::ParamSpec kParams[] = {
    {.name = "alpha_T", .type = reglab::ParamType::kFloat, .default_value = "0.8",
     .min = 0.0, .max = 1.0, .has_min = true, .has_max = true,
     .doc = "weight of the past predictions in the target at the last epoch (grows linearly from alpha_T/E)"},
};

constexpr const char* kStateName = "past_predictions";

std::string shape_text(const torch::Tensor& t) {
  std::string s = "[";
  for (std::int64_t d = 0; d < t.dim(); ++d) s += (d ? ", " : "") + std::to_string(t.size(d));
  return s + "]";
}

// For each row j of the batch, the position of the last row with the same
// index. Writing rows.index_select(0, last) makes every duplicate carry the
// same value, so the write is deterministic on any device ("last wins")
// without a host sync. B×B comparison: cheap for batch-sized B.
torch::Tensor last_occurrence(const torch::Tensor& indices) {
  const torch::Tensor same = indices.unsqueeze(1).eq(indices.unsqueeze(0)).to(torch::kLong);
  const torch::Tensor position = torch::arange(indices.size(0), indices.options().dtype(torch::kLong));
  return same.mul(position.unsqueeze(0)).amax(1);
}

class PsKd final : public reglab::Method {
 public:
  void setup(const reglab::MethodContext& ctx) override {
    alpha_T_ = ctx.params.get_double("alpha_T");
    // The core validates against the schema; this guards direct use.
    if (!(alpha_T_ >= 0.0 && alpha_T_ <= 1.0))
      throw std::invalid_argument("ps_kd: alpha_T must be in [0, 1], got " + std::to_string(alpha_T_));
    if (ctx.num_train_samples < 1 || ctx.num_classes < 1)
      throw std::invalid_argument("ps_kd: needs num_train_samples >= 1 and num_classes >= 1, got " +
                                  std::to_string(ctx.num_train_samples) + " and " + std::to_string(ctx.num_classes));
    if (!c10::isFloatingType(ctx.dtype))
      throw std::invalid_argument(std::string("ps_kd: the logits dtype must be floating, got ") +
                                  c10::toString(ctx.dtype));
    num_samples_ = ctx.num_train_samples;
    num_classes_ = ctx.num_classes;
    // The official code keeps P in float32; we keep it in the logits' dtype,
    // which is float32 in the classify paradigm.
    past_ = torch::zeros({num_samples_, num_classes_}, torch::TensorOptions().dtype(ctx.dtype).device(ctx.device));
  }

  torch::Tensor training_loss(const reglab::Batch& batch, const reglab::Outputs& outputs,
                              const reglab::StepContext& step) override {
    const torch::Tensor& logits = outputs.at("logits");
    check_batch(batch, logits, "training_loss");
    TORCH_CHECK(step.total_epochs >= 1 && step.epoch >= 0 && step.epoch < step.total_epochs,
                "ps_kd: needs 0 <= epoch < total_epochs, got epoch ", step.epoch, " of ", step.total_epochs);
    const torch::Tensor& idx = batch.indices;
    const double alpha_t = alpha_T_ * static_cast<double>(step.epoch + 1) / static_cast<double>(step.total_epochs);

    const torch::Tensor onehot = torch::one_hot(batch.targets, num_classes_).to(logits.scalar_type());
    if (step.epoch == 0) {
      torch::NoGradGuard no_grad;
      past_.index_put_({idx}, onehot.index_select(0, last_occurrence(idx)).to(past_.scalar_type()));
    }
    const torch::Tensor target = (1.0 - alpha_t) * onehot + alpha_t * past_.index_select(0, idx).to(logits.scalar_type());
    // Batch mean of the per-sample sums, in the official order (mean over
    // rows, then sum over classes).
    return (-target * torch::log_softmax(logits, 1)).mean(0).sum();
  }

  void after_optimizer_step(const reglab::Batch& batch, const reglab::Outputs& outputs,
                            const reglab::StepContext& /*step*/) override {
    const torch::Tensor& logits = outputs.at("logits");
    check_batch(batch, logits, "after_optimizer_step");
    torch::NoGradGuard no_grad;
    const torch::Tensor p = torch::softmax(logits.detach(), 1).to(past_.scalar_type());
    past_.index_put_({batch.indices}, p.index_select(0, last_occurrence(batch.indices)));
  }

  reglab::StateDict state_dict() const override { return {{kStateName, past_}}; }

  void load_state_dict(const reglab::StateDict& state) override {
    const auto it = state.find(kStateName);
    if (it == state.end())
      throw std::invalid_argument("ps_kd: load_state_dict: the state has no 'past_predictions' tensor");
    const torch::Tensor& given = it->second;
    if (!given.defined() || !given.is_floating_point() || !given.sizes().equals(past_.sizes()))
      throw std::invalid_argument("ps_kd: load_state_dict: 'past_predictions' must be a floating tensor of shape " +
                                  shape_text(past_) + " (num_train_samples, num_classes), got " +
                                  (given.defined() ? shape_text(given) + " " + c10::toString(given.scalar_type())
                                                   : std::string("an undefined tensor")));
    torch::NoGradGuard no_grad;
    past_.copy_(given);
  }

 private:
  void check_batch(const reglab::Batch& batch, const torch::Tensor& logits, const char* hook) const {
    TORCH_CHECK(logits.dim() == 2 && logits.size(1) == num_classes_, "ps_kd: ", hook,
                ": logits must be [B, K] with K = ", num_classes_, " (num_classes), got ", logits.sizes());
    TORCH_CHECK(logits.is_floating_point(), "ps_kd: logits must be floating, got ", logits.scalar_type());
    const std::int64_t b = logits.size(0);
    TORCH_CHECK(batch.targets.defined() && batch.targets.dim() == 1 && batch.targets.size(0) == b &&
                    batch.targets.scalar_type() == torch::kLong,
                "ps_kd: ", hook, ": targets must be int64 [B] with B = ", b, ", got ",
                batch.targets.defined() ? batch.targets.sizes() : torch::IntArrayRef{});
    TORCH_CHECK(batch.indices.defined() && batch.indices.dim() == 1 && batch.indices.size(0) == b &&
                    batch.indices.scalar_type() == torch::kLong,
                "ps_kd: ", hook, ": indices must be int64 [B] with B = ", b, " (positions in the training set), got ",
                batch.indices.defined() ? batch.indices.sizes() : torch::IntArrayRef{});
    // A range check costs a sync on an accelerator; there, index_select's own
    // check reports it.
    if (b > 0 && batch.indices.device().is_cpu()) {
      const std::int64_t lo = batch.indices.min().item<std::int64_t>();
      const std::int64_t hi = batch.indices.max().item<std::int64_t>();
      TORCH_CHECK(lo >= 0 && hi < num_samples_, "ps_kd: indices must be in [0, ", num_samples_,
                  ") (num_train_samples), got values in [", lo, ", ", hi, "]");
    }
  }

  double alpha_T_ = 0.8;
  std::int64_t num_samples_ = 0;
  std::int64_t num_classes_ = 0;
  torch::Tensor past_;
};

}  // namespace

REGLAB_PLUGIN(PsKd,
              .name = "ps_kd", .version = "1.0.0",
              .summary = "Cross-entropy against (1-a_t)*onehot + a_t*(last epoch's prediction), a_t = alpha_T*(epoch+1)/E",
              .paper = "Kim et al. 2021, Self-Knowledge Distillation with Progressive Refinement of Targets",
              .paradigms = reglab::kClassify,
              .params = kParams, .num_params = std::size(kParams))
