// plugins/method_handle.h — one Method instance behind the plugin boundary.
//
// Owns the object made by the plugin's factory (destroyed by the plugin's own
// `destroy`). Every hook call is wrapped: an exception escaping plugin code is
// rethrown as PluginError "method '<name>' (<file>) failed in <hook>: <what>".
// A factory that throws or returns null is reported the same way at
// construction. Not thread-safe: one trial, one thread.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "plugins/loader.h"
#include "reglab/method.h"

namespace reglab::plugins {

class MethodHandle {
 public:
  explicit MethodHandle(const LoadedPlugin& plugin);
  ~MethodHandle();
  MethodHandle(const MethodHandle&) = delete;
  MethodHandle& operator=(const MethodHandle&) = delete;

  const LoadedPlugin& plugin() const { return plugin_; }

  void setup(const MethodContext& ctx);
  torch::Tensor training_loss(const Batch& batch, const Outputs& outputs, const StepContext& step);
  void after_optimizer_step(const Batch& batch, const Outputs& outputs, const StepContext& step);
  void on_epoch_end(const StepContext& step);
  StateDict state_dict() const;
  void load_state_dict(const StateDict& state);
  // Also checks the groups: every tensor defined, a floating leaf that
  // requires grad, in one group only; every weight_decay finite and >= 0.
  std::vector<ParamGroup> transform_model(torch::nn::Module& model, const ModelContext& ctx);
  void before_forward(bool training);
  void tta_setup(TtaModel& model, const TtaContext& ctx);
  // Also checks the result: logits [B, K] for the B inputs, 0 <= num_used <= B.
  TtaStepResult tta_step(const torch::Tensor& inputs, const StepContext& step);
  RlvrRequirements rlvr_requirements() const;
  // Also checks the result: one finite reward per answer of the group.
  std::vector<double> rewards(const RlvrGroup& group, const StepContext& step);
  // Also checks the edit: kept indices inside the rows, one finite advantage
  // each, and no more rows than `sampler.batch_rows`.
  std::optional<RlvrBatchEdit> rlvr_extra_rows(RlvrSampler& sampler, const StepContext& step);
  // Also checks the result: a defined scalar loss.
  RlvrLoss policy_loss(const RlvrBatch& batch, const StepContext& step);

 private:
  template <class F>
  decltype(auto) call(const char* hook, F&& f) const;

  LoadedPlugin plugin_;
  Method* method_ = nullptr;
};

// Resolves a method's parameters: the trial's [method] table (without
// "name") checked against the plugin's schema, defaults filled. Throws
// std::invalid_argument naming the parameter on a wrong type, a value out of
// range, or an unknown parameter.
Params resolve_params(const PluginInfo& info, const std::string& method_table_json);

}  // namespace reglab::plugins
