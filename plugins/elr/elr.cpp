// elr — Early-Learning Regularization (Liu et al. 2020), as the official
// ELR/model/loss.py::elr_loss computes it.
//
// With p = softmax(z) and p̃ = clamp(p, 1e-4, 1 − 1e-4) (zero gradient where
// clamped), per training step:
//   1. T[i] ← β·T[i] + (1 − β)·sg(p̃_i) / Σ_k sg(p̃_ik) for the batch's indices
//      (every row computed from the T before the step; when an index repeats
//      in the batch the last row's value is kept, as index assignment does);
//   2. loss = CE(z, y) + λ · mean_i log(1 − ⟨T[i], p̃_i⟩), the updated T a constant.
// State: T, N×K, zeros at setup, in the logits' dtype, saved as "target".
#include <torch/types.h>

#include <iterator>
#include <stdexcept>
#include <string>

#include "reglab/method.h"
#include "reglab/plugin.h"

namespace {

constexpr reglab::ParamSpec kParams[] = {
    {.name = "beta", .type = reglab::ParamType::kFloat, .default_value = "0.7",
     .min = 0.0, .max = 1.0, .has_min = true, .has_max = true,
     .doc = "momentum of the per-sample target average (official: 0.7 CIFAR-10 sym., 0.9 asym. and CIFAR-100)"},
    {.name = "lambda", .type = reglab::ParamType::kFloat, .default_value = "3.0",
     .min = 0.0, .has_min = true,
     .doc = "weight of the regulariser (official: 3 CIFAR-10 sym., 1 asym., 7 CIFAR-100)"},
};

constexpr double kClampLow = 1e-4;
constexpr double kClampHigh = 1.0 - 1e-4;
constexpr const char* kStateName = "target";

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

class Elr final : public reglab::Method {
 public:
  void setup(const reglab::MethodContext& ctx) override {
    beta_ = ctx.params.get_double("beta");
    lambda_ = ctx.params.get_double("lambda");
    // The core validates against the schema; these guard direct use.
    if (!(beta_ >= 0.0 && beta_ <= 1.0))
      throw std::invalid_argument("elr: beta must be in [0, 1], got " + std::to_string(beta_));
    if (!(lambda_ >= 0.0)) throw std::invalid_argument("elr: lambda must be >= 0, got " + std::to_string(lambda_));
    if (ctx.num_train_samples < 1 || ctx.num_classes < 1)
      throw std::invalid_argument("elr: needs num_train_samples >= 1 and num_classes >= 1, got " +
                                  std::to_string(ctx.num_train_samples) + " and " + std::to_string(ctx.num_classes));
    if (!c10::isFloatingType(ctx.dtype))
      throw std::invalid_argument(std::string("elr: the logits dtype must be floating, got ") + c10::toString(ctx.dtype));
    num_samples_ = ctx.num_train_samples;
    num_classes_ = ctx.num_classes;
    // The official code keeps T in float32 (torch's default); we keep it in
    // the logits' dtype, which is float32 in the classify paradigm.
    target_ = torch::zeros({num_samples_, num_classes_}, torch::TensorOptions().dtype(ctx.dtype).device(ctx.device));
  }

  torch::Tensor training_loss(const reglab::Batch& batch, const reglab::Outputs& outputs,
                              const reglab::StepContext& /*step*/) override {
    const torch::Tensor& logits = outputs.at("logits");
    check_batch(batch, logits);
    const torch::Tensor& idx = batch.indices;

    const torch::Tensor p = torch::clamp(torch::softmax(logits, 1), kClampLow, kClampHigh);
    {
      torch::NoGradGuard no_grad;
      const torch::Tensor q = p.detach().to(target_.scalar_type());
      const torch::Tensor updated = beta_ * target_.index_select(0, idx) + (1.0 - beta_) * q / q.sum(1, true);
      target_.index_put_({idx}, updated.index_select(0, last_occurrence(idx)));
    }
    const torch::Tensor t = target_.index_select(0, idx).to(logits.scalar_type());

    const torch::Tensor log_p = torch::log_softmax(logits, 1);
    const torch::Tensor ce = -log_p.gather(1, batch.targets.unsqueeze(1)).mean();
    const torch::Tensor reg = torch::log(1.0 - (t * p).sum(1)).mean();
    return ce + lambda_ * reg;
  }

  reglab::StateDict state_dict() const override { return {{kStateName, target_}}; }

  void load_state_dict(const reglab::StateDict& state) override {
    const auto it = state.find(kStateName);
    if (it == state.end()) throw std::invalid_argument("elr: load_state_dict: the state has no 'target' tensor");
    const torch::Tensor& given = it->second;
    if (!given.defined() || !given.is_floating_point() || !given.sizes().equals(target_.sizes()))
      throw std::invalid_argument("elr: load_state_dict: 'target' must be a floating tensor of shape " +
                                  shape_text(target_) + " (num_train_samples, num_classes), got " +
                                  (given.defined() ? shape_text(given) + " " + c10::toString(given.scalar_type())
                                                   : std::string("an undefined tensor")));
    torch::NoGradGuard no_grad;
    target_.copy_(given);
  }

 private:
  void check_batch(const reglab::Batch& batch, const torch::Tensor& logits) const {
    TORCH_CHECK(logits.dim() == 2 && logits.size(1) == num_classes_, "elr: logits must be [B, K] with K = ",
                num_classes_, " (num_classes), got ", logits.sizes());
    TORCH_CHECK(logits.is_floating_point(), "elr: logits must be floating, got ", logits.scalar_type());
    const std::int64_t b = logits.size(0);
    TORCH_CHECK(batch.targets.defined() && batch.targets.dim() == 1 && batch.targets.size(0) == b &&
                    batch.targets.scalar_type() == torch::kLong,
                "elr: targets must be int64 [B] with B = ", b, ", got ",
                batch.targets.defined() ? batch.targets.sizes() : torch::IntArrayRef{});
    TORCH_CHECK(batch.indices.defined() && batch.indices.dim() == 1 && batch.indices.size(0) == b &&
                    batch.indices.scalar_type() == torch::kLong,
                "elr: indices must be int64 [B] with B = ", b, " (positions in the training set), got ",
                batch.indices.defined() ? batch.indices.sizes() : torch::IntArrayRef{});
    // A range check costs a sync on an accelerator; there, index_select's own
    // check reports it.
    if (b > 0 && batch.indices.device().is_cpu()) {
      const std::int64_t lo = batch.indices.min().item<std::int64_t>();
      const std::int64_t hi = batch.indices.max().item<std::int64_t>();
      TORCH_CHECK(lo >= 0 && hi < num_samples_, "elr: indices must be in [0, ", num_samples_,
                  ") (num_train_samples), got values in [", lo, ", ", hi, "]");
    }
  }

  double beta_ = 0.7;
  double lambda_ = 3.0;
  std::int64_t num_samples_ = 0;
  std::int64_t num_classes_ = 0;
  torch::Tensor target_;
};

}  // namespace

REGLAB_PLUGIN(Elr,
              .name = "elr", .version = "1.0.0",
              .summary = "Cross-entropy + lambda*log(1 - <T, p>) with a running average T of past predictions",
              .paper = "Liu et al. 2020, Early-Learning Regularization Prevents Memorization of Noisy Labels",
              .paradigms = reglab::kClassify,
              .params = kParams, .num_params = std::size(kParams))
