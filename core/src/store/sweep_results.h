// store/sweep_results.h — the completed runs of a sweep with their params and
// summaries: the reads behind `reglab compare`, plots and reports.
//
// Read-only (works on a ReadOnly Store). Only the documented tables (runs,
// params, summaries) with the SQL a user would write, so `reglab compare`
// and a pandas notebook agree. "Completed" is runs.status = 'completed'.
// Like Store, not thread-safe. No torch.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "store/store.h"

namespace reglab::store {

// One summary value of one run.
struct RunSummaryValue {
  std::int64_t run_id = 0;
  double value = 0;  // NaN when stored as NULL
};

// The `kind` ("final" or "best") summary of metric `key` of every completed
// run of the sweep that has one, ordered by run id.
std::vector<RunSummaryValue> completed_summaries(Store& store, std::int64_t sweep_id, const std::string& key,
                                                 const std::string& kind);

// Whether any completed run of the sweep has a `kind` summary of `key`.
bool has_completed_summary(Store& store, std::int64_t sweep_id, const std::string& key, const std::string& kind);

// The distinct metric keys with a `kind` summary in the completed runs of the
// sweep, ordered.
std::vector<std::string> completed_summary_keys(Store& store, std::int64_t sweep_id, const std::string& kind);

// One config key of one run (a params row).
struct RunParam {
  std::int64_t run_id = 0;
  std::string key;
  std::string value;              // text
  std::optional<double> numeric;  // set when the config value is a number
};

// Calls `visit` with every config key of every completed run of the sweep,
// in no set order, one row at a time rather than all at once (a sweep of
// 10^4 runs has ~10^6 params rows); `visit` may move from its argument.
void visit_completed_params(Store& store, std::int64_t sweep_id, const std::function<void(RunParam&)>& visit);

// How many runs of a sweep have one status.
struct StatusCount {
  std::string status;  // "completed", ... (the runs.status text)
  std::int64_t runs = 0;
};

// One row per status present in the sweep (every run, not only the
// completed ones), ordered by status.
std::vector<StatusCount> status_counts(Store& store, std::int64_t sweep_id);

}  // namespace reglab::store
