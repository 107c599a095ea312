#include "probe/tta_probe.h"

#include <nlohmann/json.hpp>
#include <torch/nn/modules/activation.h>
#include <torch/nn/modules/batchnorm.h>
#include <torch/nn/modules/container/sequential.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/modules/pooling.h>
#include <torch/types.h>
#include <torch/utils.h>

#include <algorithm>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "paradigms/tta_model.h"
#include "plugins/method_handle.h"
#include "probe/request_parts.h"
#include "probe/tensor_json.h"
#include "reglab/method.h"

namespace reglab::probe {
namespace {

using nlohmann::json;
using namespace detail;

constexpr std::string_view kRequestKeys[] = {"method",   "paradigm",   "params", "dtype", "model",
                                             "held_out", "batch_size", "seed",   "steps"};
constexpr std::string_view kStepKeys[] = {"inputs", "reset"};
constexpr std::string_view kLayerKinds[] = {"linear", "conv2d", "batchnorm1d", "batchnorm2d",
                                            "relu",   "flatten", "maxpool2d"};

// One layer's settings object and where it sits in the request.
struct LayerSpec {
  const json& body;
  std::string where;  // "model[2].linear."
  torch::ScalarType dtype;

  bool has(const char* key) const { return body.contains(key); }

  // A tensor of the given rank, or undefined when the key is absent.
  torch::Tensor tensor(const char* key, std::int64_t rank) const {
    if (!has(key)) return {};
    torch::Tensor t = tensor_field(body.at(key), dtype, where + key);
    if (t.dim() != rank || t.numel() == 0)
      bad(where + key + " must be a non-empty tensor of rank " + std::to_string(rank) + ", got shape " +
          shape_text(t));
    return t;
  }

  double number(const char* key, double fallback, double min, double max) const {
    if (!has(key)) return fallback;
    const json& v = body.at(key);
    if (!v.is_number()) bad(where + key + " must be a number, got " + v.dump());
    const double x = v.get<double>();
    if (!(x >= min && x <= max))
      bad(where + key + " must be in [" + std::to_string(min) + ", " + std::to_string(max) + "], got " + v.dump());
    return x;
  }

  std::int64_t integer(const char* key, std::int64_t fallback, std::int64_t min) const {
    return int_field(body, key, where, fallback, min);
  }

  void only(std::initializer_list<std::string_view> keys) const {
    const std::vector<std::string_view> list(keys);
    reject_unknown_keys(body, list, {}, where.substr(0, where.size() - 1));
  }
};

void expect_length(const torch::Tensor& t, std::int64_t n, const std::string& what) {
  if (t.defined() && t.size(0) != n)
    bad(what + " has " + std::to_string(t.size(0)) + " entries, expected " + std::to_string(n) +
        " (one per output feature or channel)");
}

void assign(torch::Tensor& live, const torch::Tensor& given) {
  if (!given.defined()) return;
  torch::NoGradGuard no_grad;
  live.copy_(given);
}

template <typename Options>
Options batchnorm_options(const LayerSpec& l, std::int64_t& channels, std::vector<torch::Tensor>& given) {
  l.only({"num_features", "weight", "bias", "running_mean", "running_var", "eps", "momentum"});
  const char* keys[] = {"weight", "bias", "running_mean", "running_var"};
  channels = l.integer("num_features", 0, 1);
  for (const char* key : keys) {
    given.push_back(l.tensor(key, 1));
    if (!given.back().defined()) continue;
    if (channels == 0) channels = given.back().size(0);
    expect_length(given.back(), channels, l.where + key);
  }
  if (channels == 0) bad(l.where.substr(0, l.where.size() - 1) + " needs num_features or one of its vectors");
  return Options(channels).eps(l.number("eps", 1e-5, 1e-12, 1.0)).momentum(l.number("momentum", 0.1, 0.0, 1.0));
}

template <typename BatchNorm, typename Options>
void add_batchnorm(torch::nn::Sequential& seq, const LayerSpec& l) {
  std::int64_t channels = 0;
  std::vector<torch::Tensor> given;
  BatchNorm bn(batchnorm_options<Options>(l, channels, given));
  bn->to(l.dtype);
  assign(bn->weight, given[0]);
  assign(bn->bias, given[1]);
  assign(bn->running_mean, given[2]);
  assign(bn->running_var, given[3]);
  seq->push_back(bn);
}

void add_layer(torch::nn::Sequential& seq, const json& entry, std::size_t index, torch::ScalarType dtype) {
  const std::string at = "model[" + std::to_string(index) + "]";
  std::string kinds;
  for (std::string_view k : kLayerKinds) kinds += (kinds.empty() ? "" : ", ") + std::string(k);
  if (!entry.is_object() || entry.size() != 1)
    bad(at + " must be an object with one key, the layer's kind (" + kinds + ")");
  const std::string kind = entry.begin().key();
  if (std::find(std::begin(kLayerKinds), std::end(kLayerKinds), kind) == std::end(kLayerKinds))
    bad(at + ": unknown layer '" + kind + "' (expected " + kinds + ")");
  if (!entry.begin().value().is_object()) bad(at + "." + kind + " must be an object of its settings ({} for none)");
  const LayerSpec l{entry.begin().value(), at + "." + kind + ".", dtype};

  if (kind == "linear" || kind == "conv2d") {
    const bool conv = kind == "conv2d";
    if (conv) l.only({"weight", "bias", "stride", "padding"});
    else l.only({"weight", "bias"});
    if (!l.has("weight")) bad(l.where + "weight is missing");
    const torch::Tensor w = l.tensor("weight", conv ? 4 : 2);
    const torch::Tensor b = l.tensor("bias", 1);
    expect_length(b, w.size(0), l.where + "bias");
    if (conv) {
      torch::nn::Conv2d layer(torch::nn::Conv2dOptions(w.size(1), w.size(0), {w.size(2), w.size(3)})
                                  .stride(l.integer("stride", 1, 1))
                                  .padding(l.integer("padding", 0, 0))
                                  .bias(b.defined()));
      layer->to(dtype);
      assign(layer->weight, w);
      assign(layer->bias, b);
      seq->push_back(layer);
    } else {
      torch::nn::Linear layer(torch::nn::LinearOptions(w.size(1), w.size(0)).bias(b.defined()));
      layer->to(dtype);
      assign(layer->weight, w);
      assign(layer->bias, b);
      seq->push_back(layer);
    }
  } else if (kind == "batchnorm1d") {
    add_batchnorm<torch::nn::BatchNorm1d, torch::nn::BatchNorm1dOptions>(seq, l);
  } else if (kind == "batchnorm2d") {
    add_batchnorm<torch::nn::BatchNorm2d, torch::nn::BatchNorm2dOptions>(seq, l);
  } else if (kind == "relu") {
    l.only({});
    seq->push_back(torch::nn::ReLU());
  } else if (kind == "flatten") {
    l.only({});
    seq->push_back(torch::nn::Flatten());
  } else {  // maxpool2d
    l.only({"kernel", "stride"});
    const std::int64_t kernel = l.integer("kernel", 2, 1);
    seq->push_back(torch::nn::MaxPool2d(torch::nn::MaxPool2dOptions(kernel).stride(l.integer("stride", kernel, 1))));
  }
}

torch::nn::Sequential parse_model(const json& request, torch::ScalarType dtype) {
  if (!request.contains("model"))
    bad("model is missing (the tta probe needs the model to adapt, as a list of layers)");
  const json& layers = request.at("model");
  if (!layers.is_array() || layers.empty()) bad("model must be a non-empty list of layers");
  torch::nn::Sequential seq;
  for (std::size_t i = 0; i < layers.size(); ++i) add_layer(seq, layers[i], i, dtype);
  return seq;
}

struct TtaStep {
  torch::Tensor inputs;
  bool reset = false;
};

std::vector<TtaStep> parse_steps(const json& request, torch::ScalarType dtype) {
  if (!request.contains("steps")) bad("steps is missing (a list of {\"inputs\": ...} objects)");
  const json& list = request.at("steps");
  if (!list.is_array() || list.empty()) bad("steps must be a non-empty list of step objects");
  std::vector<TtaStep> steps;
  for (std::size_t i = 0; i < list.size(); ++i) {
    const std::string where = "steps[" + std::to_string(i) + "]";
    if (!list[i].is_object()) bad(where + " must be an object");
    reject_unknown_keys(list[i], kStepKeys, {}, where);
    if (!list[i].contains("inputs")) bad(where + ".inputs is missing");
    TtaStep step;
    step.inputs = tensor_field(list[i].at("inputs"), dtype, where + ".inputs");
    if (step.inputs.dim() < 2 || step.inputs.size(0) == 0)
      bad(where + ".inputs must be a batch of B >= 1 inputs (rank 2 or more), got shape " + shape_text(step.inputs));
    if (i > 0 && step.inputs.sizes().slice(1) != steps[0].inputs.sizes().slice(1))
      bad(where + ".inputs has shape " + shape_text(step.inputs) + "; every step's inputs must have the shape of " +
          "steps[0].inputs " + shape_text(steps[0].inputs) + " apart from the batch size");
    if (list[i].contains("reset")) {
      if (!list[i].at("reset").is_boolean()) bad(where + ".reset must be true or false");
      step.reset = list[i].at("reset").get<bool>();
    }
    steps.push_back(std::move(step));
  }
  return steps;
}

torch::Tensor parse_held_out(const json& request, torch::ScalarType dtype, const torch::Tensor& first_inputs) {
  std::vector<std::int64_t> empty_shape(first_inputs.sizes().begin(), first_inputs.sizes().end());
  empty_shape[0] = 0;
  if (!request.contains("held_out")) return torch::empty(empty_shape, dtype);
  const torch::Tensor t = tensor_field(request.at("held_out"), dtype, "held_out");
  if (t.numel() == 0 && t.dim() == 1) return torch::empty(empty_shape, dtype);
  if (t.dim() != first_inputs.dim() || t.sizes().slice(1) != first_inputs.sizes().slice(1))
    bad("held_out has shape " + shape_text(t) + "; its samples must have the shape of those of steps[0].inputs " +
        shape_text(first_inputs));
  return t;
}

// The model's logits on the first inputs, in eval mode and without
// gradients: layers that do not fit together or the inputs are reported
// before the method sees the model.
std::int64_t check_model_fits(torch::nn::Sequential& model, const torch::Tensor& inputs) {
  torch::NoGradGuard no_grad;
  model->eval();
  torch::Tensor out;
  try {
    out = model->forward(inputs);
  } catch (const std::exception& e) {
    std::string what = e.what();
    what = what.substr(0, what.find('\n'));
    bad("model does not fit steps[0].inputs of shape " + shape_text(inputs) + ": " + what);
  }
  if (out.dim() != 2 || out.size(0) != inputs.size(0) || out.size(1) == 0)
    bad("model must end in logits [B, K]; on steps[0].inputs of shape " + shape_text(inputs) + " it gives " +
        shape_text(out));
  return out.size(1);
}

json model_to_json(torch::nn::Module& model) {
  json out = json::object();
  for (const auto& p : model.named_parameters()) out[p.key()] = tensor_to_json(p.value().detach());
  for (const auto& b : model.named_buffers())
    if (b.value().defined()) out[b.key()] = tensor_to_json(b.value());
  return out;
}

}  // namespace

json run_tta_probe(const json& request, const plugins::LoadedPlugin& plugin) {
  reject_unknown_keys(request, kRequestKeys, {}, "the request (tta)");
  const torch::ScalarType dtype = dtype_field(request, torch::kFloat);
  torch::nn::Sequential model = parse_model(request, dtype);
  const std::vector<TtaStep> steps = parse_steps(request, dtype);
  const torch::Tensor held_out = parse_held_out(request, dtype, steps[0].inputs);
  const std::int64_t batch_size = int_field(request, "batch_size", "", steps[0].inputs.size(0), 1);
  const auto seed = static_cast<std::uint64_t>(int_field(request, "seed", "", 0, 0));
  const std::int64_t num_classes = check_model_fits(model, steps[0].inputs);
  const Params params = request_params(request, plugin);

  std::int64_t num_samples = 0, segments = 1;
  for (std::size_t i = 0; i < steps.size(); ++i) {
    num_samples += steps[i].inputs.size(0);
    if (i > 0 && steps[i].reset) ++segments;
  }

  torch::AutoGradMode grad_mode(true);
  CollectingLogger logger;
  CollectingSink sink;
  const MethodContext ctx{params, logger, sink, kTta, num_samples, num_classes, segments, torch::kCPU, dtype};
  plugins::MethodHandle handle(plugin);
  handle.setup(ctx);

  // As the paradigm: the source model in eval mode, its weights kept for
  // resets, then tta_setup.
  model->eval();
  const paradigms::SourceWeights source(*model);
  TtaModel tta_model = paradigms::sequential_tta_model(model);
  const TtaContext tctx{held_out, batch_size, seed};
  handle.tta_setup(tta_model, tctx);

  json out = {{"method", plugin.name()},
              {"version", plugin.info->version},
              {"dtype", dtype_name(dtype)},
              {"paradigm", "tta"},
              {"num_classes", num_classes},
              {"held_out", held_out.size(0)},
              {"batch_size", batch_size},
              {"seed", seed},
              {"params", params_to_json(params)}};
  if (!sink.empty()) out["metrics"] = sink.take();

  json results = json::array();
  std::int64_t segment = 0;
  for (std::size_t i = 0; i < steps.size(); ++i) {
    if (i > 0 && steps[i].reset) {
      source.restore(*model);
      handle.tta_setup(tta_model, tctx);
      ++segment;
    }
    const StepContext sctx{segment, segments, static_cast<std::int64_t>(i), logger, sink};
    const TtaStepResult r = handle.tta_step(steps[i].inputs, sctx);
    json result = {{"logits", tensor_to_json(r.logits.detach())},
                   {"num_used", r.num_used},
                   {"model", model_to_json(*model)},
                   {"state", state_to_json(handle.state_dict())}};
    if (!sink.empty()) result["metrics"] = sink.take();
    results.push_back(std::move(result));
  }
  out["steps"] = std::move(results);
  if (!logger.empty()) out["log"] = logger.take();
  return out;
}

}  // namespace reglab::probe
