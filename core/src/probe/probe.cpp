#include "probe/probe.h"

#include <nlohmann/json.hpp>
#include <torch/types.h>

#include <algorithm>
#include <cstdint>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "plugins/method_handle.h"
#include "probe/request_parts.h"
#include "probe/tensor_json.h"
#include "probe/rlvr_probe.h"
#include "probe/tta_probe.h"
#include "reglab/method.h"

namespace reglab::probe {
namespace {

using nlohmann::json;

using namespace detail;
constexpr std::string_view kRequestKeys[] = {"method",       "params", "dtype", "num_samples", "num_classes",
                                             "total_epochs", "state",  "steps", "paradigm"};
constexpr std::string_view kStepKeys[] = {"logits", "labels", "indices", "epoch", "attention_logits", "attention_mask"};

struct Step {
  torch::Tensor logits;   // [B, K], the probe dtype
  torch::Tensor labels;   // [B] int64
  torch::Tensor indices;  // [B] int64
  std::int64_t epoch = 0;
  torch::Tensor attention;  // mil: [B, H, N], the probe dtype
  torch::Tensor mask;       // mil, optional: bool [B, N]
};

// mil steps carry the attention logits of B bags and, for bags of different
// sizes, which entries are real instances.
void parse_attention(const json& s, const std::string& prefix, torch::ScalarType dtype, Step& step) {
  const std::int64_t b = step.logits.size(0);
  if (!s.contains("attention_logits"))
    bad(prefix + "attention_logits is missing (the mil paradigm gives B bags x H heads x N instances)");
  step.attention = tensor_field(s.at("attention_logits"), dtype, prefix + "attention_logits");
  if (step.attention.dim() != 3 || step.attention.size(0) != b || step.attention.size(1) == 0 ||
      step.attention.size(2) == 0)
    bad(prefix + "attention_logits must be " + std::to_string(b) +
        " bags (one per logits row) of H >= 1 heads of N >= 1 numbers, got shape " + shape_text(step.attention));
  if (!s.contains("attention_mask")) return;
  const torch::Tensor m = tensor_field(s.at("attention_mask"), torch::kLong, prefix + "attention_mask");
  if (m.dim() != 2 || m.size(0) != b || m.size(1) != step.attention.size(2))
    bad(prefix + "attention_mask must be " + std::to_string(b) + " rows of " + std::to_string(step.attention.size(2)) +
        " zeros and ones (one per instance), got shape " + shape_text(m));
  const auto* v = m.data_ptr<std::int64_t>();
  for (std::int64_t i = 0; i < m.numel(); ++i)
    if (v[i] != 0 && v[i] != 1)
      bad(prefix + "attention_mask[" + std::to_string(i / m.size(1)) + "][" + std::to_string(i % m.size(1)) +
          "] = " + std::to_string(v[i]) + " is not 0 or 1");
  step.mask = m.to(torch::kBool);
  const torch::Tensor sizes = m.sum(1);
  for (std::int64_t i = 0; i < b; ++i)
    if (sizes[i].item<std::int64_t>() == 0) bad(prefix + "attention_mask[" + std::to_string(i) + "]: the bag is empty");
}

// `prefix` is "steps[i]." or "" for a step given at the top level.
Step parse_step(const json& s, const std::string& prefix, torch::ScalarType dtype, bool mil) {
  Step step;
  if (!s.contains("logits")) bad(prefix + "logits is missing");
  step.logits = tensor_field(s.at("logits"), dtype, prefix + "logits");
  if (step.logits.dim() != 2)
    bad(prefix + "logits must be a list of B rows of K numbers, got shape " + shape_text(step.logits));
  const std::int64_t b = step.logits.size(0);
  if (b == 0 || step.logits.size(1) == 0) bad(prefix + "logits is empty (shape " + shape_text(step.logits) + ")");

  if (!s.contains("labels")) bad(prefix + "labels is missing");
  step.labels = tensor_field(s.at("labels"), torch::kLong, prefix + "labels");
  if (step.labels.dim() != 1 || step.labels.size(0) != b)
    bad(prefix + "labels must be a list of " + std::to_string(b) + " integers (one per logits row), got shape " +
        shape_text(step.labels));

  if (s.contains("indices")) {
    step.indices = tensor_field(s.at("indices"), torch::kLong, prefix + "indices");
    if (step.indices.dim() != 1 || step.indices.size(0) != b)
      bad(prefix + "indices must be a list of " + std::to_string(b) + " integers, got shape " +
          shape_text(step.indices));
    const auto* idx = step.indices.data_ptr<std::int64_t>();
    for (std::int64_t i = 0; i < b; ++i)
      if (idx[i] < 0) bad(prefix + "indices[" + std::to_string(i) + "] = " + std::to_string(idx[i]) + " is negative");
  } else {
    step.indices = torch::arange(b, torch::kLong);
  }
  step.epoch = int_field(s, "epoch", prefix, 0, 0);
  if (mil) {
    parse_attention(s, prefix, dtype, step);
  } else {
    for (const char* key : {"attention_logits", "attention_mask"})
      if (s.contains(key)) bad(prefix + key + " is only given with \"paradigm\": \"mil\"");
  }
  return step;
}

StateDict parse_state(const json& given, const StateDict& current, const std::string& method) {
  if (!given.is_object()) bad("state must be an object of name -> nested list");
  std::string names;
  for (const auto& [name, t] : current) names += (names.empty() ? "" : ", ") + name;
  StateDict state;
  for (const auto& [name, value] : given.items()) {
    auto it = current.find(name);
    if (it == current.end())
      bad("state." + name + " is not part of the state of method '" + method + "' (" +
          (names.empty() ? std::string("it keeps no state") : "it has: " + names) + ")");
    torch::Tensor t = tensor_field(value, it->second.scalar_type(), "state." + name);
    if (t.sizes() != it->second.sizes())
      bad("state." + name + " has shape " + shape_text(t) + ", the method's is " + shape_text(it->second));
    state[name] = t.to(it->second.device());
  }
  return state;
}

// A request checked and converted; sizes resolved.
struct Request {
  torch::ScalarType dtype = torch::kDouble;
  std::vector<Step> steps;
  bool listed = false;  // given as "steps" rather than one step at the top level
  std::int64_t num_samples = 0, num_classes = 0, total_epochs = 1;

  std::string step_name(std::size_t i) const { return listed ? "steps[" + std::to_string(i) + "]." : ""; }
};

Request parse_request(const json& request, bool mil) {
  Request r;
  // One step at the top level, or a list of steps; never both.
  r.listed = request.contains("steps");
  if (r.listed)
    for (std::string_view key : kStepKeys)
      if (request.contains(key)) bad(std::string(key) + " at the top level cannot be combined with steps");
  reject_unknown_keys(request, kRequestKeys, r.listed ? Keys() : Keys(kStepKeys), "the request");

  r.dtype = dtype_field(request, torch::kDouble);

  if (r.listed) {
    const json& list = request.at("steps");
    if (!list.is_array() || list.empty()) bad("steps must be a non-empty list of step objects");
    for (std::size_t i = 0; i < list.size(); ++i) {
      const std::string where = "steps[" + std::to_string(i) + "]";
      if (!list[i].is_object()) bad(where + " must be an object");
      reject_unknown_keys(list[i], kStepKeys, {}, where);
      r.steps.push_back(parse_step(list[i], where + ".", r.dtype, mil));
    }
  } else {
    if (!request.contains("logits")) bad("logits is missing (give logits/labels at the top level, or steps)");
    r.steps.push_back(parse_step(request, "", r.dtype, mil));
  }

  // Sizes: given, or implied by the steps; every step must agree with them.
  r.num_classes = int_field(request, "num_classes", "", r.steps[0].logits.size(1), 1);
  std::int64_t max_index = 0;
  for (std::size_t i = 0; i < r.steps.size(); ++i) {
    const Step& s = r.steps[i];
    if (s.logits.size(1) != r.num_classes)
      bad(r.step_name(i) + "logits has " + std::to_string(s.logits.size(1)) + " columns, expected " +
          std::to_string(r.num_classes) +
          (request.contains("num_classes") ? " (num_classes)" : " (as the first step)"));
    const auto* y = s.labels.data_ptr<std::int64_t>();
    for (std::int64_t j = 0; j < s.labels.size(0); ++j)
      if (y[j] < 0 || y[j] >= r.num_classes)
        bad(r.step_name(i) + "labels[" + std::to_string(j) + "] = " + std::to_string(y[j]) + " is outside [0, " +
            std::to_string(r.num_classes) + ")");
    max_index = std::max(max_index, s.indices.max().item<std::int64_t>());
  }
  r.num_samples = int_field(request, "num_samples", "", max_index + 1, 1);
  r.total_epochs = int_field(request, "total_epochs", "", 1, 1);
  for (std::size_t i = 0; i < r.steps.size(); ++i) {
    const std::int64_t top = r.steps[i].indices.max().item<std::int64_t>();
    if (top >= r.num_samples)
      bad(r.step_name(i) + "indices contains " + std::to_string(top) + ", which is not below num_samples " +
          std::to_string(r.num_samples));
    if (r.steps[i].epoch >= r.total_epochs)
      bad(r.step_name(i) + "epoch " + std::to_string(r.steps[i].epoch) + " is not below total_epochs " +
          std::to_string(r.total_epochs) + " (set total_epochs)");
  }
  return r;
}

}  // namespace

json run_probe(const json& request, const plugins::LoadedPlugin& plugin) {
  if (!request.is_object()) bad("expected a JSON object, got " + request.dump());
  const std::string method = plugin.name();
  if (request.contains("method") && request.at("method") != method)
    bad("method " + request.at("method").dump() + " does not match the plugin given ('" + method + "')");
  // The paradigm whose hooks to run: as asked, else classify when the method
  // supports it, else mil, else tta, else rlvr.
  const std::uint32_t supported = plugin.info->paradigms;
  Paradigm paradigm = (supported & kClassify) ? kClassify
                      : (supported & kMil)    ? kMil
                      : (supported & kTta)    ? kTta
                      : (supported & kRlvr)   ? kRlvr
                                              : kClassify;
  if (request.contains("paradigm")) {
    const json& p = request.at("paradigm");
    if (p == "mil") paradigm = kMil;
    else if (p == "classify") paradigm = kClassify;
    else if (p == "tta") paradigm = kTta;
    else if (p == "rlvr") paradigm = kRlvr;
    else bad("paradigm must be \"classify\", \"mil\" (training_loss), \"tta\" (tta_step) or \"rlvr\" (rewards, "
             "policy_loss), got " + p.dump());
  }
  if (paradigm == kTta) {
    if (!(supported & kTta)) bad("method '" + method + "' does not support the tta paradigm");
    return run_tta_probe(request, plugin);
  }
  if (paradigm == kRlvr) {
    if (!(supported & kRlvr)) bad("method '" + method + "' does not support the rlvr paradigm");
    return run_rlvr_probe(request, plugin);
  }
  const char* paradigm_name = paradigm == kMil ? "mil" : "classify";
  if (!(plugin.info->paradigms & paradigm))
    bad("method '" + method + "' does not support the " + paradigm_name +
        " paradigm");
  const Request r = parse_request(request, paradigm == kMil);
  const std::vector<Step>& steps = r.steps;
  const std::int64_t total_epochs = r.total_epochs;

  const Params params = request_params(request, plugin);

  CollectingLogger logger;
  CollectingSink sink;
  const MethodContext ctx{params,        logger,       sink, paradigm, r.num_samples, r.num_classes,
                          total_epochs, torch::kCPU, r.dtype};
  plugins::MethodHandle handle(plugin);
  handle.setup(ctx);
  if (request.contains("state")) handle.load_state_dict(parse_state(request.at("state"), handle.state_dict(), method));

  json out = {{"method", method},
              {"version", plugin.info->version},
              {"dtype", dtype_name(r.dtype)},
              {"paradigm", paradigm_name},
              {"num_samples", r.num_samples},
              {"num_classes", r.num_classes},
              {"total_epochs", total_epochs},
              {"params", params_to_json(params)}};
  if (!sink.empty()) out["metrics"] = sink.take();

  torch::AutoGradMode grad_mode(true);
  json results = json::array();
  for (std::size_t i = 0; i < steps.size(); ++i) {
    const Step& s = steps[i];
    const auto step_index = static_cast<std::int64_t>(i);
    // The paradigm ends an epoch before the first batch of the next one.
    if (i > 0 && s.epoch != steps[i - 1].epoch)
      handle.on_epoch_end(StepContext{steps[i - 1].epoch, total_epochs, step_index, logger, sink});

    const torch::Tensor logits = s.logits.clone().requires_grad_(true);
    Outputs outputs;
    outputs.set("logits", logits);
    torch::Tensor attention;
    if (s.attention.defined()) {
      attention = s.attention.clone().requires_grad_(true);
      outputs.set("attention_logits", attention);
      if (s.mask.defined()) outputs.set("attention_mask", s.mask);
    }
    const Batch batch{torch::Tensor(), s.labels, s.indices};
    const StepContext step{s.epoch, total_epochs, step_index, logger, sink};

    const torch::Tensor loss = handle.training_loss(batch, outputs, step);
    if (!loss.defined() || loss.dim() != 0 || !loss.is_floating_point())
      throw std::runtime_error("probe: method '" + method + "' returned " +
                               (loss.defined() ? "a loss of shape " + shape_text(loss) : std::string("no loss")) +
                               " at " + r.step_name(i) + "training_loss; expected a floating scalar");
    if (!loss.requires_grad())
      throw std::runtime_error("probe: method '" + method + "' returned a loss that does not depend on the logits" +
                               std::string(attention.defined() ? " or the attention logits" : ""));
    loss.backward();
    const torch::Tensor grad = logits.grad().defined() ? logits.grad() : torch::zeros_like(logits);
    handle.after_optimizer_step(batch, outputs, step);

    json result = {{"loss", tensor_to_json(loss)},
                   {"grad_logits", tensor_to_json(grad)},
                   {"state", state_to_json(handle.state_dict())}};
    if (attention.defined())
      result["grad_attention_logits"] =
          tensor_to_json(attention.grad().defined() ? attention.grad() : torch::zeros_like(attention));
    if (!sink.empty()) result["metrics"] = sink.take();
    results.push_back(std::move(result));
  }
  out["steps"] = std::move(results);
  if (!logger.empty()) out["log"] = logger.take();
  return out;
}

json run_probe(const json& request) {
  if (!request.is_object()) bad("expected a JSON object, got " + request.dump());
  if (!request.contains("method") || !request.at("method").is_string()) bad("method is missing (a method name string)");
  const std::string name = request.at("method").get<std::string>();
  const plugins::LoadedPlugin* plugin = nullptr;
  try {
    plugin = &plugins::registry().get(name);
  } catch (const plugins::PluginError& e) {
    bad(e.what());
  }
  return run_probe(request, *plugin);
}

}  // namespace reglab::probe
