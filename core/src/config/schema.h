// config/schema.h — what a trial configuration may contain.
//
// The core declares its own keys (task.*, data.*, model.*, optim.*, seed) as
// ParamSpecs with dotted names; each method declares its parameters under
// method.* through its plugin. validate_trial() checks a merged trial
// configuration against both and fills defaults. No torch here.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "config/config.h"
#include "reglab/plugin.h"

namespace reglab::config {

// The core's keys, with types, defaults, ranges and docs.
const std::vector<ParamSpec>& core_schema();

// The paradigms (bits of reglab::Paradigm) a core key belongs to; 0 for the
// keys every trial has. A key of some paradigms is accepted, and filled with
// its default, only in trials of those paradigms (data.bags.* in mil trials).
std::uint32_t key_paradigms(const std::string& key);

// What validation needs to know about a method (from its plugin).
struct MethodSchema {
  std::string name;
  std::uint32_t paradigms = 0;
  std::vector<ParamSpec> params;
};
// Returns nullopt for an unknown method name.
using MethodLookup = std::function<std::optional<MethodSchema>(const std::string& name)>;
// Known method names, for "did you mean" on an unknown name.
using MethodNames = std::function<std::vector<std::string>()>;

// Converts a ParamSpec default (a TOML literal) to JSON.
Json parse_default(const ParamSpec& spec);

// Type- and range-checks `value` against `spec`; returns an error message or "".
std::string check_value(const ParamSpec& spec, const Json& value);

// Validates one trial configuration in place: unknown keys (with the nearest
// valid key), wrong types, out-of-range values, unknown method (with the
// nearest names), a method that does not support task.paradigm. Fills every
// missing core and method key with its default. Appends issues (with
// locations from `where`) instead of throwing.
void validate_trial(Json& trial, const SourceMap& where, const MethodLookup& lookup,
                    const MethodNames& names, std::vector<Issue>& issues);

// The closest candidate to `word` by edit distance, or "" when none is close.
std::string nearest(const std::string& word, const std::vector<std::string>& candidates);

}  // namespace reglab::config
