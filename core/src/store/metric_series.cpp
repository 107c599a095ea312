// store/metric_series.cpp — one metric's points of several runs.
#include "store/metric_series.h"

#include <SQLiteCpp/SQLiteCpp.h>

#include <cmath>

#include "store/connection.h"

namespace reglab::store {

std::vector<std::vector<SeriesPoint>> metric_series(Store& store, const std::vector<std::int64_t>& run_ids,
                                                    const std::string& key) {
  // Prepared once for all runs: a plot reads thousands of runs.
  SQLite::Statement q(connection(store), "SELECT step, value FROM metrics WHERE run_id = ? AND key = ? ORDER BY step");
  std::vector<std::vector<SeriesPoint>> out;
  out.reserve(run_ids.size());
  for (const std::int64_t id : run_ids) {
    q.reset();
    q.bind(1, id);
    q.bind(2, key);
    std::vector<SeriesPoint>& points = out.emplace_back();
    while (q.executeStep()) {
      points.push_back({q.getColumn(0).getInt64(), q.getColumn(1).isNull() ? NAN : q.getColumn(1).getDouble()});
    }
  }
  return out;
}

}  // namespace reglab::store
