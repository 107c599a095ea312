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
#include <ATen/Dispatch.h>
#include <torch/csrc/autograd/custom_function.h>
#include <torch/types.h>

#include <cmath>
#include <iterator>
#include <stdexcept>
#include <string>

#include "reglab/fused_paths.h"
#include "reglab/method.h"
#include "reglab/plugin.h"
#include "reglab/sample_state.h"

namespace {

constexpr reglab::ParamSpec kParams[] = {
    {.name = "alpha_T", .type = reglab::ParamType::kFloat, .default_value = "0.8",
     .min = 0.0, .max = 1.0, .has_min = true, .has_max = true,
     .doc = "weight of the past predictions in the target at the last epoch (grows linearly from alpha_T/E)"},
};

constexpr const char* kStateName = "past_predictions";

// The CPU path: the epoch-0 overwrite, the targets and the loss in one pass
// over the B×K logits, with the gradient written out by hand; the dozen
// small tensor ops of the generic path (and their backward nodes) cost more
// than the model's step at classify batch sizes (tools/bench, --method ps_kd).
// Returns {loss, p}; p = softmax(z), kept for after_optimizer_step.
//   t_i = (1 − α_t)·onehot(y_i) + α_t·P[idx_i]  (P read after the overwrite)
//   loss = (1/B) Σ_i Σ_k −t_ik·log p_ik ;  ∂loss/∂z_ik = (p_ik·Σ_c t_ic − t_ik)/B
struct PsKdLossCpu : public torch::autograd::Function<PsKdLossCpu> {
  static torch::autograd::variable_list forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& logits,
                                                const torch::Tensor& targets, const torch::Tensor& indices,
                                                torch::Tensor state, double alpha_t, bool overwrite_onehot) {
    const torch::Tensor z = logits.contiguous();
    const torch::Tensor y = targets.contiguous();
    const torch::Tensor ix = indices.contiguous();
    const std::int64_t b = z.size(0), k = z.size(1);
    const std::int64_t* labels = y.data_ptr<std::int64_t>();
    for (std::int64_t i = 0; i < b; ++i)
      TORCH_CHECK(labels[i] >= 0 && labels[i] < k, "ps_kd: target ", labels[i], " is out of bounds for ", k,
                  " classes");
    torch::Tensor p = torch::empty_like(z);
    torch::Tensor t = torch::empty_like(z);
    torch::Tensor loss = torch::empty({}, z.options());
    AT_DISPATCH_FLOATING_TYPES(z.scalar_type(), "ps_kd_cpu_forward", [&] {
      const scalar_t* zp = z.data_ptr<scalar_t>();
      const std::int64_t* ip = ix.data_ptr<std::int64_t>();
      scalar_t* pp = p.data_ptr<scalar_t>();
      scalar_t* tp = t.data_ptr<scalar_t>();
      scalar_t* P = state.data_ptr<scalar_t>();
      if (overwrite_onehot) {
        for (std::int64_t i = 0; i < b; ++i) {
          scalar_t* row = P + ip[i] * k;
          for (std::int64_t c = 0; c < k; ++c) row[c] = c == labels[i] ? scalar_t(1) : scalar_t(0);
        }
      }
      double total = 0;
      for (std::int64_t i = 0; i < b; ++i) {
        const scalar_t* zi = zp + i * k;
        scalar_t m = zi[0];
        for (std::int64_t c = 1; c < k; ++c) m = zi[c] > m ? zi[c] : m;
        // Shifted by the row's max throughout: adding the max back would round
        // away the small differences that decide near-one-hot rows.
        double sum = 0;
        for (std::int64_t c = 0; c < k; ++c) sum += std::exp(static_cast<double>(zi[c]) - static_cast<double>(m));
        const double log_sum = std::log(sum);
        const scalar_t* past = P + ip[i] * k;
        for (std::int64_t c = 0; c < k; ++c) {
          const double shifted = static_cast<double>(zi[c]) - static_cast<double>(m);
          const double log_p = shifted - log_sum;
          pp[i * k + c] = static_cast<scalar_t>(std::exp(shifted) / sum);
          const double target = (1.0 - alpha_t) * (c == labels[i] ? 1.0 : 0.0) +
                                alpha_t * static_cast<double>(past[c]);
          tp[i * k + c] = static_cast<scalar_t>(target);
          total -= target * log_p;
        }
      }
      loss.fill_(b > 0 ? total / static_cast<double>(b) : 0.0);
    });
    ctx->save_for_backward({p, t});
    ctx->mark_non_differentiable({p});
    return {loss, p};
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grad_output) {
    const auto saved = ctx->get_saved_variables();
    const torch::Tensor &p = saved[0], &t = saved[1];
    const std::int64_t b = p.size(0), k = p.size(1);
    const double scale = grad_output[0].item<double>() / static_cast<double>(b);
    torch::Tensor grad = torch::empty_like(p);
    AT_DISPATCH_FLOATING_TYPES(p.scalar_type(), "ps_kd_cpu_backward", [&] {
      const scalar_t* pp = p.data_ptr<scalar_t>();
      const scalar_t* tp = t.data_ptr<scalar_t>();
      scalar_t* gp = grad.data_ptr<scalar_t>();
      for (std::int64_t i = 0; i < b; ++i) {
        double mass = 0;
        for (std::int64_t c = 0; c < k; ++c) mass += static_cast<double>(tp[i * k + c]);
        for (std::int64_t c = 0; c < k; ++c)
          gp[i * k + c] = static_cast<scalar_t>(
              scale * (static_cast<double>(pp[i * k + c]) * mass - static_cast<double>(tp[i * k + c])));
      }
    });
    return {grad, torch::Tensor(), torch::Tensor(), torch::Tensor(), torch::Tensor(), torch::Tensor()};
  }
};

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

    const bool cpu_path = reglab::fused_cpu_paths_enabled() && logits.device().is_cpu() && past_.device().is_cpu() &&
                          logits.scalar_type() == past_.scalar_type() &&
                          (logits.scalar_type() == torch::kFloat || logits.scalar_type() == torch::kDouble) &&
                          logits.size(0) > 0;
    if (cpu_path) {
      auto out = PsKdLossCpu::apply(logits, batch.targets, idx, past_, alpha_t, step.epoch == 0);
      last_logits_ = logits;
      last_p_ = out[1];
      return out[0];
    }

    // The generic path (accelerators, other dtypes): the same equations as tensor ops.
    const torch::Tensor onehot = torch::one_hot(batch.targets, num_classes_).to(logits.scalar_type());
    if (step.epoch == 0) reglab::assign_rows(past_, idx, onehot);
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
    // The CPU path already computed softmax of these very logits.
    const bool same_forward = last_p_.defined() && logits.is_same(last_logits_);
    const torch::Tensor p = same_forward ? last_p_ : torch::softmax(logits.detach(), 1);
    last_logits_ = torch::Tensor();
    last_p_ = torch::Tensor();
    reglab::assign_rows(past_, batch.indices, p);
  }

  reglab::StateDict state_dict() const override { return {{kStateName, past_}}; }

  void load_state_dict(const reglab::StateDict& state) override {
    const auto it = state.find(kStateName);
    if (it == state.end())
      throw std::invalid_argument("ps_kd: load_state_dict: the state has no 'past_predictions' tensor");
    const torch::Tensor& given = it->second;
    if (!given.defined() || !given.is_floating_point() || !given.sizes().equals(past_.sizes()))
      throw std::invalid_argument("ps_kd: load_state_dict: 'past_predictions' must be a floating tensor of shape " +
                                  reglab::shape_text(past_) + " (num_train_samples, num_classes), got " +
                                  (given.defined() ? reglab::shape_text(given) + " " + c10::toString(given.scalar_type())
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
    reglab::check_indices((std::string("ps_kd: ") + hook).c_str(), batch.indices, b, num_samples_);
  }

  double alpha_T_ = 0.8;
  std::int64_t num_samples_ = 0;
  std::int64_t num_classes_ = 0;
  torch::Tensor past_;
  // The last training forward's logits and, from the CPU path, their softmax.
  torch::Tensor last_logits_, last_p_;
};

}  // namespace

REGLAB_PLUGIN(PsKd,
              .name = "ps_kd", .version = "1.0.0",
              .summary = "Cross-entropy against (1-a_t)*onehot + a_t*(last epoch's prediction), a_t = alpha_T*(epoch+1)/E",
              .paper = "Kim et al. 2021, Self-Knowledge Distillation with Progressive Refinement of Targets",
              .paradigms = reglab::kClassify,
              .params = kParams, .num_params = std::size(kParams))
