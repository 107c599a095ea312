#include "plugins/method_handle.h"

#include <c10/util/Exception.h>

#include <cmath>
#include <set>

#include "config/config.h"
#include "config/schema.h"
#include "util/util.h"

namespace reglab::plugins {

template <class F>
decltype(auto) MethodHandle::call(const char* hook, F&& f) const {
  auto fail = [&](const std::string& what) {
    return PluginError("method '" + plugin_.name() + "' (" + plugin_.path.filename().string() + ") failed in " +
                       hook + ": " + what);
  };
  try {
    return f();
  } catch (const PluginError&) {
    throw;
  } catch (const c10::Error& e) {
    throw fail(e.what_without_backtrace());
  } catch (const std::exception& e) {
    throw fail(e.what());
  } catch (...) {
    throw fail("unknown exception");
  }
}

MethodHandle::MethodHandle(const LoadedPlugin& plugin) : plugin_(plugin) {
  method_ = call("create", [&] { return plugin_.info->create(); });
  if (method_ == nullptr)
    throw PluginError("method '" + plugin_.name() + "' (" + plugin_.path.string() + ") failed in create: factory returned null");
}

MethodHandle::~MethodHandle() {
  if (method_ != nullptr) {
    try {
      plugin_.info->destroy(method_);
    } catch (...) {
      // A destructor must not throw; a throwing plugin destructor is ignored.
    }
  }
}

void MethodHandle::setup(const MethodContext& ctx) { call("setup", [&] { method_->setup(ctx); }); }

torch::Tensor MethodHandle::training_loss(const Batch& batch, const Outputs& outputs, const StepContext& step) {
  return call("training_loss", [&] { return method_->training_loss(batch, outputs, step); });
}

void MethodHandle::after_optimizer_step(const Batch& batch, const Outputs& outputs, const StepContext& step) {
  call("after_optimizer_step", [&] { method_->after_optimizer_step(batch, outputs, step); });
}

void MethodHandle::on_epoch_end(const StepContext& step) {
  call("on_epoch_end", [&] { method_->on_epoch_end(step); });
}

StateDict MethodHandle::state_dict() const {
  return call("state_dict", [&] { return method_->state_dict(); });
}

void MethodHandle::load_state_dict(const StateDict& state) {
  call("load_state_dict", [&] { method_->load_state_dict(state); });
}

std::vector<ParamGroup> MethodHandle::transform_model(torch::nn::Module& model, const ModelContext& ctx) {
  return call("transform_model", [&] {
    std::vector<ParamGroup> groups = method_->transform_model(model, ctx);
    std::set<const void*> seen;
    for (std::size_t g = 0; g < groups.size(); ++g) {
      const std::string where = "parameter group " + std::to_string(g);
      if (!std::isfinite(groups[g].weight_decay) || groups[g].weight_decay < 0)
        throw std::invalid_argument(where + ": weight_decay must be finite and >= 0, got " +
                                    std::to_string(groups[g].weight_decay));
      for (std::size_t i = 0; i < groups[g].params.size(); ++i) {
        const torch::Tensor& t = groups[g].params[i];
        const std::string what = where + ", tensor " + std::to_string(i);
        if (!t.defined()) throw std::invalid_argument(what + " is undefined");
        if (!t.is_floating_point() || !t.is_leaf() || !t.requires_grad())
          throw std::invalid_argument(what + " must be a floating leaf tensor that requires grad");
        if (!seen.insert(t.unsafeGetTensorImpl()).second)
          throw std::invalid_argument(what + " is already in an earlier group or position");
      }
    }
    return groups;
  });
}

void MethodHandle::before_forward(bool training) {
  call("before_forward", [&] { method_->before_forward(training); });
}

void MethodHandle::tta_setup(TtaModel& model, const TtaContext& ctx) {
  call("tta_setup", [&] { method_->tta_setup(model, ctx); });
}

RlvrRequirements MethodHandle::rlvr_requirements() const {
  return call("rlvr_requirements", [&] { return method_->rlvr_requirements(); });
}

std::vector<double> MethodHandle::rewards(const RlvrGroup& group, const StepContext& step) {
  return call("rewards", [&] {
    std::vector<double> r = method_->rewards(group, step);
    if (r.size() != group.answers.size()) {
      throw std::runtime_error("returned " + std::to_string(r.size()) + " rewards for a group of " +
                               std::to_string(group.answers.size()) + " responses");
    }
    for (std::size_t i = 0; i < r.size(); ++i) {
      if (!std::isfinite(r[i])) throw std::runtime_error("reward " + std::to_string(i) + " is not finite");
    }
    return r;
  });
}

std::optional<RlvrBatchEdit> MethodHandle::rlvr_extra_rows(RlvrSampler& sampler, const StepContext& step) {
  return call("rlvr_extra_rows", [&] {
    std::optional<RlvrBatchEdit> edit = method_->rlvr_extra_rows(sampler, step);
    if (!edit) return edit;
    const auto rows = static_cast<std::int64_t>(edit->rows.rewards.size());
    if (edit->advantages.size() != edit->keep.size()) {
      throw std::runtime_error("the edit keeps " + std::to_string(edit->keep.size()) + " rows but gives " +
                               std::to_string(edit->advantages.size()) + " advantages");
    }
    if (static_cast<std::int64_t>(edit->keep.size()) > sampler.batch_rows) {
      throw std::runtime_error("the edit replaces " + std::to_string(edit->keep.size()) + " rows of a batch of " +
                               std::to_string(sampler.batch_rows));
    }
    for (std::size_t i = 0; i < edit->keep.size(); ++i) {
      if (edit->keep[i] < 0 || edit->keep[i] >= rows)
        throw std::runtime_error("kept row " + std::to_string(edit->keep[i]) + " is outside the " +
                                 std::to_string(rows) + " sampled rows");
      if (!std::isfinite(edit->advantages[i]))
        throw std::runtime_error("advantage " + std::to_string(i) + " is not finite");
    }
    return edit;
  });
}

RlvrLoss MethodHandle::policy_loss(const RlvrBatch& batch, const StepContext& step) {
  return call("policy_loss", [&] {
    RlvrLoss out = method_->policy_loss(batch, step);
    if (!out.loss.defined() || out.loss.numel() != 1) throw std::runtime_error("the loss must be a scalar tensor");
    return out;
  });
}

TtaStepResult MethodHandle::tta_step(const torch::Tensor& inputs, const StepContext& step) {
  return call("tta_step", [&] {
    TtaStepResult result = method_->tta_step(inputs, step);
    const std::int64_t batch = inputs.size(0);
    if (!result.logits.defined() || result.logits.dim() != 2 || result.logits.size(0) != batch) {
      throw std::runtime_error("returned logits must be [" + std::to_string(batch) + ", K] for a batch of " +
                               std::to_string(batch));
    }
    if (result.num_used < 0 || result.num_used > batch) {
      throw std::runtime_error("num_used " + std::to_string(result.num_used) + " is outside [0, " +
                               std::to_string(batch) + "]");
    }
    return result;
  });
}

namespace {

ParamValue to_param_value(const ParamSpec& spec, const config::Json& v) {
  switch (spec.type) {
    case ParamType::kBool: return v.get<bool>();
    case ParamType::kInt: return v.get<std::int64_t>();
    case ParamType::kFloat: return v.get<double>();
    case ParamType::kString: return v.get<std::string>();
    case ParamType::kIntList: return v.get<std::vector<std::int64_t>>();
    case ParamType::kFloatList: return v.get<std::vector<double>>();
    case ParamType::kStringList: return v.get<std::vector<std::string>>();
  }
  throw std::invalid_argument(std::string("parameter '") + spec.name + "' has an unknown type");
}

}  // namespace

Params resolve_params(const PluginInfo& info, const std::string& method_table_json) {
  config::Json table = method_table_json.empty() ? config::Json::object() : config::Json::parse(method_table_json);
  if (!table.is_object()) throw std::invalid_argument("method parameters must be a table");
  table.erase("name");
  std::map<std::string, ParamValue> values;
  std::vector<std::string> declared;
  for (std::size_t i = 0; i < info.num_params; ++i) {
    const ParamSpec& spec = info.params[i];
    declared.push_back(spec.name);
    config::Json v = table.contains(spec.name) ? table.at(spec.name) : config::parse_default(spec);
    std::string problem = config::check_value(spec, v);
    if (!problem.empty())
      throw std::invalid_argument(std::string("method '") + info.name + "' parameter '" + spec.name + "': " + problem);
    values[spec.name] = to_param_value(spec, v);
  }
  for (const auto& [key, value] : table.items()) {
    if (std::find(declared.begin(), declared.end(), key) == declared.end()) {
      std::string msg = std::string("method '") + info.name + "' has no parameter '" + key + "'";
      std::string near = config::nearest(key, declared);
      if (!near.empty()) msg += " (did you mean '" + near + "'?)";
      throw std::invalid_argument(msg);
    }
  }
  return Params(std::move(values));
}

}  // namespace reglab::plugins
