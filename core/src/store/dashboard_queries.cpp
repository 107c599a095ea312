// store/dashboard_queries.cpp — the dashboard API's reads.
#include "store/dashboard_queries.h"

#include <SQLiteCpp/SQLiteCpp.h>

#include <cmath>

#include "store/connection.h"
#include "store/metric_series.h"

namespace reglab::store {

std::vector<StatusActivity> status_activity(Store& store, std::int64_t sweep_id) {
  SQLite::Statement q(connection(store),
                      "SELECT status, COUNT(*), COALESCE(MAX(heartbeat_at), ''), COALESCE(MAX(finished_at), ''), "
                      "COALESCE(MAX(started_at), '') FROM runs WHERE sweep_id = ? GROUP BY status ORDER BY status");
  q.bind(1, sweep_id);
  std::vector<StatusActivity> out;
  while (q.executeStep()) {
    out.push_back({q.getColumn(0).getString(), q.getColumn(1).getInt64(), q.getColumn(2).getString(),
                   q.getColumn(3).getString(), q.getColumn(4).getString()});
  }
  return out;
}

std::vector<ParamKeySpread> param_key_spread(Store& store, std::int64_t sweep_id) {
  SQLite::Statement q(connection(store),
                      "SELECT p.key, COUNT(DISTINCT p.value), COUNT(*) FROM params p JOIN runs r ON r.id = p.run_id "
                      "WHERE r.sweep_id = ? GROUP BY p.key ORDER BY p.key");
  q.bind(1, sweep_id);
  std::vector<ParamKeySpread> out;
  while (q.executeStep()) out.push_back({q.getColumn(0).getString(), q.getColumn(1).getInt64(), q.getColumn(2).getInt64()});
  return out;
}

std::vector<std::string> final_metric_keys(Store& store, std::int64_t sweep_id) {
  SQLite::Statement q(connection(store),
                      "SELECT DISTINCT s.key FROM summaries s JOIN runs r ON r.id = s.run_id "
                      "WHERE r.sweep_id = ? AND s.kind = 'final' ORDER BY s.key");
  q.bind(1, sweep_id);
  std::vector<std::string> out;
  while (q.executeStep()) out.push_back(q.getColumn(0).getString());
  return out;
}

namespace {

const char* sort_column(RunSort sort) {
  switch (sort) {
    case RunSort::kId: return "r.id";
    case RunSort::kLabel: return "r.label";
    case RunSort::kStatus: return "r.status";
    case RunSort::kMethod: return "r.method_name";
    case RunSort::kDuration: return "r.duration_s";
    case RunSort::kStarted: return "r.started_at";
    case RunSort::kMetric: return "m.value";
    case RunSort::kParam: break;
  }
  return "";
}

}  // namespace

RunPage run_page(Store& store, const RunPageQuery& query) {
  SQLite::Database& db = connection(store);
  const std::string order = query.descending ? "desc" : "asc";
  const bool sort_param = query.sort == RunSort::kParam;
  const std::string order_by = sort_param ? "COALESCE(sp.value_num, 0) " + order + ", sp.value " + order
                                          : std::string(sort_column(query.sort)) + " " + order;
  // NULLs (runs without the metric or parameter) last either way, then id.
  const std::string null_first =
      query.sort == RunSort::kMetric ? "m.value IS NULL, " : (sort_param ? "sp.value IS NULL, " : "");

  std::string from = " FROM runs r";
  if (!query.metric.empty()) from += " LEFT JOIN summaries m ON m.run_id = r.id AND m.key = :metric AND m.kind = 'final'";
  if (sort_param) from += " LEFT JOIN params sp ON sp.run_id = r.id AND sp.key = :sort_key";
  std::string cond = " WHERE r.sweep_id = :sweep";
  if (!query.status.empty()) cond += " AND r.status = :status";
  if (!query.text.empty()) {
    cond += " AND (instr(lower(r.label), lower(:q)) OR instr(lower(r.key), lower(:q)) OR "
            "instr(lower(r.method_name), lower(:q)) OR instr(lower(r.error), lower(:q)))";
  }
  for (std::size_t i = 0; i < query.where.size(); ++i) {
    const std::string n = std::to_string(i);
    cond += " AND EXISTS (SELECT 1 FROM params p WHERE p.run_id = r.id AND p.key = :wk" + n + " AND p.value = :wv" +
            n + ")";
  }
  auto bind_all = [&](SQLite::Statement& q) {
    q.bind(":sweep", query.sweep_id);
    if (!query.status.empty()) q.bind(":status", query.status);
    if (!query.text.empty()) q.bind(":q", query.text);
    for (std::size_t i = 0; i < query.where.size(); ++i) {
      q.bind(":wk" + std::to_string(i), query.where[i].first);
      q.bind(":wv" + std::to_string(i), query.where[i].second);
    }
  };

  RunPage page;
  // Counted on its own rather than with a window count over the page query:
  // the count needs neither the metric join nor the sort, and the page
  // query can stop after `limit` rows when the order follows an index.
  {
    SQLite::Statement q(db, "SELECT COUNT(*) FROM runs r" + cond);
    bind_all(q);
    if (q.executeStep()) page.total = q.getColumn(0).getInt64();
  }
  std::string sql = "SELECT r.id, r.key, r.label, r.status, r.method_name, r.duration_s, r.error, r.started_at, " +
                    std::string(query.metric.empty() ? "NULL" : "m.value") + from + cond + " ORDER BY " + null_first +
                    order_by + ", r.id " + order + " LIMIT :limit OFFSET :offset";
  SQLite::Statement q(db, sql);
  bind_all(q);
  if (!query.metric.empty()) q.bind(":metric", query.metric);
  if (sort_param) q.bind(":sort_key", query.sort_param);
  q.bind(":limit", query.limit);
  q.bind(":offset", query.offset);
  while (q.executeStep()) {
    RunPageRow row;
    row.id = q.getColumn(0).getInt64();
    row.key = q.getColumn(1).getString();
    row.label = q.getColumn(2).getString();
    row.status = q.getColumn(3).getString();
    row.method = q.getColumn(4).getString();
    if (!q.getColumn(5).isNull()) row.duration_s = q.getColumn(5).getDouble();
    row.error = q.getColumn(6).getString();
    if (!q.getColumn(7).isNull()) row.started_at = q.getColumn(7).getString();
    if (!q.getColumn(8).isNull()) row.metric = q.getColumn(8).getDouble();
    page.rows.push_back(std::move(row));
  }
  return page;
}

std::vector<std::vector<std::optional<std::string>>> param_values(Store& store,
                                                                  const std::vector<std::int64_t>& run_ids,
                                                                  const std::vector<std::string>& keys) {
  std::vector<std::vector<std::optional<std::string>>> out(run_ids.size(),
                                                           std::vector<std::optional<std::string>>(keys.size()));
  if (run_ids.empty() || keys.empty()) return out;
  SQLite::Statement q(connection(store), "SELECT value FROM params WHERE run_id = ? AND key = ?");
  for (std::size_t i = 0; i < run_ids.size(); ++i) {
    for (std::size_t k = 0; k < keys.size(); ++k) {
      q.reset();
      q.bind(1, run_ids[i]);
      q.bind(2, keys[k]);
      if (q.executeStep()) out[i][k] = q.getColumn(0).getString();
    }
  }
  return out;
}

std::vector<SummaryRow> run_summaries(Store& store, std::int64_t run_id) {
  SQLite::Statement q(connection(store),
                      "SELECT key, kind, value, step FROM summaries WHERE run_id = ? ORDER BY key, kind");
  q.bind(1, run_id);
  std::vector<SummaryRow> out;
  while (q.executeStep()) {
    out.push_back({q.getColumn(0).getString(), q.getColumn(1).getString(),
                   q.getColumn(2).isNull() ? NAN : q.getColumn(2).getDouble(), q.getColumn(3).getInt64()});
  }
  return out;
}

std::vector<std::string> run_metric_keys(Store& store, std::int64_t run_id) {
  SQLite::Statement q(connection(store), "SELECT DISTINCT key FROM metrics WHERE run_id = ? ORDER BY key");
  q.bind(1, run_id);
  std::vector<std::string> out;
  while (q.executeStep()) out.push_back(q.getColumn(0).getString());
  return out;
}

std::vector<std::optional<RunSeries>> run_series(Store& store, const std::vector<std::int64_t>& run_ids,
                                                 const std::string& key) {
  std::vector<std::optional<RunSeries>> out;
  std::vector<std::int64_t> found;
  {
    SQLite::Statement q(connection(store), "SELECT label, status FROM runs WHERE id = ?");
    for (const std::int64_t id : run_ids) {
      q.reset();
      q.bind(1, id);
      if (!q.executeStep()) {
        out.emplace_back();
        break;
      }
      RunSeries s;
      s.id = id;
      s.label = q.getColumn(0).getString();
      s.status = q.getColumn(1).getString();
      out.emplace_back(std::move(s));
      found.push_back(id);
    }
  }
  const auto points = metric_series(store, found, key);
  for (std::size_t i = 0; i < found.size(); ++i) {
    for (const SeriesPoint& p : points[i]) {
      out[i]->steps.push_back(p.step);
      out[i]->values.push_back(p.value);
    }
  }
  return out;
}

}  // namespace reglab::store
