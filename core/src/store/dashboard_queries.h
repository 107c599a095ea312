// store/dashboard_queries.h — the reads behind the dashboard's JSON API
// (serve/api.cpp): status activity, parameter keys, pages of runs, one run's
// summaries and metric keys, metric series of several runs.
//
// Read-only: every function works on a Store opened ReadOnly (what `reglab
// serve` opens) and changes nothing. Results are plain structs; the API turns
// them into JSON and decides what to show. The filters and sorting of a page
// of runs run in SQL, so that a sweep of 10^4 runs answers in milliseconds.
// Like Store, not thread-safe. No torch.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "store/store.h"
#include "store/sweep_results.h"  // status_counts, which the API uses too

namespace reglab::store {

// The runs of one status and their latest times ("" when none): what changes
// whenever a run starts, beats, finishes or logs.
struct StatusActivity {
  std::string status;
  std::int64_t runs = 0;
  std::string latest_heartbeat, latest_finish, latest_start;
};

// One row per status present in the sweep, ordered by status; one scan.
std::vector<StatusActivity> status_activity(Store& store, std::int64_t sweep_id);

// How one config key is spread over a sweep's runs.
struct ParamKeySpread {
  std::string key;
  std::int64_t distinct_values = 0;  // distinct texts among the runs that set it
  std::int64_t runs_with_key = 0;    // runs that set it
};

// Every config key of the sweep's runs (all statuses), ordered by key.
std::vector<ParamKeySpread> param_key_spread(Store& store, std::int64_t sweep_id);

// The metric keys with a "final" summary in any run of the sweep, ordered.
std::vector<std::string> final_metric_keys(Store& store, std::int64_t sweep_id);

// How a page of runs is sorted.
enum class RunSort { kId, kLabel, kStatus, kMethod, kDuration, kStarted, kMetric, kParam };

// Which runs of a sweep, in which order, and which page of them.
struct RunPageQuery {
  std::int64_t sweep_id = 0;
  std::string status;  // runs.status text; "" for every status
  // Case-insensitive substring of the label, key, method or error; "" for all.
  std::string text;
  // Config key == value (as text), all of them.
  std::vector<std::pair<std::string, std::string>> where;
  // The metric whose final summary each row carries (RunPageRow::metric);
  // "" for none. Needed for RunSort::kMetric.
  std::string metric;
  RunSort sort = RunSort::kId;
  std::string sort_param;  // the config key of RunSort::kParam
  bool descending = false;
  std::int64_t limit = 100;
  std::int64_t offset = 0;
};

struct RunPageRow {
  std::int64_t id = 0;
  std::string key, label, status, method;
  std::optional<double> duration_s;   // nullopt while unknown
  std::string error;
  std::optional<std::string> started_at;  // nullopt when never started
  std::optional<double> metric;       // the final summary of RunPageQuery::metric; nullopt without one
};

struct RunPage {
  std::int64_t total = 0;  // runs that pass the filters, over all pages
  std::vector<RunPageRow> rows;
};

// The runs that pass the filters, sorted, then the page [offset, offset +
// limit). A parameter sort orders by its numeric value, then its text.
// Runs without the sort's metric or parameter come last either way; ties
// are broken by id in the same direction.
RunPage run_page(Store& store, const RunPageQuery& query);

// For each run of `run_ids`, the value (text) of each key of `keys`, in that
// order; nullopt where the run does not set the key.
std::vector<std::vector<std::optional<std::string>>> param_values(Store& store,
                                                                  const std::vector<std::int64_t>& run_ids,
                                                                  const std::vector<std::string>& keys);

// One row of the summaries table.
struct SummaryRow {
  std::string key;
  std::string kind;  // "final" or "best"
  double value = 0;  // NaN when stored as NULL
  std::int64_t step = 0;
};

// A run's summaries, ordered by key, then kind.
std::vector<SummaryRow> run_summaries(Store& store, std::int64_t run_id);

// The distinct metric keys a run logged, ordered.
std::vector<std::string> run_metric_keys(Store& store, std::int64_t run_id);

// One metric of one run.
struct RunSeries {
  std::int64_t id = 0;
  std::string label, status;
  std::vector<std::int64_t> steps;
  std::vector<double> values;  // NaN where stored as NULL
};

// Metric `key` of each run of `run_ids`, in that order, each ordered by step
// (empty for a run that never logged it). Stops at the first id that names
// no run: its entry is then nullopt and the last one.
std::vector<std::optional<RunSeries>> run_series(Store& store, const std::vector<std::int64_t>& run_ids,
                                                 const std::string& key);

}  // namespace reglab::store
