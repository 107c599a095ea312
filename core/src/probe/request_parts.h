// probe/request_parts.h — what the training-hook probe (probe.cpp) and the
// test-time-adaptation probe (tta_probe.cpp) share: request checks that throw
// std::invalid_argument("probe request: ..."), and a logger and metric sink
// that collect what a method reports so the response can carry it.
#pragma once

#include <nlohmann/json.hpp>
#include <torch/types.h>

#include <cstdint>
#include <map>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "plugins/loader.h"
#include "reglab/method.h"
#include "reglab/params.h"

namespace reglab::probe::detail {

using Keys = std::span<const std::string_view>;

[[noreturn]] void bad(const std::string& message);

std::string shape_text(const torch::Tensor& t);

// Every key of `object` must be in `a` or `b`; `where` names the object.
void reject_unknown_keys(const nlohmann::json& object, Keys a, Keys b, const std::string& where);

// An optional integer field >= `min`; `where` prefixes the key in messages.
std::int64_t int_field(const nlohmann::json& object, const char* key, const std::string& where,
                       std::int64_t fallback, std::int64_t min);

// tensor_from_json with its error rethrown as a probe request error.
torch::Tensor tensor_field(const nlohmann::json& value, torch::ScalarType dtype, const std::string& what);

// "float64" (the default when absent) or "float32".
torch::ScalarType dtype_field(const nlohmann::json& request, torch::ScalarType fallback);
const char* dtype_name(torch::ScalarType dtype);

// The request's "params" object (absent: {}) checked against the plugin's
// schema, defaults filled in.
Params request_params(const nlohmann::json& request, const plugins::LoadedPlugin& plugin);

// A method's state_dict() as name -> nested list.
nlohmann::json state_to_json(const StateDict& state);

// The resolved parameters, name -> value.
nlohmann::json params_to_json(const Params& params);

class CollectingLogger final : public Logger {
 public:
  void log(LogLevel level, std::string_view message) override;
  nlohmann::json take();
  bool empty() const { return lines_.empty(); }

 private:
  std::vector<std::string> lines_;
};

// Keeps the method's metric points; take() gives them as
// [{key, value, step[, direction]}], a point carrying the direction its key
// was declared with ("higher", "lower", "none"; absent when undeclared).
class CollectingSink final : public MetricSink {
 public:
  void record(std::string_view key, double value, std::int64_t step) override;
  void declare(std::string_view key, MetricDirection direction) override;
  nlohmann::json take();
  bool empty() const { return records_.empty(); }

 private:
  nlohmann::json records_ = nlohmann::json::array();
  std::map<std::string, MetricDirection, std::less<>> directions_;
};

}  // namespace reglab::probe::detail
