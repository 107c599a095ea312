// tests/config/fake_methods.h — a method registry for validation tests, no plugins.
#pragma once

#include <filesystem>
#include <string>

#include "config/schema.h"

namespace reglab::test {

inline const ParamSpec kEpsilon = [] {
  ParamSpec s;
  s.name = "epsilon";
  s.type = ParamType::kFloat;
  s.default_value = "0.1";
  s.min = 0;
  s.max = 1;
  s.has_min = true;
  s.has_max = true;
  s.doc = "smoothing mass";
  return s;
}();

inline std::optional<config::MethodSchema> fake_lookup(const std::string& name) {
  if (name == "ce") return config::MethodSchema{"ce", kClassify, {}};
  if (name == "label_smoothing") return config::MethodSchema{"label_smoothing", kClassify, {kEpsilon}};
  if (name == "tent") return config::MethodSchema{"tent", kTta, {}};
  return std::nullopt;
}

inline std::vector<std::string> fake_names() { return {"ce", "label_smoothing", "tent"}; }

inline std::filesystem::path data_file(const std::string& name) {
  return std::filesystem::path(REGLAB_TEST_SOURCE_DIR) / "config" / "data" / name;
}

// "<dir>/config/data/<name>" as it appears in messages.
inline std::string data_name(const std::string& name) { return data_file(name).string(); }

}  // namespace reglab::test
