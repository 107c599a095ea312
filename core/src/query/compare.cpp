// query/compare.cpp — group completed runs and summarise a metric per group.
//
// Reads only the documented tables (runs, params, summaries), through
// store/sweep_results.h, with the same SQL a user would write, so `reglab
// compare` and a pandas notebook agree.
#include "query/compare.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <limits>
#include <map>
#include <set>
#include <stdexcept>
#include <tuple>

#include "store/sweep_results.h"
#include "util/util.h"

namespace reglab::query {
namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

// Up to three names closest to `wanted`, for "did you mean" hints.
std::vector<std::string> nearest(const std::string& wanted, const std::vector<std::string>& names) {
  std::vector<std::pair<std::size_t, std::string>> scored;
  for (const auto& n : names) {
    const std::size_t d = util::edit_distance(wanted, n);
    if (d <= std::max<std::size_t>(2, wanted.size() / 3)) scored.emplace_back(d, n);
  }
  std::sort(scored.begin(), scored.end());
  std::vector<std::string> out;
  for (std::size_t i = 0; i < scored.size() && i < 3; ++i) out.push_back(scored[i].second);
  return out;
}

std::string did_you_mean(const std::string& wanted, const std::vector<std::string>& names) {
  const auto near = nearest(wanted, names);
  if (near.empty()) return "";
  return " (did you mean '" + util::join(near, "', '") + "'?)";
}

std::optional<double> parse_number(const std::string& text) {
  if (text.empty()) return std::nullopt;
  char* end = nullptr;
  const double v = std::strtod(text.c_str(), &end);
  if (end != text.c_str() + text.size()) return std::nullopt;
  return v;
}

// A config value matches a `where` value when the texts are equal, or when
// both are numbers with the same value ("0.10" matches 0.1, "1e-3" 0.001).
bool where_matches(const std::string& stored, const std::optional<double>& stored_num,
                   const std::string& wanted) {
  if (stored == wanted) return true;
  if (!stored_num) return false;
  const auto w = parse_number(wanted);
  return w && *w == *stored_num;
}

}  // namespace

GroupRow describe(const std::vector<double>& xs) {
  GroupRow g;
  g.n = static_cast<std::int64_t>(xs.size());
  double sum = 0;
  g.min = xs.front();
  g.max = xs.front();
  for (double x : xs) {
    sum += x;
    g.min = std::min(g.min, x);
    g.max = std::max(g.max, x);
  }
  g.mean = sum / static_cast<double>(g.n);
  if (g.n < 2) {
    g.std = kNaN;
    g.ci95 = kNaN;
    return g;
  }
  double ss = 0;
  for (double x : xs) ss += (x - g.mean) * (x - g.mean);
  g.std = std::sqrt(ss / static_cast<double>(g.n - 1));
  g.ci95 = t_quantile_975(g.n - 1) * g.std / std::sqrt(static_cast<double>(g.n));
  return g;
}

namespace {

// A group's runs must come from one code identity (store::CodeIdentity):
// pooling seeds of two versions of a method would blend two methods.
void refuse_mixed_code(store::Store& store, const CompareOptions& options, const RunGroup& group) {
  // Per method: a group of several methods (grouped by another key) pools
  // them on purpose; two identities of one method it must not.
  std::map<std::string, std::map<std::string, std::vector<std::int64_t>>> by_method;
  for (const std::int64_t id : group.run_ids) {
    const auto run = store.get_run(id);
    if (run) by_method[run->method_name][store::code_identity_of(*run).describe()].push_back(id);
  }
  for (const auto& [method, by_identity] : by_method) {
  if (by_identity.size() < 2) continue;
  std::string what;
  for (const auto& [identity, ids] : by_identity) {
    std::vector<std::string> list;
    for (std::size_t i = 0; i < ids.size() && i < 8; ++i) list.push_back(std::to_string(ids[i]));
    if (ids.size() > 8) list.push_back("...");
    what += "\n  " + identity + ": run(s) " + util::join(list, ", ");
  }
  throw std::runtime_error("group " + util::join(group.values, " ") + " of sweep '" + options.sweep +
                           "' pools runs of " + std::to_string(by_identity.size()) + " code identities:" + what +
                           "\nre-run the old ones with the current code (reglab run <sweep file>, whose --rerun "
                           "changed is the default) or pass --pool-code to pool them anyway");
  }
}

}  // namespace

std::vector<RunGroup> group_runs(store::Store& store, const CompareOptions& options) {
  if (options.summary != "final" && options.summary != "best") {
    throw std::invalid_argument("compare: summary must be 'final' or 'best', got '" + options.summary + "'");
  }
  const auto sweep = store.find_sweep(options.sweep);
  if (!sweep) {
    std::vector<std::string> names;
    for (const auto& s : store.list_sweeps()) names.push_back(s.name);
    if (names.empty()) {
      throw std::runtime_error("unknown sweep '" + options.sweep + "': the database " + store.path().string() +
                               " holds no sweeps yet");
    }
    throw std::runtime_error("unknown sweep '" + options.sweep + "'" + did_you_mean(options.sweep, names) +
                             "; sweeps in " + store.path().string() + ": " + util::join(names, ", "));
  }

  // The metric value of every completed run that logged the metric.
  std::map<std::int64_t, double> value_of;
  for (const store::RunSummaryValue& v : store::completed_summaries(store, sweep->id, options.metric, options.summary)) {
    value_of[v.run_id] = v.value;
  }
  if (value_of.empty() && options.summary == "best") {
    // "best" summaries exist only for metrics declared higher or lower is
    // better: say so rather than that the metric is missing.
    if (store::has_completed_summary(store, sweep->id, options.metric, "final")) {
      throw std::runtime_error("metric '" + options.metric + "' of sweep '" + options.sweep +
                               "' has no 'best' summary: its runs declare no higher or lower direction for it "
                               "(use --summary final)");
    }
  }
  if (value_of.empty()) {
    const std::vector<std::string> present = store::completed_summary_keys(store, sweep->id, options.summary);
    if (present.empty()) {
      std::vector<std::string> counts;
      for (const store::StatusCount& c : store::status_counts(store, sweep->id)) {
        counts.push_back(std::to_string(c.runs) + " " + c.status);
      }
      throw std::runtime_error("sweep '" + options.sweep + "' has no completed run with metrics yet (runs: " +
                               (counts.empty() ? std::string("none") : util::join(counts, ", ")) + ")");
    }
    throw std::runtime_error("metric '" + options.metric + "' not found in the completed runs of sweep '" +
                             options.sweep + "'" + did_you_mean(options.metric, present) +
                             "; metrics present: " + util::join(present, ", "));
  }

  // The config keys we need: grouping keys, then filter keys.
  std::vector<std::string> needed = options.by;
  for (const auto& [k, v] : options.where) needed.push_back(k);
  std::map<std::int64_t, std::map<std::string, std::pair<std::string, std::optional<double>>>> params;
  std::set<std::string> all_keys;
  {
    const std::set<std::string> wanted(needed.begin(), needed.end());
    store::visit_completed_params(store, sweep->id, [&](store::RunParam& p) {
      if (wanted.count(p.key) == 0) {
        all_keys.insert(std::move(p.key));
        return;
      }
      all_keys.insert(p.key);
      params[p.run_id][p.key] = {std::move(p.value), p.numeric};
    });
  }
  for (const auto& k : needed) {
    if (all_keys.count(k) == 0) {
      const std::vector<std::string> keys(all_keys.begin(), all_keys.end());
      throw std::runtime_error("config key '" + k + "' is not set in any completed run of sweep '" +
                               options.sweep + "'" + did_you_mean(k, keys) +
                               " (`reglab show <run>` lists a run's config keys)");
    }
  }

  std::map<std::vector<std::string>, RunGroup> groups;
  for (const auto& [run_id, value] : value_of) {
    const auto& p = params[run_id];
    bool keep = true;
    for (const auto& [k, v] : options.where) {
      const auto it = p.find(k);
      if (it == p.end() || !where_matches(it->second.first, it->second.second, v)) {
        keep = false;
        break;
      }
    }
    if (!keep) continue;
    std::vector<std::string> values;
    for (const auto& k : options.by) {
      const auto it = p.find(k);
      values.push_back(it == p.end() ? "(unset)" : it->second.first);
    }
    RunGroup& g = groups[values];
    g.run_ids.push_back(run_id);
    g.summaries.push_back(value);
  }

  if (groups.empty()) {
    // Only `where` can empty the selection: say which values do exist.
    std::string present;
    for (const auto& [k, v] : options.where) {
      std::set<std::string> seen;
      for (const auto& [run_id, value] : value_of) {
        const auto it = params[run_id].find(k);
        if (it != params[run_id].end()) seen.insert(it->second.first);
      }
      present += "; " + k + " takes: " + util::join(std::vector<std::string>(seen.begin(), seen.end()), ", ");
    }
    std::vector<std::string> conds;
    for (const auto& [k, v] : options.where) conds.push_back(k + "=" + v);
    throw std::runtime_error("no completed run of sweep '" + options.sweep + "' with metric '" + options.metric +
                             "' matches " + util::join(conds, ", ") + present);
  }
  std::vector<RunGroup> out;
  for (auto& [values, g] : groups) {
    g.values = values;
    if (!options.pool_code) refuse_mixed_code(store, options, g);
    out.push_back(std::move(g));
  }
  return out;
}

const char* direction_words(MetricDirection direction) {
  switch (direction) {
    case MetricDirection::kHigher: return "higher is better";
    case MetricDirection::kLower: return "lower is better";
    case MetricDirection::kNone: break;
  }
  return "no declared direction";
}

std::pair<MetricDirection, DirectionSource> resolve_direction(store::Store& store, const std::string& metric,
                                                              const std::vector<std::int64_t>& run_ids,
                                                              std::optional<MetricDirection> override_direction) {
  if (override_direction) return {*override_direction, DirectionSource::kOverride};
  const std::vector<MetricDirection> declared = store.declared_directions(metric, run_ids);
  if (declared.empty()) return {MetricDirection::kNone, DirectionSource::kUndeclared};
  if (declared.size() > 1) return {MetricDirection::kNone, DirectionSource::kDisagree};
  return {declared.front(), DirectionSource::kDeclared};
}

CompareResult compare(store::Store& store, const CompareOptions& options) {
  CompareResult result;
  result.options = options;
  std::vector<std::int64_t> run_ids;
  for (const RunGroup& group : group_runs(store, options)) {
    GroupRow g = describe(group.summaries);
    g.values = group.values;
    result.rows.push_back(std::move(g));
    run_ids.insert(run_ids.end(), group.run_ids.begin(), group.run_ids.end());
  }
  std::tie(result.direction, result.direction_source) =
      resolve_direction(store, options.metric, run_ids, options.direction);
  // Without a direction there is no "best": the groups keep the order of
  // their values.
  if (result.direction == MetricDirection::kNone) return result;
  // Best first; groups whose mean is NaN (a diverged run) go last. Ties keep
  // the order of the group values, so the output is deterministic.
  const bool lower = result.direction == MetricDirection::kLower;
  std::stable_sort(result.rows.begin(), result.rows.end(), [lower](const GroupRow& a, const GroupRow& b) {
    const bool an = std::isnan(a.mean), bn = std::isnan(b.mean);
    if (an != bn) return bn;
    if (an) return false;
    return lower ? a.mean < b.mean : a.mean > b.mean;
  });
  if (!result.rows.empty() && !std::isnan(result.rows.front().mean)) result.rows.front().best = true;
  return result;
}

}  // namespace reglab::query
