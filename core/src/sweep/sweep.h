// sweep/sweep.h — from a sweep file to the list of fully resolved trials.
//
// A sweep file is a base configuration plus a [sweep] table:
//   [sweep]
//   name = "quickstart"            # default: the file's stem
//   description = "..."
//   seeds = [0, 1]                 # default [0]
//   grid = { "optim.lr" = [0.1, 0.01] }                  # cartesian product
//   random = { count = 4, seed = 0,
//              "optim.lr" = { dist = "log_uniform", low = 1e-3, high = 1e-1 } }
//   [[sweep.variants]]             # a list of partial tables merged over the base
//   method = { name = "ce" }
// Every trial is base ⊕ variant ⊕ grid point ⊕ random sample, with `seed` set;
// it is validated against the schema (defaults filled), and its key is the
// hash of its canonical JSON. No torch here.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "config/config.h"
#include "config/schema.h"
#include "sweep/stage.h"

namespace reglab::sweep {

using config::Json;

struct Trial {
  std::string key;    // 32 hex digits, util::hash_hex of `config.dump()`
  Json config;        // resolved: base ⊕ variant ⊕ grid ⊕ sample, defaults filled, "seed" set
  std::int64_t seed = 0;
  std::string label;  // short human label: the keys that vary across the sweep, "method.name=ce seed=1"
  std::string stage;  // key of the stage it starts from (init.from), "" when none
};

struct Sweep {
  std::string name;
  std::string description;
  std::filesystem::path file;
  std::string toml_text;   // the sweep file's own text, stored with the sweep
  std::vector<Trial> trials;
  std::vector<Stage> stages;  // the stages its trials start from, each once
};

// Reads, expands and validates. `overrides` are "dotted.key=value" strings
// from --set: keys under "sweep." change the [sweep] table before expansion;
// every other key is applied to each trial last, so --set wins over the base,
// variants, grid and samples (trials that become identical are kept once).
// Trial order: variant, grid point (sorted keys, first slowest), random
// sample, seed (innermost). Throws config::ConfigError listing every problem
// (file:line:column, key, suggestion), identical problems of several trials
// once — nothing is run or stored for an invalid sweep.
Sweep load_sweep(const std::filesystem::path& file, const std::vector<std::string>& overrides,
                 const config::MethodLookup& lookup, const config::MethodNames& names);

// Hash of a canonical configuration (XXH3-128 of json.dump(), util/hash.h).
std::string trial_key(const Json& resolved);

}  // namespace reglab::sweep
