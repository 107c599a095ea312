// query/compare.h — grouped comparison of runs over seeds.
//
// Groups the completed runs of a sweep by the values of chosen config keys
// (dotted, e.g. "method.name") and reports, per group, the mean, sample
// standard deviation (n−1), the 95% confidence interval of the mean
// (Student t, n−1 degrees of freedom) and n. The metric value of a run is its
// summary: "final" (last logged value, default) or "best". The best group is
// the highest mean, or the lowest for metrics where lower is better (keys
// ending in loss, nll, ece, err, error, aurc). No torch.
#pragma once

#include <optional>
#include <string>
#include <vector>

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
};

struct GroupRow {
  std::vector<std::string> values;  // one per `by` key
  std::int64_t n = 0;
  double mean = 0, std = 0, ci95 = 0;  // ci95 is the half-width; NaN std/ci for n < 2
  double min = 0, max = 0;
  bool best = false;
};

struct CompareResult {
  CompareOptions options;
  bool lower_is_better = false;
  std::vector<GroupRow> rows;  // sorted by mean, best first
};

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

bool lower_is_better(const std::string& metric);
// Two-sided 97.5% quantile of Student's t with `dof` degrees of freedom.
double t_quantile_975(std::int64_t dof);

}  // namespace reglab::query
