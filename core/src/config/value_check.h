// config/value_check.h — private helpers shared by schema.cpp, validate.cpp and sweep.
//
// check_and_normalize() is check_value() that also rewrites the value into
// its canonical form (an int written for a float becomes a float, 3.0
// written for an int becomes 3), so two trials that mean the same
// configuration dump to the same JSON and get the same key.
#pragma once

#include <string>

#include "config/config.h"
#include "reglab/plugin.h"

namespace reglab::config {

// "string \"fast\"", "int 3", "list [1,2]" — for messages.
std::string describe_value(const Json& value);

// Returns an error message or "" (and then `value` is normalised). For a
// bad element of a list, `bad_element` (when given) receives its index.
std::string check_and_normalize(const ParamSpec& spec, Json& value, std::size_t* bad_element = nullptr);

}  // namespace reglab::config
