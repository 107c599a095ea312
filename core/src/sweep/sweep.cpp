// sweep/sweep.cpp — expanding a sweep file into validated, keyed trials.
#include "sweep/sweep.h"

#include <cctype>
#include <optional>
#include <set>
#include <utility>

#include "config/value_check.h"
#include "sweep/spec.h"
#include "util/hash.h"
#include "util/util.h"

namespace reglab::sweep {

namespace {

using config::Issue;
using config::SourceLocation;
using config::SourceMap;

struct Override {
  std::string key;
  Json value;
};

bool is_dotted_key(const std::string& key) {
  if (key.empty()) return false;
  for (const std::string& part : util::split(key, '.')) {
    if (part.empty()) return false;
    for (char c : part) {
      if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_' && c != '-') return false;
    }
  }
  return true;
}

std::vector<Override> parse_overrides(const std::vector<std::string>& overrides) {
  std::vector<Override> out;
  std::vector<Issue> issues;
  auto malformed = [&](const std::string& text, const std::string& why) {
    issues.push_back(Issue{SourceLocation{}, "", "malformed --set '" + text + "': " + why, ""});
  };
  for (const std::string& text : overrides) {
    const std::size_t eq = text.find('=');
    if (eq == std::string::npos) {
      malformed(text, "expected dotted.key=value");
      continue;
    }
    const std::string key = util::trim(text.substr(0, eq));
    if (!is_dotted_key(key)) {
      malformed(text, "'" + key + "' is not a dotted key (letters, digits, '_' and '-' between dots)");
      continue;
    }
    try {
      out.push_back(Override{key, config::parse_cli_value(text.substr(eq + 1))});
    } catch (const std::exception& err) {
      malformed(text, err.what());
    }
  }
  if (!issues.empty()) throw config::ConfigError(std::move(issues));
  return out;
}

// `key` now holds a value written at `at` (with its elements' positions
// under `from` in `from_where`), replacing whatever was there.
void place(SourceMap& where, const std::string& key, const SourceLocation& at, const SourceMap* from_where = nullptr,
           const std::string& from = "") {
  const std::string prefix = key + ".";
  for (auto it = where.lower_bound(prefix); it != where.end() && util::starts_with(it->first, prefix);) {
    it = where.erase(it);
  }
  where[key] = at;
  if (from_where == nullptr) return;
  const std::string from_prefix = from + ".";
  for (auto it = from_where->lower_bound(from_prefix);
       it != from_where->end() && util::starts_with(it->first, from_prefix); ++it) {
    where[key + it->first.substr(from.size())] = it->second;
  }
}

// Grid and random keys may be written quoted ("optim.lr" = ...) or nested
// (optim.lr = ... makes a table); --set sweep.grid.optim.lr=... must replace
// either spelling, so it removes both and writes the quoted one.
void set_sweep_value(Json& tree, const std::string& key, const Json& value) {
  for (const std::string table : {"sweep.grid.", "sweep.random."}) {
    if (!util::starts_with(key, table) || key.size() == table.size()) continue;
    const std::string rest = key.substr(table.size());
    Json section = Json::object();
    if (const Json* existing = config::get_path(tree, table.substr(0, table.size() - 1));
        existing && existing->is_object()) {
      section = *existing;
    }
    config::erase_path(section, rest);
    section.erase(rest);
    section[rest] = value;
    config::set_path(tree, table.substr(0, table.size() - 1), std::move(section));
    return;
  }
  config::set_path(tree, key, value);
}

// One grid point or random sample: values to set, with where they came from.
struct Setting {
  std::string key;
  Json value;
  std::string from;       // dotted key in the file's SourceMap
  bool elements = false;  // the value's own elements have positions under `from`
};

std::vector<std::vector<Setting>> grid_points(const SweepSpec& spec) {
  std::vector<std::vector<Setting>> points(1);
  // Keys in sorted order; the first key varies slowest.
  for (const auto& [key, values] : spec.grid) {
    std::vector<std::vector<Setting>> next;
    next.reserve(points.size() * values.size());
    for (const auto& point : points) {
      for (std::size_t i = 0; i < values.size(); ++i) {
        auto extended = point;
        extended.push_back(Setting{key, values[i], "sweep.grid." + key + "." + std::to_string(i), true});
        next.push_back(std::move(extended));
      }
    }
    points = std::move(next);
  }
  return points;
}

std::vector<std::vector<Setting>> random_samples(const SweepSpec& spec) {
  if (spec.random.empty() || spec.random_count <= 0) return {{}};
  Rng rng(spec.random_seed);
  std::vector<std::vector<Setting>> samples;
  for (std::int64_t s = 0; s < spec.random_count; ++s) {
    std::vector<Setting> sample;
    for (const auto& [key, dist] : spec.random) sample.push_back(Setting{key, draw(dist, rng), "sweep.random." + key});
    samples.push_back(std::move(sample));
  }
  return samples;
}

std::string label_value(const Json& v) { return v.is_string() ? v.get<std::string>() : v.dump(); }

// "method.name=ce optim.lr=0.1 seed=1": only the keys (as the user wrote
// them, before defaults) whose values are not the same in every trial.
void assign_labels(std::vector<Trial>& trials, const std::vector<Json>& written) {
  std::vector<std::map<std::string, Json>> flat;
  for (const Json& w : written) {
    auto f = config::flatten(w);
    f.erase("seed");
    flat.push_back(std::move(f));
  }
  // A key varies when some trial lacks it or differs from the first trial.
  std::set<std::string> varying;
  if (!flat.empty()) {
    const auto& first = flat.front();
    for (const auto& f : flat) {
      for (const auto& [key, value] : f) {
        if (!first.count(key)) varying.insert(key);
      }
      for (const auto& [key, value] : first) {
        if (varying.count(key)) continue;
        auto it = f.find(key);
        if (it == f.end() || it->second != value) varying.insert(key);
      }
    }
  }
  std::vector<std::string> order;
  if (varying.count("method.name")) order.push_back("method.name");
  for (const std::string& key : varying) {
    if (key != "method.name") order.push_back(key);
  }
  for (std::size_t t = 0; t < trials.size(); ++t) {
    std::vector<std::string> parts;
    for (const std::string& key : order) {
      if (auto it = flat[t].find(key); it != flat[t].end()) parts.push_back(key + "=" + label_value(it->second));
    }
    parts.push_back("seed=" + std::to_string(trials[t].seed));
    trials[t].label = util::join(parts, " ");
  }
}

}  // namespace

std::string trial_key(const Json& resolved) { return util::hash_hex(resolved.dump()); }

Sweep load_sweep(const std::filesystem::path& file, const std::vector<std::string>& overrides,
                 const config::MethodLookup& lookup, const config::MethodNames& names) {
  const std::vector<Override> sets = parse_overrides(overrides);
  config::Document doc = config::load_toml_file(file);
  if (!doc.tree.is_object()) doc.tree = Json::object();

  // --set sweep.* changes the sweep itself; every other --set is applied to
  // each trial last, so it wins over the base, variants, grid and samples.
  std::vector<Override> trial_sets;
  for (const Override& o : sets) {
    if (o.key == "sweep" || util::starts_with(o.key, "sweep.")) {
      set_sweep_value(doc.tree, o.key, o.value);
      place(doc.locations, o.key, SourceLocation{});
    } else {
      trial_sets.push_back(o);
    }
  }

  std::vector<Issue> issues;
  Json sweep_table = doc.tree.contains("sweep") ? doc.tree.at("sweep") : Json();
  doc.tree.erase("sweep");
  SweepSpec spec = parse_spec(sweep_table, doc.locations, file.stem().string(), issues);

  SourceMap base_where = doc.locations;
  place(base_where, "sweep", SourceLocation{});
  base_where.erase("sweep");

  const std::vector<Json> variants = spec.variants.empty() ? std::vector<Json>{Json::object()} : spec.variants;
  const auto points = grid_points(spec);
  const auto samples = random_samples(spec);
  std::vector<std::optional<std::int64_t>> seeds;
  if (spec.has_seeds) {
    seeds.assign(spec.seeds.begin(), spec.seeds.end());
  } else {
    seeds.push_back(std::nullopt);  // keep the file's `seed` (default 0)
  }

  Sweep sweep;
  sweep.name = spec.name;
  sweep.description = spec.description;
  sweep.file = file;
  sweep.toml_text = doc.text;

  std::set<std::string> seen_issues;
  for (const Issue& issue : issues) seen_issues.insert(issue.str());
  StageResolver stages(lookup, names);
  std::set<std::string> seen_keys;
  std::vector<Json> written;  // each kept trial before defaults, for labels

  for (std::size_t v = 0; v < variants.size(); ++v) {
    for (const auto& point : points) {
      for (const auto& sample : samples) {
        for (std::size_t s = 0; s < seeds.size(); ++s) {
          Json cfg = doc.tree;
          SourceMap where = base_where;
          if (!spec.variants.empty()) {
            config::merge_into(cfg, variants[v]);
            config::overlay_locations(where, variants[v], doc.locations, "sweep.variants." + std::to_string(v), "");
          }
          for (const auto* settings : {&point, &sample}) {
            for (const Setting& setting : *settings) {
              config::set_path(cfg, setting.key, setting.value);
              place(where, setting.key, config::locate(doc.locations, setting.from),
                    setting.elements ? &doc.locations : nullptr, setting.from);
            }
          }
          if (seeds[s]) {
            cfg["seed"] = *seeds[s];
            place(where, "seed", config::locate(doc.locations, "sweep.seeds." + std::to_string(s)));
          }
          for (const Override& o : trial_sets) {
            config::set_path(cfg, o.key, o.value);
            place(where, o.key, SourceLocation{});
          }

          Json as_written = cfg;
          std::vector<Issue> trial_issues;
          config::validate_trial(cfg, where, lookup, names, trial_issues);
          for (Issue& issue : trial_issues) {
            if (seen_issues.insert(issue.str()).second) issues.push_back(std::move(issue));
          }
          if (!issues.empty()) continue;
          std::vector<Issue> stage_issues;
          const std::string stage = stages.attach(cfg, where, file, stage_issues);
          for (Issue& issue : stage_issues) {
            if (seen_issues.insert(issue.str()).second) issues.push_back(std::move(issue));
          }
          if (!issues.empty()) continue;

          Trial trial;
          trial.stage = stage;
          trial.key = trial_key(cfg);
          if (!seen_keys.insert(trial.key).second) continue;  // the same configuration twice
          const Json* seed = config::get_path(cfg, "seed");
          trial.seed = seed && seed->is_number_integer() ? seed->get<std::int64_t>() : 0;
          trial.config = std::move(cfg);
          sweep.trials.push_back(std::move(trial));
          written.push_back(std::move(as_written));
        }
      }
    }
  }
  if (!issues.empty()) throw config::ConfigError(std::move(issues));
  assign_labels(sweep.trials, written);
  sweep.stages = stages.stages();
  return sweep;
}

}  // namespace reglab::sweep
