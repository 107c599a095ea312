// store/metric_series.h — the logged points of one metric of given runs.
//
// Read-only (works on a ReadOnly Store). One prepared lookup by the metrics
// table's primary key (run, key, step), so a run's points of one metric are
// read without scanning its other metrics. Exact keys: unlike
// Store::metrics, no LIKE pattern. No torch.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "store/store.h"

namespace reglab::store {

struct SeriesPoint {
  std::int64_t step = 0;
  double value = 0;  // NaN where stored as NULL
};

// For each run of `run_ids`, in that order, its points of metric `key`
// ordered by step (empty for a run that never logged it, or no such run).
std::vector<std::vector<SeriesPoint>> metric_series(Store& store, const std::vector<std::int64_t>& run_ids,
                                                    const std::string& key);

}  // namespace reglab::store
