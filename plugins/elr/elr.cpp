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
#include <ATen/Dispatch.h>
#include <torch/csrc/autograd/custom_function.h>
#include <torch/nn/functional/loss.h>
#include <torch/types.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include <iterator>
#include <stdexcept>
#include <string>

#include "reglab/fused_paths.h"
#include "reglab/method.h"
#include "reglab/plugin.h"
#include "reglab/sample_state.h"

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

// The CPU path: the state update and the loss in two passes over the B×K
// logits, with the gradient written out by hand. At the batch sizes of the
// classify paradigm the dozen small tensor ops of the generic path (and their
// backward nodes) cost more than the model's step (tools/bench, --method elr).
//
// Forward, per row i (p = softmax(z_i), p̃ = clamp(p, lo, hi)):
//   T[idx_i] ← β·T_old[idx_i] + (1−β)·p̃/Σp̃   (all rows read before any write)
//   ce_i = logsumexp(z_i) − z_i,y ;  s_i = ⟨T[idx_i], p̃⟩ ;  reg_i = log(1 − s_i)
//   loss = mean ce + λ·mean reg
// Backward, with g_k = −m_k·t_k/(1 − s_i), m = [lo ≤ p_k ≤ hi] (clamp's
// gradient mask), t = T[idx_i] after the update:
//   ∂loss/∂z_ij = (1/B)·[(p_ij − [j = y_i]) + λ·p_ij·(g_j − Σ_k g_k·p_ik)]
struct ElrLossCpu : public torch::autograd::Function<ElrLossCpu> {
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& logits,
                               const torch::Tensor& targets, const torch::Tensor& indices, torch::Tensor state,
                               double beta, double lambda) {
    const torch::Tensor z = logits.contiguous();
    const torch::Tensor y = targets.contiguous();
    const torch::Tensor ix = indices.contiguous();
    const std::int64_t b = z.size(0), k = z.size(1);
    const std::int64_t* labels = y.data_ptr<std::int64_t>();
    for (std::int64_t i = 0; i < b; ++i)
      TORCH_CHECK(labels[i] >= 0 && labels[i] < k, "elr: target ", labels[i], " is out of bounds for ", k, " classes");
    torch::Tensor p = torch::empty_like(z);
    torch::Tensor t = torch::empty_like(z);
    torch::Tensor s = torch::empty({b}, z.options());
    torch::Tensor loss = torch::empty({}, z.options());
    AT_DISPATCH_FLOATING_TYPES(z.scalar_type(), "elr_cpu_forward", [&] {
      const scalar_t* zp = z.data_ptr<scalar_t>();
      const std::int64_t* yp = y.data_ptr<std::int64_t>();
      const std::int64_t* ip = ix.data_ptr<std::int64_t>();
      scalar_t* pp = p.data_ptr<scalar_t>();
      scalar_t* tp = t.data_ptr<scalar_t>();
      scalar_t* sp = s.data_ptr<scalar_t>();
      scalar_t* T = state.data_ptr<scalar_t>();
      const scalar_t lo = static_cast<scalar_t>(kClampLow), hi = static_cast<scalar_t>(kClampHigh);
      double ce_sum = 0;
      // Pass 1: softmax, cross-entropy, and the updated rows from the old T.
      std::vector<scalar_t> updated(static_cast<std::size_t>(b * k));
      for (std::int64_t i = 0; i < b; ++i) {
        const scalar_t* zi = zp + i * k;
        scalar_t* pi = pp + i * k;
        const scalar_t m = *std::max_element(zi, zi + k);
        // Shifted by the row's max throughout: adding the max back would round
        // away the small differences that decide near-one-hot rows.
        double sum = 0;
        for (std::int64_t c = 0; c < k; ++c) sum += std::exp(static_cast<double>(zi[c]) - static_cast<double>(m));
        const double log_sum = std::log(sum);
        ce_sum += log_sum - (static_cast<double>(zi[yp[i]]) - static_cast<double>(m));
        double clamped_sum = 0;
        for (std::int64_t c = 0; c < k; ++c) {
          pi[c] = static_cast<scalar_t>(std::exp(static_cast<double>(zi[c]) - static_cast<double>(m)) / sum);
          clamped_sum += static_cast<double>(std::clamp(pi[c], lo, hi));
        }
        const scalar_t* old = T + ip[i] * k;
        for (std::int64_t c = 0; c < k; ++c)
          updated[static_cast<std::size_t>(i * k + c)] = static_cast<scalar_t>(
              beta * static_cast<double>(old[c]) +
              (1.0 - beta) * static_cast<double>(std::clamp(pi[c], lo, hi)) / clamped_sum);
      }
      // The writes, in batch order (last wins), then the reads of T.
      for (std::int64_t i = 0; i < b; ++i)
        std::copy(updated.begin() + i * k, updated.begin() + (i + 1) * k, T + ip[i] * k);
      double reg_sum = 0;
      for (std::int64_t i = 0; i < b; ++i) {
        std::copy(T + ip[i] * k, T + (ip[i] + 1) * k, tp + i * k);
        double dot = 0;
        for (std::int64_t c = 0; c < k; ++c)
          dot += static_cast<double>(tp[i * k + c]) * static_cast<double>(std::clamp(pp[i * k + c], lo, hi));
        sp[i] = static_cast<scalar_t>(dot);
        reg_sum += std::log(1.0 - dot);
      }
      const double n = static_cast<double>(b);
      loss.fill_(ce_sum / n + lambda * (reg_sum / n));
    });
    ctx->save_for_backward({p, t, s, y});
    ctx->saved_data["lambda"] = lambda;
    return loss;
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grad_output) {
    const auto saved = ctx->get_saved_variables();
    const torch::Tensor &p = saved[0], &t = saved[1], &s = saved[2], &y = saved[3];
    const double lambda = ctx->saved_data["lambda"].toDouble();
    const std::int64_t b = p.size(0), k = p.size(1);
    const double scale = grad_output[0].item<double>() / static_cast<double>(b);
    torch::Tensor grad = torch::empty_like(p);
    AT_DISPATCH_FLOATING_TYPES(p.scalar_type(), "elr_cpu_backward", [&] {
      const scalar_t* pp = p.data_ptr<scalar_t>();
      const scalar_t* tp = t.data_ptr<scalar_t>();
      const scalar_t* sp = s.data_ptr<scalar_t>();
      const std::int64_t* yp = y.data_ptr<std::int64_t>();
      scalar_t* gp = grad.data_ptr<scalar_t>();
      const scalar_t lo = static_cast<scalar_t>(kClampLow), hi = static_cast<scalar_t>(kClampHigh);
      std::vector<double> g(static_cast<std::size_t>(k));
      for (std::int64_t i = 0; i < b; ++i) {
        const scalar_t* pi = pp + i * k;
        const double inv = 1.0 / (1.0 - static_cast<double>(sp[i]));
        double gp_sum = 0;
        for (std::int64_t c = 0; c < k; ++c) {
          const bool inside = pi[c] >= lo && pi[c] <= hi;
          g[static_cast<std::size_t>(c)] = inside ? -static_cast<double>(tp[i * k + c]) * inv : 0.0;
          gp_sum += g[static_cast<std::size_t>(c)] * static_cast<double>(pi[c]);
        }
        for (std::int64_t c = 0; c < k; ++c) {
          const double pc = static_cast<double>(pi[c]);
          const double ce = pc - (c == yp[i] ? 1.0 : 0.0);
          gp[i * k + c] = static_cast<scalar_t>(scale * (ce + lambda * pc * (g[static_cast<std::size_t>(c)] - gp_sum)));
        }
      }
    });
    return {grad, torch::Tensor(), torch::Tensor(), torch::Tensor(), torch::Tensor(), torch::Tensor()};
  }
};

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
    const bool cpu_path = reglab::fused_cpu_paths_enabled() && logits.device().is_cpu() && target_.device().is_cpu() &&
                          logits.scalar_type() == target_.scalar_type() &&
                          (logits.scalar_type() == torch::kFloat || logits.scalar_type() == torch::kDouble) &&
                          logits.size(0) > 0;
    if (cpu_path) return ElrLossCpu::apply(logits, batch.targets, idx, target_, beta_, lambda_);

    // The generic path (accelerators, other dtypes): the same equations as tensor ops.
    const torch::Tensor p = torch::clamp(torch::softmax(logits, 1), kClampLow, kClampHigh);
    {
      torch::NoGradGuard no_grad;
      const torch::Tensor q = p.detach().to(target_.scalar_type());
      reglab::assign_rows(target_, idx, beta_ * target_.index_select(0, idx) + (1.0 - beta_) * q / q.sum(1, true));
    }
    const torch::Tensor t = target_.index_select(0, idx).to(logits.scalar_type());
    // ignore_index no label can take: every label outside [0, K) is an error.
    const torch::Tensor ce = torch::nn::functional::cross_entropy(
        logits, batch.targets,
        torch::nn::functional::CrossEntropyFuncOptions().ignore_index(std::numeric_limits<std::int64_t>::min()));
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
                                  reglab::shape_text(target_) + " (num_train_samples, num_classes), got " +
                                  (given.defined() ? reglab::shape_text(given) + " " + c10::toString(given.scalar_type())
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
    reglab::check_indices("elr", batch.indices, b, num_samples_);
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
