// reglab/method.h — the one trainer interface every method plugin implements.
//
// A paradigm (classify, mil, tta, rlvr) owns the loop: data, model, optimizer,
// evaluation. It calls the hooks of one Method object per trial, from one
// thread, in this order:
//
//   setup(ctx)                                    once, before the first step
//   transform_model(model, mctx)                  once, before the optimizer exists
//   for each epoch:
//     for each batch:
//       [before_forward(true)]                       only if transform_model changed the model
//       loss = training_loss(batch, outputs, step)   outputs of the training forward
//       (backward, optimizer step — done by the paradigm)
//       after_optimizer_step(batch, outputs, step)   same outputs, for state updates
//     on_epoch_end(step)
//     [before_forward(false) before each evaluation forward]
//
// state_dict()/load_state_dict() carry everything the method needs to resume
// a run mid-way (per-sample buffers, counters); the paradigm saves it with the
// model's checkpoint. Defaults do nothing, so a stateless method overrides
// training_loss only.
//
// The tta paradigm (test-time adaptation) uses its own two hooks instead of
// the training ones; see tta_setup and tta_step below:
//
//   setup(ctx)                                    once per trial
//   for each segment of the stream that starts from the source model
//   (each corruption of the standard protocol; once for continual/gradual):
//     (the paradigm restores the source weights in place)
//     tta_setup(model, tctx)                      choose what adapts, modes, optimizer
//     for each test batch: result = tta_step(inputs, step)
//
// The rlvr paradigm (RL on a policy that writes checkable answers) owns
// sampling, old and reference log-probs, advantages and the optimizer; a
// method supplies the rewards and the loss:
//
//   setup(ctx)                                    once per trial
//   rlvr_requirements()                           once, after setup
//   for each RL step:
//     for each prompt's group of votes: rewards(group, step)
//     (the paradigm keeps the first rlvr.trained votes of each group and
//      computes group-relative advantages from their rewards)
//     [rlvr_extra_rows(sampler, step)]            may replace rows of the batch
//     for each PPO epoch, for each mini-batch:
//       loss = policy_loss(batch, step)
//       (backward, gradient clipping, optimizer step — done by the paradigm)
//
// Model transformations (re-parameterisations such as weight norm, spectral
// norm or the weight compander) use transform_model and before_forward; see
// their comments below. The probe has no model and never calls them.
//
// Errors: hooks throw (std::exception or c10::Error) on invalid input; the
// core catches at the plugin boundary and rethrows naming the plugin and hook.
// Plugins log through ctx.log and record metrics through ctx.metrics; they
// never touch spdlog's registry or the database.
#pragma once

#include <torch/types.h>
#include <torch/version.h>

#include <cstdint>
#include <functional>
#include <limits>
#include <memory>
#include <optional>
#include <map>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "reglab/metric_direction.h"
#include "reglab/params.h"
#include "reglab/plugin.h"

#define REGLAB_TORCH_VERSION_STRING TORCH_VERSION

// transform_model takes the paradigm's model; a plugin that overrides it
// includes <torch/nn/module.h> (or the module headers it inspects) itself.
namespace torch::nn {
class Module;
}  // namespace torch::nn

namespace reglab {

enum class LogLevel { kDebug, kInfo, kWarn, kError };

// Where a method's messages go: the trial's log file. Thread-compatible.
class Logger {
 public:
  virtual ~Logger() = default;
  virtual void log(LogLevel level, std::string_view message) = 0;
  void debug(std::string_view m) { log(LogLevel::kDebug, m); }
  void info(std::string_view m) { log(LogLevel::kInfo, m); }
  void warn(std::string_view m) { log(LogLevel::kWarn, m); }
};

// Where a method's own metrics go (stored beside the paradigm's, under the
// key it gives, e.g. "method.mean_entropy"). `step` is the paradigm's step
// counter (the epoch for per-epoch metrics).
//
// declare() states a key's direction (MetricDirection, see
// reglab/metric_direction.h); call it once per key, before or after its first
// record() — in setup() is simplest. Declaring a key again with the same
// direction is a no-op; with another direction it throws
// std::invalid_argument naming the key and both directions. A key recorded
// but never declared is stored without a direction and never ranked (the
// query commands say "no declared direction"). Both calls are
// thread-compatible.
class MetricSink {
 public:
  virtual ~MetricSink() = default;
  virtual void record(std::string_view key, double value, std::int64_t step) = 0;
  virtual void declare(std::string_view key, MetricDirection direction) = 0;
};

// Named model outputs of one forward pass ("logits", later "features",
// "attention_logits"). at() throws naming the missing output.
class Outputs {
 public:
  void set(const std::string& name, torch::Tensor t) { tensors_[name] = std::move(t); }
  bool has(const std::string& name) const { return tensors_.count(name) != 0; }
  const torch::Tensor& at(const std::string& name) const {
    auto it = tensors_.find(name);
    if (it == tensors_.end()) throw std::out_of_range("model output '" + name + "' is not available");
    return it->second;
  }

 private:
  std::map<std::string, torch::Tensor> tensors_;
};

// One training batch of the classify paradigm.
struct Batch {
  torch::Tensor inputs;   // [B, ...] float
  torch::Tensor targets;  // [B] int64, the labels used for training (possibly noisy)
  torch::Tensor indices;  // [B] int64, positions in the training set (stable across epochs)
};

// Given once to setup(). References stay valid for the Method's lifetime.
struct MethodContext {
  const Params& params;
  Logger& log;
  MetricSink& metrics;
  Paradigm paradigm;
  std::int64_t num_train_samples;  // N, for per-sample state
  std::int64_t num_classes;        // K
  std::int64_t total_epochs;       // E
  torch::Device device;
  torch::ScalarType dtype;         // dtype of the logits the method will see
};

// Where the loop is, given to every per-step hook.
struct StepContext {
  std::int64_t epoch;         // 0-based
  std::int64_t total_epochs;  // E
  std::int64_t step;          // global optimizer step, 0-based
  Logger& log;
  MetricSink& metrics;
};

using StateDict = std::map<std::string, torch::Tensor>;

// Tensors the optimizer trains together, with the weight decay it applies to
// them (the coefficient of SGD's and Adam's `weight_decay`, AdamW's
// decoupled decay). Every tensor is a leaf that requires grad, and appears in
// one group only.
struct ParamGroup {
  std::vector<torch::Tensor> params;
  double weight_decay = 0.0;
};

// Given to transform_model: the optimizer the paradigm will build.
struct ModelContext {
  std::string optimizer;  // "sgd", "adam" or "adamw"
  double weight_decay;    // the configured weight decay (optim.weight_decay)
};

// The model a tta method adapts. The paradigm owns it and keeps it alive
// (and at the same address) for the rest of the trial; the method may keep
// a pointer to this struct.
struct TtaModel {
  torch::nn::Module& module;  // the model being adapted, on MethodContext::device
  // Logits [B, K] of `module` or of any copy made with clone(), in the
  // copy's current train/eval mode and under the caller's grad mode.
  std::function<torch::Tensor(torch::nn::Module&, const torch::Tensor&)> forward;
  // A deep copy of `module` (parameters, buffers, train/eval mode); CoTTA's
  // teacher and anchor, the open-set filter's frozen source model.
  std::function<std::shared_ptr<torch::nn::Module>()> clone;
};

// Given to tta_setup each time the stream (re)starts from the source model.
struct TtaContext {
  // Clean test samples that never appear in the stream (for estimates a
  // method makes before adapting, such as EATA's Fisher); [M, ...], M may be 0.
  torch::Tensor held_out_inputs;
  std::int64_t batch_size;  // of the stream, and the batch size to use on held_out_inputs
  std::uint64_t seed;       // for the method's own draws (augmentations, restore masks)
};

// What tta_step returns for one test batch.
struct TtaStepResult {
  torch::Tensor logits;       // [B, K]: the predictions the method's code returns for this batch
  std::int64_t num_used = 0;  // samples whose loss drove an update; 0 when no step was taken
};

// What an rlvr method needs from the paradigm, asked once after setup.
struct RlvrRequirements {
  // The true answer of each prompt in RlvrGroup::truth. Only a supervised
  // baseline asks for it; label-free methods never see it.
  bool ground_truth = false;
  // Response embeddings in RlvrGroup::embeddings (rlvr.embedding says which).
  bool embeddings = false;
};

// One prompt's votes, given to rewards(). Answers are the parsed final
// answers of the responses, in sampling order; nullopt = invalid (no
// parseable final answer).
struct RlvrGroup {
  std::vector<std::optional<std::int64_t>> answers;  // [N] votes
  torch::Tensor embeddings;                          // [N, D] float; undefined unless asked for
  std::optional<std::int64_t> truth;                 // set only with RlvrRequirements::ground_truth
  std::int64_t prompt = 0;                           // 0-based position of the prompt in this step
};

// One mini-batch of responses for policy_loss, [B, T] over response
// positions (T = the longest response of the mini-batch).
struct RlvrBatch {
  torch::Tensor log_prob;       // [B, T] of the sampled tokens under the current policy; differentiable
  torch::Tensor logits;         // [B, T, V] the current policy's logits divided by the temperature; differentiable
  torch::Tensor old_log_prob;   // [B, T] under the policy that sampled them (before this step's update)
  torch::Tensor ref_log_prob;   // [B, T] under the frozen reference (warm-up) policy
  torch::Tensor advantages;     // [B, T] the row's advantage at each response token, 0 at padding
  torch::Tensor response_mask;  // [B, T] float: 1 at response tokens (up to and including <eos>)
  torch::Tensor rows;           // [B] int64: each row's position in the step's batch
};

// What policy_loss returns. clip_fraction is the fraction of response tokens
// whose clipped term was the larger one (NaN when the loss does not clip).
struct RlvrLoss {
  torch::Tensor loss;  // scalar, differentiable in log_prob / logits
  double clip_fraction = std::numeric_limits<double>::quiet_NaN();
};

// Rows sampled for a method by RlvrSampler (AEPO's regulariser batch).
struct RlvrRows {
  std::vector<double> rewards;       // [R] from the method's rewards() on each prompt's group
  std::vector<std::int64_t> prompt;  // [R] the prompt each row answers (position in this step)
  std::int64_t handle = -1;          // the paradigm's reference to the rows' tokens
};

// Lets a method sample more responses during a step.
struct RlvrSampler {
  // n responses to each of `prompts` (positions in this step's prompt list)
  // at `temperature`; rewards come from the method's rewards(), old
  // log-probs are taken at the paradigm's temperature (rlvr.temperature).
  std::function<RlvrRows(const std::vector<std::int64_t>& prompts, std::int64_t n, double temperature)> sample;
  std::int64_t num_prompts = 0;  // prompts in this step
  std::int64_t batch_rows = 0;   // rows of the ordinary batch (prompts × rlvr.trained)
};

// A method's change to a step's batch: rows `keep` of `rows` (indices into
// them), with the given advantages, replace the first keep.size() rows of
// the ordinary batch.
struct RlvrBatchEdit {
  RlvrRows rows;
  std::vector<std::int64_t> keep;
  std::vector<double> advantages;  // one per kept row
};

class Method {
 public:
  virtual ~Method() = default;

  virtual void setup(const MethodContext& /*ctx*/) {}

  // classify / mil: the scalar loss to minimise for this batch; must be
  // differentiable with respect to the outputs.
  virtual torch::Tensor training_loss(const Batch& /*batch*/, const Outputs& /*outputs*/,
                                      const StepContext& /*step*/) {
    throw std::logic_error("training_loss is not implemented by this method");
  }

  // After the optimizer step, with the same outputs (detach them before
  // keeping anything).
  virtual void after_optimizer_step(const Batch& /*batch*/, const Outputs& /*outputs*/,
                                    const StepContext& /*step*/) {}

  virtual void on_epoch_end(const StepContext& /*step*/) {}

  // Lets the method change the model before training, after setup and before
  // the optimizer is built or a checkpoint loaded. The model is on
  // MethodContext::device; the method may register parameters and buffers on
  // its modules (they are then moved, saved in the model's checkpoint and
  // restored in place on resume like any other) and replace the tensors the
  // modules' forward uses.
  //
  // Returns what the optimizer trains. Empty (the default) means the model
  // is untouched: the paradigm trains all of model.parameters() with the
  // configured weight decay and never calls before_forward. Otherwise the
  // optimizer trains exactly these groups, each with its own weight_decay,
  // and the paradigm calls before_forward before every forward pass of the
  // model, training and evaluation alike, so predictions come from the
  // transformed model. Decay on a tensor the optimizer does not hold (a
  // weight derived from trained parameters) is the method's to apply, with
  // ctx.weight_decay, in its own graph (a gradient hook or a loss term).
  //
  // Called again with a fresh model if the paradigm rebuilds it (an
  // unreadable checkpoint): the method then forgets the previous one. Keep
  // references to the modules, not to their parameters' values: a resume
  // overwrites the parameters in place after this call.
  virtual std::vector<ParamGroup> transform_model(torch::nn::Module& /*model*/, const ModelContext& /*ctx*/) {
    return {};
  }

  // Before each forward pass of a model that transform_model changed;
  // `training` is the model's mode. Recompute here whatever the forward uses
  // that derives from trained parameters; grad mode is off during evaluation.
  virtual void before_forward(bool /*training*/) {}

  // tta: called with the model at its source weights. Puts the model in the
  // mode the method's code uses (train mode with batch statistics for Tent,
  // eval for `source`), sets requires_grad on exactly the parameters it
  // adapts, and builds its own optimizer and copies. Called again, with the
  // source weights restored in place, whenever the protocol resets; the
  // method then forgets everything it learned (optimizer moments, moving
  // averages).
  virtual void tta_setup(TtaModel& /*model*/, const TtaContext& /*ctx*/) {
    throw std::logic_error("tta_setup is not implemented by this method");
  }

  // tta: one test batch (no labels). Returns the predictions and how many
  // samples were used; the paradigm scores the predictions as they are
  // returned (before or after the update, as the method's code does).
  virtual TtaStepResult tta_step(const torch::Tensor& /*inputs*/, const StepContext& /*step*/) {
    throw std::logic_error("tta_step is not implemented by this method");
  }

  // rlvr: what the method needs in each RlvrGroup; asked once after setup.
  virtual RlvrRequirements rlvr_requirements() const { return {}; }

  // rlvr: one reward per vote of one prompt's group (group.answers.size()
  // values). The paradigm trains on the first rlvr.trained of them.
  virtual std::vector<double> rewards(const RlvrGroup& /*group*/, const StepContext& /*step*/) {
    throw std::logic_error("rewards is not implemented by this method");
  }

  // rlvr: called once per step after the ordinary batch's advantages are
  // known; a method that adds its own rows (AEPO) samples them with
  // `sampler` and returns the edit. Default: no change.
  virtual std::optional<RlvrBatchEdit> rlvr_extra_rows(RlvrSampler& /*sampler*/, const StepContext& /*step*/) {
    return std::nullopt;
  }

  // rlvr: the loss of one mini-batch. StepContext::epoch is the RL step's
  // 0-based index among total_epochs RL steps.
  virtual RlvrLoss policy_loss(const RlvrBatch& /*batch*/, const StepContext& /*step*/) {
    throw std::logic_error("policy_loss is not implemented by this method");
  }

  virtual StateDict state_dict() const { return {}; }
  virtual void load_state_dict(const StateDict& /*state*/) {}
};

}  // namespace reglab
