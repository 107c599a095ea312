// query/compare.h — grouped comparison of runs over seeds.
//
// Groups the completed runs of a sweep by the values of chosen config keys
// (dotted, e.g. "method.name") and reports, per group, the mean, sample
// standard deviation (n−1), the 95% confidence interval of the mean
// (Student t, n−1 degrees of freedom) and n. The metric value of a run is its
// summary: "final" (last logged value, default) or "best". The best group is
// the highest mean, or the lowest, by the direction the compared runs
// declared for the metric (table metric_directions) or the caller's override;
// without one (undeclared, declared "none", or runs that disagree) no group is
// marked best. Nothing is guessed from the metric's name. No torch.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "reglab/metric_direction.h"
#include "store/store.h"

namespace reglab::query {

struct CompareOptions {
  std::string sweep;
  std::string metric = "test.acc";
  std::vector<std::string> by = {"method.name"};
  std::string summary = "final";  // "final" | "best"
  std::vector<std::pair<std::string, std::string>> where;  // config key == value (as text)
  // A group whose runs were made by different code (store::CodeIdentity: the
  // method's version or library digest) is refused with a message naming
  // them, unless pool_code.
  bool pool_code = false;
  // Ranks by this direction instead of the runs' declarations
  // (--higher-is-better / --lower-is-better).
  std::optional<MetricDirection> direction;
};

struct GroupRow {
  std::vector<std::string> values;  // one per `by` key
  std::int64_t n = 0;
  double mean = 0, std = 0, ci95 = 0;  // ci95 is the half-width; NaN std/ci for n < 2
  double min = 0, max = 0;
  bool best = false;
};

// Where CompareResult::direction came from.
enum class DirectionSource {
  kDeclared,    // every run that declared the metric declared this direction
  kOverride,    // CompareOptions::direction
  kUndeclared,  // no compared run declared the metric (direction is kNone)
  kDisagree,    // the runs declared different directions (direction is kNone)
};

struct CompareResult {
  CompareOptions options;
  // kHigher or kLower: rows are sorted best first and the first is marked
  // best. kNone: rows keep the order of their group values, none is best.
  MetricDirection direction = MetricDirection::kNone;
  DirectionSource direction_source = DirectionSource::kUndeclared;
  std::vector<GroupRow> rows;
};

// The direction of `metric` over `run_ids` from their declarations, with
// where it came from (an override in `override_direction` wins).
std::pair<MetricDirection, DirectionSource> resolve_direction(store::Store& store, const std::string& metric,
                                                              const std::vector<std::int64_t>& run_ids,
                                                              std::optional<MetricDirection> override_direction);

// "higher is better", "lower is better" or "no declared direction" (also for
// a metric declared "none"): the words every view prints.
const char* direction_words(MetricDirection direction);
// The same as one word for JSON and the dashboard: "higher", "lower", "none".
inline const char* direction_name(MetricDirection direction) { return to_string(direction); }

// Throws std::runtime_error naming the sweep when it does not exist, and the
// metric when no completed run has it (listing the metrics that exist).
CompareResult compare(store::Store& store, const CompareOptions& options);

// The selection behind compare(): the completed runs that have the metric's
// summary and pass `where`, grouped by their `by` values ("(unset)" where a
// run lacks a key), groups ordered by those values, runs by id. Same errors
// as compare(). Other views (curves, reports) group runs through this so they
// always agree with `reglab compare`.
struct RunGroup {
  std::vector<std::string> values;      // one per `by` key
  std::vector<std::int64_t> run_ids;    // ascending
  std::vector<double> summaries;        // the metric summary of each run (NaN for NaN)
};
std::vector<RunGroup> group_runs(store::Store& store, const CompareOptions& options);

// n, mean, sample std, ci95 (half-width), min and max of a non-empty sample;
// std and ci95 are NaN when n < 2. `values` and `best` are left empty.
GroupRow describe(const std::vector<double>& xs);

// "table" (aligned text), "markdown", "csv", "json".
std::string format(const CompareResult& result, const std::string& format);

// Two-sided 97.5% quantile of Student's t with `dof` degrees of freedom.
double t_quantile_975(std::int64_t dof);

}  // namespace reglab::query
