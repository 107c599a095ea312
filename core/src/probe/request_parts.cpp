#include "probe/request_parts.h"

#include <algorithm>
#include <stdexcept>
#include <utility>
#include <variant>

#include "plugins/method_handle.h"
#include "probe/tensor_json.h"

namespace reglab::probe::detail {

using nlohmann::json;

void bad(const std::string& message) { throw std::invalid_argument("probe request: " + message); }

std::string shape_text(const torch::Tensor& t) {
  std::string s = "[";
  for (std::int64_t d = 0; d < t.dim(); ++d) s += (d ? ", " : "") + std::to_string(t.size(d));
  return s + "]";
}

namespace {

std::string joined(Keys keys) {
  std::string s;
  for (std::string_view k : keys) s += (s.empty() ? "" : ", ") + std::string(k);
  return s;
}

}  // namespace

void reject_unknown_keys(const json& object, Keys a, Keys b, const std::string& where) {
  for (const auto& [key, value] : object.items()) {
    const auto known = [&](Keys keys) { return std::find(keys.begin(), keys.end(), key) != keys.end(); };
    if (!known(a) && !known(b))
      bad("unknown key '" + key + "' in " + where + " (expected " + joined(a) + (b.empty() ? "" : ", " + joined(b)) +
          ")");
  }
}

std::int64_t int_field(const json& object, const char* key, const std::string& where, std::int64_t fallback,
                       std::int64_t min) {
  if (!object.contains(key)) return fallback;
  const json& v = object.at(key);
  if (!v.is_number_integer()) bad(where + key + " must be an integer, got " + v.dump());
  const std::int64_t x = v.get<std::int64_t>();
  if (x < min) bad(where + key + " must be at least " + std::to_string(min) + ", got " + std::to_string(x));
  return x;
}

torch::Tensor tensor_field(const json& value, torch::ScalarType dtype, const std::string& what) {
  try {
    return tensor_from_json(value, dtype, what);
  } catch (const std::invalid_argument& e) {
    bad(e.what());
  }
}

torch::ScalarType dtype_field(const json& request, torch::ScalarType fallback) {
  if (!request.contains("dtype")) return fallback;
  const json& d = request.at("dtype");
  if (d == "float32") return torch::kFloat;
  if (d == "float64") return torch::kDouble;
  bad("dtype must be \"float32\" or \"float64\", got " + d.dump());
}

const char* dtype_name(torch::ScalarType dtype) { return dtype == torch::kDouble ? "float64" : "float32"; }

json state_to_json(const StateDict& state) {
  json out = json::object();
  for (const auto& [name, tensor] : state) out[name] = tensor_to_json(tensor);
  return out;
}

Params request_params(const json& request, const plugins::LoadedPlugin& plugin) {
  const json params_json = request.value("params", json::object());
  if (!params_json.is_object()) bad("params must be an object, got " + params_json.dump());
  return plugins::resolve_params(*plugin.info, params_json.dump());
}

json params_to_json(const Params& params) {
  json out = json::object();
  for (const auto& [name, value] : params.values()) out[name] = std::visit([](const auto& x) { return json(x); }, value);
  return out;
}

void CollectingLogger::log(LogLevel level, std::string_view message) {
  static constexpr const char* kNames[] = {"debug", "info", "warn", "error"};
  lines_.push_back(std::string(kNames[static_cast<int>(level)]) + ": " + std::string(message));
}

json CollectingLogger::take() { return std::exchange(lines_, {}); }

void CollectingSink::record(std::string_view key, double value, std::int64_t step) {
  records_.push_back({{"key", std::string(key)}, {"value", value}, {"step", step}});
}

void CollectingSink::declare(std::string_view key, MetricDirection direction) {
  const auto [it, fresh] = directions_.try_emplace(std::string(key), direction);
  if (!fresh && it->second != direction) {
    throw std::invalid_argument("metric '" + it->first + "' is declared " + to_string(it->second) +
                                " is better and then " + to_string(direction) + " is better");
  }
}

json CollectingSink::take() {
  // Declarations may come after the points (or before, in setup()): the
  // direction is attached when the points are handed out.
  for (json& point : records_) {
    const auto it = directions_.find(point["key"].get<std::string>());
    if (it != directions_.end()) point["direction"] = to_string(it->second);
  }
  return std::exchange(records_, json::array());
}

}  // namespace reglab::probe::detail
