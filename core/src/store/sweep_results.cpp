// store/sweep_results.cpp — completed runs with their params and summaries.
#include "store/sweep_results.h"

#include <SQLiteCpp/SQLiteCpp.h>

#include <cmath>

#include "store/connection.h"

namespace reglab::store {

std::vector<RunSummaryValue> completed_summaries(Store& store, std::int64_t sweep_id, const std::string& key,
                                                 const std::string& kind) {
  SQLite::Statement q(connection(store),
                      "SELECT s.run_id, s.value FROM summaries s JOIN runs r ON r.id = s.run_id "
                      "WHERE r.sweep_id = ? AND r.status = 'completed' AND s.key = ? AND s.kind = ? "
                      "ORDER BY s.run_id");
  q.bind(1, sweep_id);
  q.bind(2, key);
  q.bind(3, kind);
  std::vector<RunSummaryValue> out;
  while (q.executeStep()) {
    out.push_back({q.getColumn(0).getInt64(), q.getColumn(1).isNull() ? NAN : q.getColumn(1).getDouble()});
  }
  return out;
}

bool has_completed_summary(Store& store, std::int64_t sweep_id, const std::string& key, const std::string& kind) {
  SQLite::Statement q(connection(store),
                      "SELECT 1 FROM summaries s JOIN runs r ON r.id = s.run_id "
                      "WHERE r.sweep_id = ? AND r.status = 'completed' AND s.key = ? AND s.kind = ? LIMIT 1");
  q.bind(1, sweep_id);
  q.bind(2, key);
  q.bind(3, kind);
  return q.executeStep();
}

std::vector<std::string> completed_summary_keys(Store& store, std::int64_t sweep_id, const std::string& kind) {
  SQLite::Statement q(connection(store),
                      "SELECT DISTINCT s.key FROM summaries s JOIN runs r ON r.id = s.run_id "
                      "WHERE r.sweep_id = ? AND r.status = 'completed' AND s.kind = ? ORDER BY s.key");
  q.bind(1, sweep_id);
  q.bind(2, kind);
  std::vector<std::string> out;
  while (q.executeStep()) out.push_back(q.getColumn(0).getString());
  return out;
}

void visit_completed_params(Store& store, std::int64_t sweep_id, const std::function<void(RunParam&)>& visit) {
  SQLite::Statement q(connection(store),
                      "SELECT p.run_id, p.key, p.value, p.value_num FROM params p JOIN runs r ON r.id = p.run_id "
                      "WHERE r.sweep_id = ? AND r.status = 'completed'");
  q.bind(1, sweep_id);
  while (q.executeStep()) {
    RunParam p;
    p.run_id = q.getColumn(0).getInt64();
    p.key = q.getColumn(1).getString();
    p.value = q.getColumn(2).getString();
    if (!q.getColumn(3).isNull()) p.numeric = q.getColumn(3).getDouble();
    visit(p);
  }
}

std::vector<StatusCount> status_counts(Store& store, std::int64_t sweep_id) {
  SQLite::Statement q(connection(store),
                      "SELECT status, count(*) FROM runs WHERE sweep_id = ? GROUP BY status ORDER BY status");
  q.bind(1, sweep_id);
  std::vector<StatusCount> out;
  while (q.executeStep()) out.push_back({q.getColumn(0).getString(), q.getColumn(1).getInt64()});
  return out;
}

}  // namespace reglab::store
