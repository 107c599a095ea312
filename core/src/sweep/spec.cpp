// sweep/spec.cpp — reading the [sweep] table and drawing random samples.
#include "sweep/spec.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>

#include "config/schema.h"
#include "config/value_check.h"
#include "util/util.h"

namespace reglab::sweep {

namespace {

using config::Issue;
using config::SourceMap;

const std::vector<std::string> kSweepKeys = {"name", "description", "seeds", "grid", "random", "variants"};
const std::vector<std::string> kDistNames = {"uniform", "log_uniform", "int", "choice"};

std::string join_key(const std::string& prefix, const std::string& part) {
  return prefix.empty() ? part : prefix + "." + part;
}

std::vector<std::string> prefixed(const std::string& prefix, const std::vector<std::string>& names) {
  std::vector<std::string> out;
  for (const std::string& n : names) out.push_back(prefix + n);
  return out;
}

class SpecReader {
 public:
  SpecReader(const SourceMap& where, std::vector<Issue>& issues) : where_(where), issues_(issues) {}

  void add(const std::string& key, std::string message, std::string suggestion = "") {
    issues_.push_back(Issue{config::locate(where_, key), key, std::move(message), std::move(suggestion)});
  }

  SweepSpec read(const Json& table, const std::string& default_name) {
    SweepSpec spec;
    spec.name = default_name;
    if (table.is_null()) return spec;
    if (!table.is_object()) {
      add("sweep", "expected a table ([sweep]), got " + config::describe_value(table));
      return spec;
    }
    for (auto it = table.begin(); it != table.end(); ++it) {
      const std::string& k = it.key();
      const Json& v = it.value();
      const std::string key = "sweep." + k;
      if (k == "name" || k == "description") {
        if (!v.is_string() || (k == "name" && v.get<std::string>().empty())) {
          add(key, "expected a non-empty string, got " + config::describe_value(v));
        } else if (k == "name" && v.get<std::string>().front() == '_') {
          add(key, "sweep names starting with '_' are reserved for reglab's own (such as _stages)");
        } else {
          (k == "name" ? spec.name : spec.description) = v.get<std::string>();
        }
      } else if (k == "seeds") {
        read_seeds(v, spec);
      } else if (k == "grid") {
        read_grid(v, spec);
      } else if (k == "random") {
        read_random(v, spec);
      } else if (k == "variants") {
        read_variants(v, spec);
      } else {
        add(key, "unknown key in [sweep] (it takes: " + util::join(kSweepKeys, ", ") + ")",
            config::nearest(key, prefixed("sweep.", kSweepKeys)));
      }
    }
    return spec;
  }

 private:
  static bool is_nonneg_int(const Json& v) { return v.is_number_integer() && v.get<std::int64_t>() >= 0; }

  void read_seeds(const Json& v, SweepSpec& spec) {
    if (!v.is_array() || v.empty()) {
      add("sweep.seeds", "expected a non-empty list of non-negative ints, got " + config::describe_value(v));
      return;
    }
    bool ok = true;
    for (std::size_t i = 0; i < v.size(); ++i) {
      if (!is_nonneg_int(v[i])) {
        add("sweep.seeds." + std::to_string(i),
            "expected a non-negative int, got " + config::describe_value(v[i]));
        ok = false;
      }
    }
    if (!ok) return;
    spec.has_seeds = true;
    for (const Json& s : v) spec.seeds.push_back(s.get<std::int64_t>());
  }

  void read_grid(const Json& v, SweepSpec& spec) {
    if (!v.is_object()) {
      add("sweep.grid", "expected a table of dotted key = [values], got " + config::describe_value(v));
      return;
    }
    for (const auto& [key, values] : config::flatten(v)) {
      const std::string where = "sweep.grid." + key;
      if (!values.is_array()) {
        add(where, "expected a list of values to try, got " + config::describe_value(values));
      } else if (values.empty()) {
        add(where, "empty list: the grid would have no points");
      } else {
        spec.grid[key] = std::vector<Json>(values.begin(), values.end());
      }
    }
  }

  void read_random(const Json& v, SweepSpec& spec) {
    if (!v.is_object()) {
      add("sweep.random", "expected a table { count = N, seed = S, key = { dist = ... } }, got " +
                              config::describe_value(v));
      return;
    }
    bool has_count = false;
    bool has_entries = false;
    for (auto it = v.begin(); it != v.end(); ++it) {
      const std::string key = "sweep.random." + it.key();
      if (it.key() == "count") {
        if (!it->is_number_integer() || it->get<std::int64_t>() < 1) {
          add(key, "expected an int >= 1, got " + config::describe_value(*it));
        } else {
          spec.random_count = it->get<std::int64_t>();
          has_count = true;
        }
      } else if (it.key() == "seed") {
        if (!is_nonneg_int(*it)) {
          add(key, "expected a non-negative int, got " + config::describe_value(*it));
        } else {
          spec.random_seed = static_cast<std::uint64_t>(it->get<std::int64_t>());
        }
      } else {
        has_entries = true;
        read_distributions(*it, it.key(), spec);
      }
    }
    if (!has_entries) {
      add("sweep.random", "no distributions: add one, e.g. \"optim.lr\" = { dist = \"log_uniform\", low = 1e-3, "
                          "high = 1e-1 }");
    } else if (!has_count) {
      add("sweep.random", "missing 'count': how many random samples to draw");
      spec.random.clear();
    }
  }

  // `key` is the dotted trial key; tables without `dist` are nested keys.
  void read_distributions(const Json& v, const std::string& key, SweepSpec& spec) {
    const std::string where = "sweep.random." + key;
    if (v.is_object() && !v.contains("dist")) {
      if (v.empty()) add(where, "expected a distribution { dist = ... }, got an empty table");
      for (auto it = v.begin(); it != v.end(); ++it) read_distributions(*it, join_key(key, it.key()), spec);
      return;
    }
    if (!v.is_object()) {
      add(where, "expected a distribution such as { dist = \"uniform\", low = 0.0, high = 1.0 }, got " +
                     config::describe_value(v));
      return;
    }
    const Json& dist = v.at("dist");
    if (!dist.is_string()) {
      add(where + ".dist", "expected one of uniform, log_uniform, int, choice, got " + config::describe_value(dist));
      return;
    }
    const std::string name = dist.get<std::string>();
    Distribution d;
    std::vector<std::string> fields;
    if (name == "uniform" || name == "log_uniform") {
      d.kind = name == "uniform" ? Distribution::Kind::kUniform : Distribution::Kind::kLogUniform;
      fields = {"dist", "low", "high"};
    } else if (name == "int") {
      d.kind = Distribution::Kind::kInt;
      fields = {"dist", "low", "high"};
    } else if (name == "choice") {
      d.kind = Distribution::Kind::kChoice;
      fields = {"dist", "values"};
    } else {
      add(where + ".dist", "unknown distribution \"" + name + "\" (known: uniform, log_uniform, int, choice)",
          config::nearest(name, kDistNames));
      return;
    }
    bool ok = true;
    for (auto it = v.begin(); it != v.end(); ++it) {
      if (std::find(fields.begin(), fields.end(), it.key()) == fields.end()) {
        add(where + "." + it.key(), "unknown field of a " + name + " distribution (it takes: " +
                                        util::join(fields, ", ") + ")",
            config::nearest(where + "." + it.key(), prefixed(where + ".", fields)));
        ok = false;
      }
    }
    for (const std::string& f : fields) {
      if (!v.contains(f)) {
        add(where, "a " + name + " distribution needs '" + f + "'");
        ok = false;
      }
    }
    if (!ok) return;
    if (d.kind == Distribution::Kind::kChoice) {
      const Json& values = v.at("values");
      if (!values.is_array() || values.empty()) {
        add(where + ".values", "expected a non-empty list of values, got " + config::describe_value(values));
        return;
      }
      d.values.assign(values.begin(), values.end());
    } else if (d.kind == Distribution::Kind::kInt) {
      const Json& lo = v.at("low");
      const Json& hi = v.at("high");
      if (!lo.is_number_integer()) ok = bad(where + ".low", "an int", lo);
      if (!hi.is_number_integer()) ok = bad(where + ".high", "an int", hi);
      if (!ok) return;
      d.int_low = lo.get<std::int64_t>();
      d.int_high = hi.get<std::int64_t>();
      if (d.int_low > d.int_high) {
        add(where, "low (" + lo.dump() + ") is greater than high (" + hi.dump() + ")");
        return;
      }
    } else {
      const Json& lo = v.at("low");
      const Json& hi = v.at("high");
      if (!finite_number(lo)) ok = bad(where + ".low", "a finite number", lo);
      if (!finite_number(hi)) ok = bad(where + ".high", "a finite number", hi);
      if (!ok) return;
      d.low = lo.get<double>();
      d.high = hi.get<double>();
      if (d.kind == Distribution::Kind::kLogUniform && d.low <= 0) {
        add(where + ".low", "log_uniform needs low > 0, got " + lo.dump());
        return;
      }
      if (d.low > d.high) {
        add(where, "low (" + lo.dump() + ") is greater than high (" + hi.dump() + ")");
        return;
      }
    }
    spec.random[key] = std::move(d);
  }

  static bool finite_number(const Json& v) {
    return (v.is_number_integer() || v.is_number_float()) && std::isfinite(v.get<double>());
  }

  bool bad(const std::string& key, const std::string& expected, const Json& got) {
    add(key, "expected " + expected + ", got " + config::describe_value(got));
    return false;
  }

  void read_variants(const Json& v, SweepSpec& spec) {
    if (!v.is_array() || v.empty()) {
      add("sweep.variants", "expected a non-empty list of tables ([[sweep.variants]]), got " +
                                config::describe_value(v));
      return;
    }
    bool ok = true;
    for (std::size_t i = 0; i < v.size(); ++i) {
      if (!v[i].is_object()) {
        add("sweep.variants." + std::to_string(i), "expected a table, got " + config::describe_value(v[i]));
        ok = false;
      }
    }
    if (ok) spec.variants.assign(v.begin(), v.end());
  }

  const SourceMap& where_;
  std::vector<Issue>& issues_;
};

double round_significant(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.6g", v);
  return std::strtod(buf, nullptr);
}

}  // namespace

SweepSpec parse_spec(const Json& table, const config::SourceMap& where, const std::string& default_name,
                     std::vector<config::Issue>& issues) {
  return SpecReader(where, issues).read(table, default_name);
}

std::uint64_t Rng::next() {
  std::uint64_t z = (state_ += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

double Rng::uniform01() { return static_cast<double>(next() >> 11) * 0x1.0p-53; }

std::uint64_t Rng::below(std::uint64_t n) {
  // Reject the lowest (2^64 mod n) values so every residue is equally likely.
  const std::uint64_t threshold = (0 - n) % n;
  while (true) {
    std::uint64_t x = next();
    if (x >= threshold) return x % n;
  }
}

std::int64_t Rng::between(std::int64_t lo, std::int64_t hi) {
  const std::uint64_t span = static_cast<std::uint64_t>(hi) - static_cast<std::uint64_t>(lo);
  const std::uint64_t offset = span == ~std::uint64_t{0} ? next() : below(span + 1);
  return static_cast<std::int64_t>(static_cast<std::uint64_t>(lo) + offset);
}

Json draw(const Distribution& dist, Rng& rng) {
  switch (dist.kind) {
    case Distribution::Kind::kUniform: {
      double v = round_significant(dist.low + rng.uniform01() * (dist.high - dist.low));
      return std::min(std::max(v, dist.low), dist.high);
    }
    case Distribution::Kind::kLogUniform: {
      const double a = std::log(dist.low);
      const double b = std::log(dist.high);
      double v = round_significant(std::exp(a + rng.uniform01() * (b - a)));
      return std::min(std::max(v, dist.low), dist.high);
    }
    case Distribution::Kind::kInt:
      return rng.between(dist.int_low, dist.int_high);
    case Distribution::Kind::kChoice:
      return dist.values[rng.below(dist.values.size())];
  }
  return nullptr;
}

}  // namespace reglab::sweep
