// store/flatten.h — a resolved config as dotted key/value rows (the params table).
//
// Objects are walked into dotted keys ("optim.lr"); every other value is a
// leaf. A leaf's text is the string itself for strings and the compact JSON
// for anything else ("0.1", "true", "null", "[1,2]", "{}" for an empty
// object). numeric is set for JSON numbers only — booleans are not numbers.
// Private to the store module.
#pragma once

#include <optional>
#include <string>
#include <vector>

namespace reglab::store {

struct FlatParam {
  std::string key;
  std::string value;
  std::optional<double> numeric;
};

// Throws std::invalid_argument when `config_json` is not valid JSON or not an
// object.
std::vector<FlatParam> flatten_config(const std::string& config_json);

}  // namespace reglab::store
