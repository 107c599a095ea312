#include "serve/api.h"

#include <SQLiteCpp/SQLiteCpp.h>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <functional>
#include <map>
#include <stdexcept>

#include "query/compare.h"
#include "report/html.h"
#include "report/plot.h"
#include "util/util.h"

namespace reglab::serve {

namespace {

using Json = nlohmann::ordered_json;

// A request the API refuses; becomes a 400 or 404 answer.
struct ApiError : std::runtime_error {
  ApiError(int status, const std::string& what) : std::runtime_error(what), status(status) {}
  int status;
};

Json number_or_null(double x) { return std::isfinite(x) ? Json(x) : Json(nullptr); }

std::int64_t int_param(const ApiRequest& r, const std::string& key, std::int64_t fallback, std::int64_t lo,
                       std::int64_t hi) {
  const std::string text = r.get(key);
  if (text.empty()) return fallback;
  std::size_t used = 0;
  std::int64_t v = 0;
  try {
    v = std::stoll(text, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (used != text.size() || v < lo || v > hi) {
    throw ApiError(400, "parameter '" + key + "' must be an integer in [" + std::to_string(lo) + ", " +
                            std::to_string(hi) + "], got '" + text + "'");
  }
  return v;
}

std::string required(const ApiRequest& r, const std::string& key) {
  std::string v = r.get(key);
  if (v.empty()) throw ApiError(400, "parameter '" + key + "' is required");
  return v;
}

std::string one_of(const ApiRequest& r, const std::string& key, const std::string& fallback,
                   const std::vector<std::string>& choices) {
  const std::string v = r.get(key, fallback);
  if (std::find(choices.begin(), choices.end(), v) == choices.end()) {
    throw ApiError(400, "parameter '" + key + "' must be one of " + util::join(choices, ", ") + ", got '" + v + "'");
  }
  return v;
}

// `where=key=value` pairs: the config key must be non-empty.
std::vector<std::pair<std::string, std::string>> where_params(const ApiRequest& r) {
  std::vector<std::pair<std::string, std::string>> out;
  for (const std::string& w : r.all("where")) {
    const auto eq = w.find('=');
    if (eq == std::string::npos || eq == 0) {
      throw ApiError(400, "parameter 'where' must be KEY=VALUE, got '" + w + "'");
    }
    out.emplace_back(w.substr(0, eq), w.substr(eq + 1));
  }
  return out;
}

store::SweepRow find_sweep(store::Store& store, const std::string& name) {
  auto sweep = store.find_sweep(name);
  if (!sweep) throw ApiError(404, "no sweep named '" + name + "'");
  return *sweep;
}

Json status_counts(SQLite::Database& db, std::int64_t sweep_id) {
  Json counts = {{"pending", 0}, {"running", 0}, {"completed", 0}, {"failed", 0}, {"interrupted", 0}};
  SQLite::Statement q(db, "SELECT status, COUNT(*) FROM runs WHERE sweep_id = ? GROUP BY status");
  q.bind(1, sweep_id);
  while (q.executeStep()) counts[q.getColumn(0).getString()] = q.getColumn(1).getInt64();
  return counts;
}

Json sweeps(store::Store& store) {
  Json list = Json::array();
  for (const store::SweepRow& s : store.list_sweeps()) {
    Json counts = status_counts(store.db(), s.id);
    std::int64_t total = 0;
    for (const auto& [k, v] : counts.items()) total += v.get<std::int64_t>();
    list.push_back({{"name", s.name}, {"description", s.description}, {"created_at", s.created_at},
                    {"runs", total}, {"status", std::move(counts)}});
  }
  return {{"sweeps", std::move(list)}};
}

// Keys whose values differ between the sweep's runs (a key some runs lack
// counts as differing), except the seed — the columns worth showing.
std::vector<std::string> varying_param_keys(SQLite::Database& db, std::int64_t sweep_id, std::int64_t runs) {
  SQLite::Statement q(db,
                      "SELECT p.key, COUNT(DISTINCT p.value), COUNT(*) FROM params p JOIN runs r ON r.id = p.run_id "
                      "WHERE r.sweep_id = ? GROUP BY p.key ORDER BY p.key");
  q.bind(1, sweep_id);
  std::vector<std::string> keys;
  while (q.executeStep()) {
    const std::string key = q.getColumn(0).getString();
    if (key == "seed") continue;
    if (q.getColumn(1).getInt64() > 1 || q.getColumn(2).getInt64() < runs) keys.push_back(key);
  }
  return keys;
}

Json sweep(store::Store& store, const ApiRequest& r) {
  const store::SweepRow s = find_sweep(store, required(r, "name"));
  Json counts = status_counts(store.db(), s.id);
  std::int64_t total = 0;
  for (const auto& [k, v] : counts.items()) total += v.get<std::int64_t>();
  Json metrics = Json::array();
  {
    SQLite::Statement q(store.db(),
                        "SELECT DISTINCT s.key FROM summaries s JOIN runs r ON r.id = s.run_id "
                        "WHERE r.sweep_id = ? AND s.kind = 'final' ORDER BY s.key");
    q.bind(1, s.id);
    while (q.executeStep()) metrics.push_back(q.getColumn(0).getString());
  }
  std::vector<std::string> by = {"method.name"};
  if (counts["completed"].get<std::int64_t>() > 0) by = report::default_grouping(store, s.id);
  return {{"name", s.name},
          {"description", s.description},
          {"toml", s.toml},
          {"created_at", s.created_at},
          {"runs", total},
          {"status", std::move(counts)},
          {"metrics", std::move(metrics)},
          {"keys", varying_param_keys(store.db(), s.id, total)},
          {"default_by", by}};
}

// The runs table: one page of a sweep's runs, filtered and sorted in SQL so
// that a sweep of 10^4 runs answers in milliseconds.
Json runs(store::Store& store, const ApiRequest& r) {
  const store::SweepRow s = find_sweep(store, required(r, "sweep"));
  const std::string status = r.get("status");
  if (!status.empty()) {
    try {
      (void)store::run_status_from_string(status);
    } catch (const std::exception&) {
      throw ApiError(400, "parameter 'status' must be pending, running, completed, failed, interrupted or superseded, got '" +
                              status + "'");
    }
  }
  const std::string metric = r.get("metric");
  const std::string sort = r.get("sort", "id");
  const std::string order = one_of(r, "order", "asc", {"asc", "desc"});
  const std::int64_t limit = int_param(r, "limit", 100, 1, kMaxPageSize);
  const std::int64_t offset = int_param(r, "offset", 0, 0, INT64_MAX);
  const auto where = where_params(r);
  const std::string text = r.get("q");

  // Sort keys: a column of runs, the metric's final value, or a parameter.
  static const std::map<std::string, std::string> columns = {
      {"id", "r.id"}, {"label", "r.label"}, {"status", "r.status"}, {"method", "r.method_name"},
      {"duration", "r.duration_s"}, {"started", "r.started_at"}, {"metric", "m.value"}};
  std::string order_by;
  bool sort_param = false;
  if (sort.rfind("param:", 0) == 0 && sort.size() > 6) {
    sort_param = true;
    order_by = "COALESCE(sp.value_num, 0) " + order + ", sp.value " + order;
  } else if (auto it = columns.find(sort); it != columns.end()) {
    if (sort == "metric" && metric.empty()) throw ApiError(400, "sort=metric needs parameter 'metric'");
    order_by = it->second + " " + order;
  } else {
    throw ApiError(400, "parameter 'sort' must be id, label, status, method, duration, started, metric or "
                        "param:KEY, got '" + sort + "'");
  }
  // NULLs (runs without the metric or parameter) last either way, then id.
  const std::string null_first = sort == "metric" ? "m.value IS NULL, " : (sort_param ? "sp.value IS NULL, " : "");

  std::string from = " FROM runs r";
  if (!metric.empty()) from += " LEFT JOIN summaries m ON m.run_id = r.id AND m.key = :metric AND m.kind = 'final'";
  if (sort_param) from += " LEFT JOIN params sp ON sp.run_id = r.id AND sp.key = :sort_key";
  std::string cond = " WHERE r.sweep_id = :sweep";
  if (!status.empty()) cond += " AND r.status = :status";
  if (!text.empty()) {
    cond += " AND (instr(lower(r.label), lower(:q)) OR instr(lower(r.key), lower(:q)) OR "
            "instr(lower(r.method_name), lower(:q)) OR instr(lower(r.error), lower(:q)))";
  }
  for (std::size_t i = 0; i < where.size(); ++i) {
    const std::string n = std::to_string(i);
    cond += " AND EXISTS (SELECT 1 FROM params p WHERE p.run_id = r.id AND p.key = :wk" + n + " AND p.value = :wv" +
            n + ")";
  }
  auto bind_all = [&](SQLite::Statement& q) {
    q.bind(":sweep", s.id);
    if (!status.empty()) q.bind(":status", status);
    if (!text.empty()) q.bind(":q", text);
    for (std::size_t i = 0; i < where.size(); ++i) {
      q.bind(":wk" + std::to_string(i), where[i].first);
      q.bind(":wv" + std::to_string(i), where[i].second);
    }
  };

  // Counted on its own rather than with a window count over the page query:
  // the count needs neither the metric join nor the sort, and the page
  // query can stop after `limit` rows when the order follows an index.
  std::int64_t total = 0;
  {
    SQLite::Statement q(store.db(), "SELECT COUNT(*) FROM runs r" + cond);
    bind_all(q);
    if (q.executeStep()) total = q.getColumn(0).getInt64();
  }
  Json rows = Json::array();
  std::vector<std::int64_t> ids;
  {
    std::string sql = "SELECT r.id, r.key, r.label, r.status, r.method_name, r.duration_s, r.error, r.started_at, " +
                      std::string(metric.empty() ? "NULL" : "m.value") + from + cond +
                      " ORDER BY " + null_first +
                      order_by + ", r.id " + order + " LIMIT :limit OFFSET :offset";
    SQLite::Statement q(store.db(), sql);
    bind_all(q);
    if (!metric.empty()) q.bind(":metric", metric);
    if (sort_param) q.bind(":sort_key", sort.substr(6));
    q.bind(":limit", limit);
    q.bind(":offset", offset);
    while (q.executeStep()) {
      ids.push_back(q.getColumn(0).getInt64());
      rows.push_back({{"id", q.getColumn(0).getInt64()},
                      {"key", q.getColumn(1).getString()},
                      {"label", q.getColumn(2).getString()},
                      {"status", q.getColumn(3).getString()},
                      {"method", q.getColumn(4).getString()},
                      {"duration_s", q.getColumn(5).isNull() ? Json(nullptr) : Json(q.getColumn(5).getDouble())},
                      {"error", q.getColumn(6).getString()},
                      {"started_at", q.getColumn(7).isNull() ? Json(nullptr) : Json(q.getColumn(7).getString())},
                      {"metric", q.getColumn(8).isNull() ? Json(nullptr) : number_or_null(q.getColumn(8).getDouble())},
                      {"params", Json::object()}});
    }
  }
  // The page's parameter values for the requested columns only.
  const std::vector<std::string> wanted = r.all("columns");
  if (!ids.empty() && !wanted.empty()) {
    SQLite::Statement q(store.db(), "SELECT value FROM params WHERE run_id = ? AND key = ?");
    for (std::size_t i = 0; i < ids.size(); ++i) {
      for (const std::string& key : wanted) {
        q.reset();
        q.bind(1, ids[i]);
        q.bind(2, key);
        if (q.executeStep()) rows[i]["params"][key] = q.getColumn(0).getString();
      }
    }
  }
  return {{"sweep", s.name}, {"total", total}, {"offset", offset}, {"limit", limit}, {"runs", std::move(rows)}};
}

std::string log_tail(const std::string& path, std::size_t max_bytes) {
  if (path.empty()) return "";
  std::ifstream f(path, std::ios::binary | std::ios::ate);
  if (!f) return "";
  const std::streamoff size = f.tellg();
  const std::streamoff start = size > static_cast<std::streamoff>(max_bytes) ? size - max_bytes : 0;
  f.seekg(start);
  std::string text(static_cast<std::size_t>(size - start), '\0');
  f.read(text.data(), static_cast<std::streamsize>(text.size()));
  // Start at a line boundary when the file was cut.
  if (start > 0) {
    const auto nl = text.find('\n');
    if (nl != std::string::npos) text.erase(0, nl + 1);
  }
  return text;
}

std::int64_t run_id_param(const ApiRequest& r) { return int_param(r, "id", -1, 1, INT64_MAX); }

Json run(store::Store& store, const ApiRequest& r) {
  const std::int64_t id = run_id_param(r);
  if (id < 0) throw ApiError(400, "parameter 'id' is required");
  auto row = store.get_run(id);
  if (!row) throw ApiError(404, "no run with id " + std::to_string(id));
  Json config;
  try {
    config = Json::parse(row->config_json);
  } catch (const std::exception&) {
    config = row->config_json;  // shown as text rather than lost
  }
  Json summaries = Json::array();
  {
    SQLite::Statement q(store.db(), "SELECT key, kind, value, step FROM summaries WHERE run_id = ? ORDER BY key, kind");
    q.bind(1, id);
    while (q.executeStep()) {
      summaries.push_back({{"key", q.getColumn(0).getString()},
                           {"kind", q.getColumn(1).getString()},
                           {"value", q.getColumn(2).isNull() ? Json(nullptr) : number_or_null(q.getColumn(2).getDouble())},
                           {"step", q.getColumn(3).getInt64()}});
    }
  }
  Json metric_keys = Json::array();
  {
    SQLite::Statement q(store.db(), "SELECT DISTINCT key FROM metrics WHERE run_id = ? ORDER BY key");
    q.bind(1, id);
    while (q.executeStep()) metric_keys.push_back(q.getColumn(0).getString());
  }
  Json artifacts = Json::array();
  for (const store::ArtifactRow& a : store.artifacts(id)) {
    artifacts.push_back({{"kind", a.kind}, {"path", a.path}, {"checksum", a.checksum}, {"created_at", a.created_at}});
  }
  const std::size_t tail_bytes = static_cast<std::size_t>(int_param(r, "log_bytes", 16384, 0, 1 << 22));
  return {{"id", row->id},
          {"sweep", row->sweep_name},
          {"key", row->key},
          {"label", row->label},
          {"status", store::to_string(row->status)},
          {"method", row->method_name},
          {"method_version", row->method_version},
          {"host", row->host},
          {"git_rev", row->git_rev},
          {"attempts", row->attempts},
          {"created_at", row->created_at},
          {"started_at", row->started_at},
          {"finished_at", row->finished_at},
          {"heartbeat_at", row->heartbeat_at},
          {"duration_s", row->duration_s},
          {"error", row->error},
          {"log_path", row->log_path},
          {"config", std::move(config)},
          {"summaries", std::move(summaries)},
          {"metrics", std::move(metric_keys)},
          {"artifacts", std::move(artifacts)},
          {"log_tail", log_tail(row->log_path, tail_bytes)}};
}

std::size_t max_points_param(const ApiRequest& r) {
  return static_cast<std::size_t>(int_param(r, "max_points", kDefaultMaxPoints, 2, 100000));
}

std::vector<std::int64_t> id_list(const ApiRequest& r) {
  std::vector<std::int64_t> ids;
  for (const std::string& field : r.all("ids")) {
    for (const std::string& part : util::split(field, ',')) {
      if (part.empty()) continue;
      std::size_t used = 0;
      std::int64_t v = 0;
      try {
        v = std::stoll(part, &used);
      } catch (const std::exception&) {
        used = 0;
      }
      if (used != part.size() || v < 1) throw ApiError(400, "parameter 'ids' must be run ids, got '" + part + "'");
      ids.push_back(v);
    }
  }
  if (ids.empty()) throw ApiError(400, "parameter 'ids' is required (comma-separated run ids)");
  if (ids.size() > static_cast<std::size_t>(kMaxPageSize)) {
    throw ApiError(400, "parameter 'ids' lists " + std::to_string(ids.size()) + " runs; at most " +
                            std::to_string(kMaxPageSize));
  }
  return ids;
}

// One metric of several runs, each series thinned to max_points.
Json series(store::Store& store, const ApiRequest& r) {
  const std::vector<std::int64_t> ids = id_list(r);
  const std::string key = required(r, "key");
  const std::size_t max_points = max_points_param(r);
  SQLite::Statement run_q(store.db(), "SELECT label, status FROM runs WHERE id = ?");
  SQLite::Statement q(store.db(), "SELECT step, value FROM metrics WHERE run_id = ? AND key = ? ORDER BY step");
  Json out = Json::array();
  for (const std::int64_t id : ids) {
    run_q.reset();
    run_q.bind(1, id);
    if (!run_q.executeStep()) throw ApiError(404, "no run with id " + std::to_string(id));
    std::vector<std::int64_t> steps;
    std::vector<double> values;
    q.reset();
    q.bind(1, id);
    q.bind(2, key);
    while (q.executeStep()) {
      steps.push_back(q.getColumn(0).getInt64());
      values.push_back(q.getColumn(1).isNull() ? NAN : q.getColumn(1).getDouble());
    }
    Json xs = Json::array(), ys = Json::array();
    for (const std::size_t i : thin_indices(steps.size(), max_points)) {
      xs.push_back(steps[i]);
      ys.push_back(number_or_null(values[i]));
    }
    out.push_back({{"id", id},
                   {"label", run_q.getColumn(0).getString()},
                   {"status", run_q.getColumn(1).getString()},
                   {"points", steps.size()},
                   {"steps", std::move(xs)},
                   {"values", std::move(ys)}});
  }
  return {{"key", key}, {"series", std::move(out)}};
}

// Group curves exactly as `reglab plot` draws them (report::curves), thinned.
Json curves(store::Store& store, const ApiRequest& r) {
  report::PlotOptions o;
  o.sweep = required(r, "sweep");
  (void)find_sweep(store, o.sweep);
  o.metric = required(r, "metric");
  o.by = r.all("by");
  if (o.by.empty()) o.by = {"method.name"};
  o.where = where_params(r);
  o.band = one_of(r, "band", "std", {"std", "ci"});
  const std::size_t max_points = max_points_param(r);
  std::vector<report::Curve> cs;
  try {
    cs = report::curves(store, o);
  } catch (const std::invalid_argument& e) {
    throw ApiError(400, e.what());
  } catch (const std::runtime_error& e) {
    throw ApiError(404, e.what());
  }
  Json groups = Json::array();
  for (std::size_t g = 0; g < cs.size(); ++g) {
    const report::Curve& c = cs[g];
    Json steps = Json::array(), mean = Json::array(), lo = Json::array(), hi = Json::array(), n = Json::array();
    for (const std::size_t i : thin_indices(c.points.size(), max_points)) {
      const report::CurvePoint& p = c.points[i];
      const double half = o.band == "ci" ? p.ci95 : p.std;
      steps.push_back(p.step);
      mean.push_back(number_or_null(p.mean));
      lo.push_back(number_or_null(p.mean - half));
      hi.push_back(number_or_null(p.mean + half));
      n.push_back(p.n);
    }
    groups.push_back({{"values", c.values},
                      {"label", report::group_label(o.by, c.values)},
                      {"colour", report::group_colour(g)},
                      {"runs", c.runs},
                      {"steps", std::move(steps)},
                      {"mean", std::move(mean)},
                      {"lo", std::move(lo)},
                      {"hi", std::move(hi)},
                      {"n", std::move(n)}});
  }
  return {{"sweep", o.sweep}, {"metric", o.metric}, {"by", o.by}, {"band", o.band}, {"groups", std::move(groups)}};
}

Json compare(store::Store& store, const ApiRequest& r) {
  query::CompareOptions o;
  o.sweep = required(r, "sweep");
  (void)find_sweep(store, o.sweep);
  o.metric = required(r, "metric");
  o.by = r.all("by");
  if (o.by.empty()) o.by = {"method.name"};
  o.summary = one_of(r, "summary", "final", {"final", "best"});
  o.where = where_params(r);
  // direction=higher|lower ranks as asked; absent (or "declared"): by the
  // runs' declared direction, as `reglab compare` does.
  const std::string direction = one_of(r, "direction", "declared", {"declared", "higher", "lower"});
  if (direction != "declared") o.direction = metric_direction_from_string(direction);
  query::CompareResult result;
  try {
    result = query::compare(store, o);
  } catch (const std::invalid_argument& e) {
    throw ApiError(400, e.what());
  } catch (const std::runtime_error& e) {
    throw ApiError(404, e.what());
  }
  return Json::parse(query::format(result, "json"));
}

// Cheap to poll: changes whenever a run starts, beats, finishes or logs.
Json state(store::Store& store, const ApiRequest& r) {
  const store::SweepRow s = find_sweep(store, required(r, "sweep"));
  // Counts and the latest times per status in one scan of the sweep's runs.
  Json counts = {{"pending", 0}, {"running", 0}, {"completed", 0}, {"failed", 0}, {"interrupted", 0}};
  std::string token;
  {
    SQLite::Statement q(store.db(),
                        "SELECT status, COUNT(*), COALESCE(MAX(heartbeat_at), ''), COALESCE(MAX(finished_at), ''), "
                        "COALESCE(MAX(started_at), '') FROM runs WHERE sweep_id = ? GROUP BY status ORDER BY status");
    q.bind(1, s.id);
    while (q.executeStep()) {
      counts[q.getColumn(0).getString()] = q.getColumn(1).getInt64();
      // Appended piecewise: GCC 12 warns falsely (-Wrestrict) on "|" + std::string.
      for (int c = 0; c < 5; ++c) token.append(q.getColumn(c).getString()).append("|");
    }
  }
  const bool live = counts["running"].get<std::int64_t>() > 0 || counts["pending"].get<std::int64_t>() > 0;
  return {{"sweep", s.name}, {"status", std::move(counts)}, {"live", live}, {"token", token}};
}

}  // namespace

std::string ApiRequest::get(const std::string& key, const std::string& fallback) const {
  for (auto it = params.rbegin(); it != params.rend(); ++it) {
    if (it->first == key) return it->second;
  }
  return fallback;
}

std::vector<std::string> ApiRequest::all(const std::string& key) const {
  std::vector<std::string> out;
  for (const auto& [k, v] : params) {
    if (k == key) out.push_back(v);
  }
  return out;
}

std::vector<std::size_t> thin_indices(std::size_t n, std::size_t max_points) {
  std::vector<std::size_t> out;
  if (n <= max_points || max_points < 2) {
    out.resize(n);
    for (std::size_t i = 0; i < n; ++i) out[i] = i;
    return out;
  }
  // max_points indices from 0 to n-1 inclusive, rounded to the nearest.
  out.reserve(max_points);
  for (std::size_t j = 0; j < max_points; ++j) {
    out.push_back(static_cast<std::size_t>(std::llround(static_cast<double>(j) * static_cast<double>(n - 1) /
                                                        static_cast<double>(max_points - 1))));
  }
  return out;
}

ApiResponse handle_api(store::Store& store, const ApiRequest& request) {
  static const std::map<std::string, std::function<Json(store::Store&, const ApiRequest&)>> routes = {
      {"/api/sweeps", [](store::Store& s, const ApiRequest&) { return sweeps(s); }},
      {"/api/sweep", sweep},
      {"/api/runs", runs},
      {"/api/run", run},
      {"/api/series", series},
      {"/api/curves", curves},
      {"/api/compare", compare},
      {"/api/state", state},
  };
  auto error = [](int status, const std::string& what) {
    return ApiResponse{status, Json{{"error", what}}.dump(-1, ' ', false, Json::error_handler_t::replace)};
  };
  const auto it = routes.find(request.path);
  if (it == routes.end()) return error(404, "no API route " + request.path + " (see results/README.md)");
  try {
    // Invalid UTF-8 from the store (a log cut mid-character) becomes U+FFFD
    // instead of failing the whole answer.
    return ApiResponse{200, it->second(store, request).dump(-1, ' ', false, Json::error_handler_t::replace)};
  } catch (const ApiError& e) {
    return error(e.status, e.what());
  } catch (const std::exception& e) {
    return error(500, e.what());
  }
}

}  // namespace reglab::serve
