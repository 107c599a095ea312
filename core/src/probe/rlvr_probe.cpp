#include "probe/rlvr_probe.h"

#include <reglab/rlvr.h>
#include <torch/types.h>
#include <torch/utils.h>

#include <cmath>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "plugins/method_handle.h"
#include "probe/request_parts.h"
#include "probe/tensor_json.h"

namespace reglab::probe {
namespace {

using nlohmann::json;
using namespace detail;

constexpr std::string_view kRequestKeys[] = {"method", "paradigm", "params", "dtype", "total_steps", "steps"};
constexpr std::string_view kStepKeys[] = {"groups", "loss"};
constexpr std::string_view kGroupKeys[] = {"answers", "embeddings", "truth"};
constexpr std::string_view kLossKeys[] = {"logits",       "tokens",     "old_log_prob",
                                          "ref_log_prob", "advantages", "response_mask"};

RlvrGroup parse_group(const json& g, const std::string& where, torch::ScalarType dtype, const RlvrRequirements& needs,
                      std::int64_t position) {
  if (!g.is_object()) bad(where + " must be an object");
  reject_unknown_keys(g, kGroupKeys, {}, where);
  if (!g.contains("answers") || !g.at("answers").is_array() || g.at("answers").empty())
    bad(where + ".answers must be a non-empty list of integers or nulls (null = no parseable answer)");
  RlvrGroup group;
  group.prompt = position;
  for (std::size_t i = 0; i < g.at("answers").size(); ++i) {
    const json& a = g.at("answers")[i];
    if (a.is_null())
      group.answers.emplace_back(std::nullopt);
    else if (a.is_number_integer())
      group.answers.emplace_back(a.get<std::int64_t>());
    else
      bad(where + ".answers[" + std::to_string(i) + "] must be an integer or null, got " + a.dump());
  }
  const auto n = static_cast<std::int64_t>(group.answers.size());
  if (g.contains("embeddings")) {
    group.embeddings = tensor_field(g.at("embeddings"), dtype, where + ".embeddings");
    if (group.embeddings.dim() != 2 || group.embeddings.size(0) != n || group.embeddings.size(1) == 0)
      bad(where + ".embeddings must be [N, D] with one row per answer (N = " + std::to_string(n) + "), got shape " +
          shape_text(group.embeddings));
  } else if (needs.embeddings) {
    bad(where + ".embeddings is missing: the method asks for response embeddings");
  }
  if (g.contains("truth")) {
    if (!g.at("truth").is_number_integer()) bad(where + ".truth must be an integer");
    // As in the paradigm, only a method that asks for the truth sees it.
    if (needs.ground_truth) group.truth = g.at("truth").get<std::int64_t>();
  } else if (needs.ground_truth) {
    bad(where + ".truth is missing: the method reads the true answer");
  }
  return group;
}

struct LossInput {
  torch::Tensor logits;  // leaf, [B, T, V]
  RlvrBatch batch;
};

torch::Tensor field_2d(const json& l, const char* key, const std::string& where, torch::ScalarType dtype,
                       std::int64_t b, std::int64_t t) {
  if (!l.contains(key)) bad(where + "." + key + " is missing");
  torch::Tensor x = tensor_field(l.at(key), dtype, where + "." + key);
  if (x.dim() != 2 || x.size(0) != b || x.size(1) != t)
    bad(where + "." + key + " must be [B, T] = [" + std::to_string(b) + ", " + std::to_string(t) +
        "] like logits, got " + shape_text(x));
  return x;
}

LossInput parse_loss(const json& l, const std::string& where, torch::ScalarType dtype) {
  if (!l.is_object()) bad(where + " must be an object");
  reject_unknown_keys(l, kLossKeys, {}, where);
  if (!l.contains("logits"))
    bad(where + ".logits is missing ([B, T, V]: logits / temperature at each response position)");
  LossInput in;
  in.logits = tensor_field(l.at("logits"), dtype, where + ".logits");
  if (in.logits.dim() != 3 || in.logits.numel() == 0)
    bad(where + ".logits must be a non-empty [B, T, V] tensor, got shape " + shape_text(in.logits));
  const std::int64_t b = in.logits.size(0), t = in.logits.size(1), v = in.logits.size(2);
  const torch::Tensor tokens = field_2d(l, "tokens", where, torch::kDouble, b, t);
  if ((tokens != tokens.round()).any().item<bool>() || (tokens < 0).any().item<bool>() ||
      (tokens >= static_cast<double>(v)).any().item<bool>())
    bad(where + ".tokens must hold integers in [0, " + std::to_string(v) + ")");
  in.batch.old_log_prob = field_2d(l, "old_log_prob", where, dtype, b, t);
  in.batch.ref_log_prob =
      l.contains("ref_log_prob") ? field_2d(l, "ref_log_prob", where, dtype, b, t) : in.batch.old_log_prob.clone();
  in.batch.response_mask =
      l.contains("response_mask") ? field_2d(l, "response_mask", where, dtype, b, t) : torch::ones({b, t}, dtype);
  if (((in.batch.response_mask != 0) & (in.batch.response_mask != 1)).any().item<bool>())
    bad(where + ".response_mask must hold 0 or 1");
  if (!l.contains("advantages")) bad(where + ".advantages is missing ([B], one per response)");
  const torch::Tensor adv = tensor_field(l.at("advantages"), dtype, where + ".advantages");
  if (adv.dim() != 1 || adv.size(0) != b)
    bad(where + ".advantages must be [B] with B = " + std::to_string(b) + ", got shape " + shape_text(adv));
  in.batch.advantages = rlvr::broadcast_advantages(adv, in.batch.response_mask);
  in.logits.requires_grad_(true);
  in.batch.logits = in.logits;
  in.batch.log_prob =
      in.logits.log_softmax(-1).gather(-1, tokens.to(torch::kLong).unsqueeze(-1)).squeeze(-1) * in.batch.response_mask;
  in.batch.rows = torch::arange(b, torch::kLong);
  return in;
}

}  // namespace

json run_rlvr_probe(const json& request, const plugins::LoadedPlugin& plugin) {
  reject_unknown_keys(request, kRequestKeys, {}, "the request (rlvr)");
  const torch::ScalarType dtype = dtype_field(request, torch::kDouble);
  if (!request.contains("steps") || !request.at("steps").is_array() || request.at("steps").empty())
    bad("steps must be a non-empty list of {\"groups\": [...], \"loss\": {...}} objects");
  const json& steps = request.at("steps");
  const std::int64_t total = int_field(request, "total_steps", "", static_cast<std::int64_t>(steps.size()), 1);
  const Params params = request_params(request, plugin);

  torch::AutoGradMode grad_mode(true);
  CollectingLogger logger;
  CollectingSink sink;
  const MethodContext ctx{params, logger, sink, kRlvr, 0, 0, total, torch::kCPU, dtype};
  plugins::MethodHandle handle(plugin);
  handle.setup(ctx);
  const RlvrRequirements needs = handle.rlvr_requirements();

  json out = {{"method", plugin.name()},
              {"version", plugin.info->version},
              {"dtype", dtype_name(dtype)},
              {"paradigm", "rlvr"},
              {"requirements", {{"ground_truth", needs.ground_truth}, {"embeddings", needs.embeddings}}},
              {"params", params_to_json(params)}};
  json results = json::array();
  for (std::size_t i = 0; i < steps.size(); ++i) {
    const std::string where = "steps[" + std::to_string(i) + "]";
    const json& s = steps[i];
    if (!s.is_object()) bad(where + " must be an object");
    reject_unknown_keys(s, kStepKeys, {}, where);
    if (!s.contains("groups") && !s.contains("loss")) bad(where + " has neither groups nor loss");
    const StepContext sctx{static_cast<std::int64_t>(i), total, static_cast<std::int64_t>(i), logger, sink};
    json result = json::object();
    if (s.contains("groups")) {
      if (!s.at("groups").is_array()) bad(where + ".groups must be a list of group objects");
      std::vector<RlvrGroup> groups;
      for (std::size_t g = 0; g < s.at("groups").size(); ++g)
        groups.push_back(parse_group(s.at("groups")[g], where + ".groups[" + std::to_string(g) + "]", dtype, needs,
                                     static_cast<std::int64_t>(g)));
      json rewards = json::array();
      for (const RlvrGroup& g : groups) rewards.push_back(handle.rewards(g, sctx));
      result["rewards"] = std::move(rewards);
    }
    if (s.contains("loss")) {
      LossInput in = parse_loss(s.at("loss"), where + ".loss", dtype);
      const RlvrLoss loss = handle.policy_loss(in.batch, sctx);
      loss.loss.backward();
      result["loss"] = loss.loss.item<double>();
      if (std::isfinite(loss.clip_fraction)) result["clip_fraction"] = loss.clip_fraction;
      result["grad_logits"] =
          in.logits.grad().defined() ? tensor_to_json(in.logits.grad()) : tensor_to_json(torch::zeros_like(in.logits));
    }
    result["state"] = state_to_json(handle.state_dict());
    if (!sink.empty()) result["metrics"] = sink.take();
    results.push_back(std::move(result));
  }
  out["steps"] = std::move(results);
  if (!logger.empty()) out["log"] = logger.take();
  return out;
}

}  // namespace reglab::probe
