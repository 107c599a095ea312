// store/flatten.cpp — config JSON to dotted params.
#include "store/flatten.h"

#include <nlohmann/json.hpp>

#include <stdexcept>

namespace reglab::store {
namespace {

void walk(const nlohmann::json& node, const std::string& prefix, std::vector<FlatParam>& out) {
  if (node.is_object() && !node.empty()) {
    for (auto it = node.begin(); it != node.end(); ++it) {
      walk(it.value(), prefix.empty() ? it.key() : prefix + "." + it.key(), out);
    }
    return;
  }
  FlatParam p;
  p.key = prefix;
  if (node.is_string()) {
    p.value = node.get<std::string>();
  } else {
    p.value = node.dump();
    if (node.is_number()) p.numeric = node.get<double>();
  }
  out.push_back(std::move(p));
}

}  // namespace

std::vector<FlatParam> flatten_config(const std::string& config_json) {
  nlohmann::json doc;
  try {
    doc = nlohmann::json::parse(config_json);
  } catch (const nlohmann::json::parse_error& e) {
    throw std::invalid_argument(std::string("run config is not valid JSON: ") + e.what());
  }
  if (!doc.is_object()) {
    throw std::invalid_argument("run config must be a JSON object, got " + std::string(doc.type_name()));
  }
  std::vector<FlatParam> out;
  if (!doc.empty()) walk(doc, "", out);
  return out;
}

}  // namespace reglab::store
