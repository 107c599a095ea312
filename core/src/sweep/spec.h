// sweep/spec.h — the [sweep] table, checked, and the sampler for its random part.
//
// Private to the sweep module. parse_spec() reads the [sweep] table of a
// (merged) sweep file, reports every problem as an Issue with the position it
// was written at, and keeps whatever parts are valid so that expansion can go
// on and report trial problems in the same pass.
//
// Random samples must be the same on every machine and every standard
// library, because trial keys hash them: Rng is splitmix64 and the mapping
// from 64 random bits to each distribution is our own (std::*_distribution
// are not specified bit-exactly).
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "config/config.h"

namespace reglab::sweep {

using config::Json;

struct Distribution {
  enum class Kind { kUniform, kLogUniform, kInt, kChoice };
  Kind kind = Kind::kUniform;
  double low = 0;  // uniform, log_uniform: [low, high]
  double high = 0;
  std::int64_t int_low = 0;  // int: [int_low, int_high], both inclusive
  std::int64_t int_high = 0;
  std::vector<Json> values;  // choice
};

struct SweepSpec {
  std::string name;
  std::string description;
  bool has_seeds = false;
  std::vector<std::int64_t> seeds;
  std::map<std::string, std::vector<Json>> grid;  // dotted key -> values (sorted keys)
  std::int64_t random_count = 0;                   // 0: no random part
  std::uint64_t random_seed = 0;
  std::map<std::string, Distribution> random;      // dotted key -> distribution
  std::vector<Json> variants;                      // empty: one empty variant
};

// `table` is the value of the [sweep] key (null when the file has none);
// `where` holds positions under "sweep.*".
SweepSpec parse_spec(const Json& table, const config::SourceMap& where, const std::string& default_name,
                     std::vector<config::Issue>& issues);

// splitmix64 (Steele, Lea, Flood 2014): tiny, fast, and good enough for
// drawing hyper-parameters.
class Rng {
 public:
  explicit Rng(std::uint64_t seed) : state_(seed) {}
  std::uint64_t next();
  double uniform01();                                   // [0, 1), 53 random bits
  std::uint64_t below(std::uint64_t n);                 // [0, n), unbiased; n > 0
  std::int64_t between(std::int64_t lo, std::int64_t hi);  // [lo, hi] inclusive

 private:
  std::uint64_t state_;
};

// One draw. Continuous draws are rounded to 6 significant digits (then
// clamped into [low, high]) so labels stay short and keys do not depend on
// the last bits of exp/log.
Json draw(const Distribution& dist, Rng& rng);

}  // namespace reglab::sweep
