// aldr_kl — Adaptive Label Distributionally Robust loss with a KL ball (Zhu,
// Ying, Yang 2023), as the official ICML2023_LDR loss.py::ALDRLoss_V1
// computes it.
//
// Per-sample temperatures Λ (N of them, λ0 at setup). With K classes, labels
// y, margin c, α and λ0, per training step and row i of the batch:
//   s   = z (softplus(z) if `softplus`), then s ← s / (‖s‖₁ / K)
//   q   = softmax(sg(s) / Λ[i]) + 1e-5, then q ← q / Σ_k q_k   (Λ[i] before the step)
//   Λ[i] ← λ0 − λ0·Σ_k q_k log(K q_k) / (α log K)            for every row, then
//   with Λ = Λ[i] read back (a constant):
//   d_k = c·(1 − [k = y]) + s_k − s_y,  m = sg(max_k d_k/Λ)
//   ℓ   = Λ·(log((1/K) Σ_k exp(d_k/Λ − m)) + m) − (α log K / (2 λ0))·(Λ − λ0)²
// and the loss is the batch mean of ℓ. When an index repeats in a batch the
// last row's Λ is written and every such row reads it back (index assignment
// on the CPU). State: Λ, [N], in the logits' dtype, saved as "lambda".
#include <torch/types.h>

#include <cmath>
#include <iterator>
#include <stdexcept>
#include <string>

#include "reglab/method.h"
#include "reglab/plugin.h"
#include "reglab/sample_state.h"

namespace {

// The schema has only inclusive bounds; λ0 divides d, so the smallest
// accepted value stands in for "> 0".
constexpr double kMinLambda0 = 1e-6;
// Σ q log(Kq) < log K because of the 1e-5 floor, so α >= 1 keeps every Λ
// positive; below 1 a confident row gets Λ <= 0 (the official code asks for
// α > 1).
constexpr double kMinAlpha = 1.0;
constexpr double kProbabilityFloor = 1e-5;
// F.normalize's lower bound on the norm it divides by.
constexpr double kNormalizeEps = 1e-12;
constexpr const char* kStateName = "lambda";

constexpr reglab::ParamSpec kParams[] = {
    {.name = "c", .type = reglab::ParamType::kFloat, .default_value = "0.1",
     .min = 0.0, .has_min = true,
     .doc = "margin added to every wrong class (official --margin, 0.1)"},
    {.name = "lambda0", .type = reglab::ParamType::kFloat, .default_value = "10.0",
     .min = kMinLambda0, .has_min = true,
     .doc = "reference temperature: the initial and largest per-sample Lambda (official: 10)"},
    {.name = "alpha", .type = reglab::ParamType::kFloat, .default_value = "2.0",
     .min = kMinAlpha, .has_min = true,
     .doc = "strength of the KL regulariser on Lambda; Lambda stays in (lambda0*(1 - 1/alpha), lambda0] (official: 2)"},
    {.name = "softplus", .type = reglab::ParamType::kBool, .default_value = "false",
     .doc = "apply softplus to the logits before normalising (official: only for CIFAR-100)"},
};

class AldrKl final : public reglab::Method {
 public:
  void setup(const reglab::MethodContext& ctx) override {
    c_ = ctx.params.get_double("c");
    lambda0_ = ctx.params.get_double("lambda0");
    alpha_ = ctx.params.get_double("alpha");
    softplus_ = ctx.params.get_bool("softplus");
    // The core validates against the schema; these guard direct use.
    if (!(c_ >= 0.0)) throw std::invalid_argument("aldr_kl: c must be >= 0, got " + std::to_string(c_));
    if (!(lambda0_ >= kMinLambda0))
      throw std::invalid_argument("aldr_kl: lambda0 must be >= 1e-6, got " + std::to_string(lambda0_));
    if (!(alpha_ >= kMinAlpha))
      throw std::invalid_argument("aldr_kl: alpha must be >= 1, got " + std::to_string(alpha_));
    if (ctx.num_train_samples < 1 || ctx.num_classes < 2)
      throw std::invalid_argument("aldr_kl: needs num_train_samples >= 1 and num_classes >= 2 (log K divides), got " +
                                  std::to_string(ctx.num_train_samples) + " and " + std::to_string(ctx.num_classes));
    if (!c10::isFloatingType(ctx.dtype))
      throw std::invalid_argument(std::string("aldr_kl: the logits dtype must be floating, got ") +
                                  c10::toString(ctx.dtype));
    num_samples_ = ctx.num_train_samples;
    num_classes_ = ctx.num_classes;
    log_k_ = std::log(static_cast<double>(num_classes_));
    // The official code keeps Λ in float32 (N×1); we keep it as [N] in the
    // logits' dtype, which is float32 in the classify paradigm.
    lambda_ = torch::full({num_samples_}, lambda0_, torch::TensorOptions().dtype(ctx.dtype).device(ctx.device));
  }

  torch::Tensor training_loss(const reglab::Batch& batch, const reglab::Outputs& outputs,
                              const reglab::StepContext& /*step*/) override {
    const torch::Tensor& logits = outputs.at("logits");
    check_batch(batch, logits);
    const torch::Tensor& idx = batch.indices;

    const torch::Tensor raw = softplus_ ? torch::softplus(logits) : logits;
    const torch::Tensor s = raw / (raw.abs().sum(1, true) / static_cast<double>(num_classes_));
    // The loss uses the new Λ, so the update comes first (inside the loss
    // hook, as in the official forward).
    {
      torch::NoGradGuard no_grad;
      const torch::Tensor old = lambda_.index_select(0, idx).to(s.scalar_type()).unsqueeze(1);
      torch::Tensor q = torch::softmax(s.detach() / old, 1) + kProbabilityFloor;
      q = q / q.sum(1, true).clamp_min(kNormalizeEps);
      const torch::Tensor kl = (q * torch::log(static_cast<double>(num_classes_) * q)).sum(1);
      const torch::Tensor updated = lambda0_ - lambda0_ * kl / (alpha_ * log_k_);
      reglab::assign_rows(lambda_, idx, updated);
    }
    const torch::Tensor lam = lambda_.index_select(0, idx).to(s.scalar_type()).unsqueeze(1);

    const torch::Tensor extra = -0.5 * alpha_ * log_k_ / lambda0_ * (lam - lambda0_).square();
    const torch::Tensor wrong = 1.0 - torch::one_hot(batch.targets, num_classes_).to(s.scalar_type());
    const torch::Tensor d = (c_ * wrong + (s - s.gather(1, batch.targets.unsqueeze(1)))) / lam;
    // The shift keeps exp finite when d/Λ is large (small Λ); detached as in
    // the official code, so it changes no gradient.
    const torch::Tensor shift = std::get<0>(d.max(1, true)).detach();
    return (lam * (torch::log(torch::exp(d - shift).mean(1, true)) + shift) + extra).mean();
  }

  reglab::StateDict state_dict() const override { return {{kStateName, lambda_}}; }

  void load_state_dict(const reglab::StateDict& state) override {
    const auto it = state.find(kStateName);
    if (it == state.end()) throw std::invalid_argument("aldr_kl: load_state_dict: the state has no 'lambda' tensor");
    const torch::Tensor& given = it->second;
    if (!given.defined() || !given.is_floating_point() || !given.sizes().equals(lambda_.sizes()))
      throw std::invalid_argument("aldr_kl: load_state_dict: 'lambda' must be a floating tensor of shape " +
                                  reglab::shape_text(lambda_) + " (num_train_samples), got " +
                                  (given.defined() ? reglab::shape_text(given) + " " + c10::toString(given.scalar_type())
                                                   : std::string("an undefined tensor")));
    torch::NoGradGuard no_grad;
    lambda_.copy_(given);
  }

 private:
  void check_batch(const reglab::Batch& batch, const torch::Tensor& logits) const {
    TORCH_CHECK(logits.dim() == 2 && logits.size(1) == num_classes_, "aldr_kl: logits must be [B, K] with K = ",
                num_classes_, " (num_classes), got ", logits.sizes());
    TORCH_CHECK(logits.is_floating_point(), "aldr_kl: logits must be floating, got ", logits.scalar_type());
    const std::int64_t b = logits.size(0);
    TORCH_CHECK(batch.targets.defined() && batch.targets.dim() == 1 && batch.targets.size(0) == b &&
                    batch.targets.scalar_type() == torch::kLong,
                "aldr_kl: targets must be int64 [B] with B = ", b, ", got ",
                batch.targets.defined() ? batch.targets.sizes() : torch::IntArrayRef{});
    reglab::check_indices("aldr_kl", batch.indices, b, num_samples_);
  }

  double c_ = 0.1;
  double lambda0_ = 10.0;
  double alpha_ = 2.0;
  bool softplus_ = false;
  double log_k_ = 0.0;
  std::int64_t num_samples_ = 0;
  std::int64_t num_classes_ = 0;
  torch::Tensor lambda_;
};

}  // namespace

REGLAB_PLUGIN(AldrKl,
              .name = "aldr_kl", .version = "1.0.0",
              .summary = "LDR-KL with a per-sample temperature Lambda_i set from the KL of the row's own softmax",
              .paper = "Zhu, Ying, Yang 2023, Label Distributionally Robust Losses for Multi-class Classification: "
                       "Consistency, Robustness and Adaptivity",
              .paradigms = reglab::kClassify,
              .params = kParams, .num_params = std::size(kParams))
