#include "serve/api.h"

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
#include "store/dashboard_queries.h"
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

Json status_json(store::Store& store, std::int64_t sweep_id) {
  Json counts = {{"pending", 0}, {"running", 0}, {"completed", 0}, {"failed", 0}, {"interrupted", 0}};
  for (const store::StatusCount& c : store::status_counts(store, sweep_id)) counts[c.status] = c.runs;
  return counts;
}

Json sweeps(store::Store& store) {
  Json list = Json::array();
  for (const store::SweepRow& s : store.list_sweeps()) {
    Json counts = status_json(store, s.id);
    std::int64_t total = 0;
    for (const auto& [k, v] : counts.items()) total += v.get<std::int64_t>();
    list.push_back({{"name", s.name}, {"description", s.description}, {"created_at", s.created_at},
                    {"runs", total}, {"status", std::move(counts)}});
  }
  return {{"sweeps", std::move(list)}};
}

// Keys whose values differ between the sweep's runs (a key some runs lack
// counts as differing), except the seed — the columns worth showing.
std::vector<std::string> varying_param_keys(store::Store& store, std::int64_t sweep_id, std::int64_t runs) {
  std::vector<std::string> keys;
  for (const store::ParamKeySpread& p : store::param_key_spread(store, sweep_id)) {
    if (p.key == "seed") continue;
    if (p.distinct_values > 1 || p.runs_with_key < runs) keys.push_back(p.key);
  }
  return keys;
}

Json sweep(store::Store& store, const ApiRequest& r) {
  const store::SweepRow s = find_sweep(store, required(r, "name"));
  Json counts = status_json(store, s.id);
  std::int64_t total = 0;
  for (const auto& [k, v] : counts.items()) total += v.get<std::int64_t>();
  Json metrics = Json::array();
  for (const std::string& key : store::final_metric_keys(store, s.id)) metrics.push_back(key);
  std::vector<std::string> by = {"method.name"};
  if (counts["completed"].get<std::int64_t>() > 0) by = report::default_grouping(store, s.id);
  return {{"name", s.name},
          {"description", s.description},
          {"toml", s.toml},
          {"created_at", s.created_at},
          {"runs", total},
          {"status", std::move(counts)},
          {"metrics", std::move(metrics)},
          {"keys", varying_param_keys(store, s.id, total)},
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
  static const std::map<std::string, store::RunSort> columns = {
      {"id", store::RunSort::kId},           {"label", store::RunSort::kLabel},
      {"status", store::RunSort::kStatus},   {"method", store::RunSort::kMethod},
      {"duration", store::RunSort::kDuration}, {"started", store::RunSort::kStarted},
      {"metric", store::RunSort::kMetric}};
  store::RunPageQuery query;
  if (sort.rfind("param:", 0) == 0 && sort.size() > 6) {
    query.sort = store::RunSort::kParam;
    query.sort_param = sort.substr(6);
  } else if (auto it = columns.find(sort); it != columns.end()) {
    if (sort == "metric" && metric.empty()) throw ApiError(400, "sort=metric needs parameter 'metric'");
    query.sort = it->second;
  } else {
    throw ApiError(400, "parameter 'sort' must be id, label, status, method, duration, started, metric or "
                        "param:KEY, got '" + sort + "'");
  }
  query.sweep_id = s.id;
  query.status = status;
  query.text = text;
  query.where = where;
  query.metric = metric;
  query.descending = order == "desc";
  query.limit = limit;
  query.offset = offset;
  const store::RunPage page = store::run_page(store, query);
  const std::int64_t total = page.total;
  Json rows = Json::array();
  std::vector<std::int64_t> ids;
  for (const store::RunPageRow& row : page.rows) {
    ids.push_back(row.id);
    rows.push_back({{"id", row.id},
                    {"key", row.key},
                    {"label", row.label},
                    {"status", row.status},
                    {"method", row.method},
                    {"duration_s", row.duration_s ? Json(*row.duration_s) : Json(nullptr)},
                    {"error", row.error},
                    {"started_at", row.started_at ? Json(*row.started_at) : Json(nullptr)},
                    {"metric", row.metric ? number_or_null(*row.metric) : Json(nullptr)},
                    {"params", Json::object()}});
  }
  // The page's parameter values for the requested columns only.
  const std::vector<std::string> wanted = r.all("columns");
  if (!ids.empty() && !wanted.empty()) {
    const auto values = store::param_values(store, ids, wanted);
    for (std::size_t i = 0; i < ids.size(); ++i) {
      for (std::size_t k = 0; k < wanted.size(); ++k) {
        if (values[i][k]) rows[i]["params"][wanted[k]] = *values[i][k];
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
  for (const store::SummaryRow& s : store::run_summaries(store, id)) {
    summaries.push_back({{"key", s.key}, {"kind", s.kind}, {"value", number_or_null(s.value)}, {"step", s.step}});
  }
  Json metric_keys = Json::array();
  for (const std::string& key : store::run_metric_keys(store, id)) metric_keys.push_back(key);
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
  const std::vector<std::optional<store::RunSeries>> all = store::run_series(store, ids, key);
  Json out = Json::array();
  for (std::size_t k = 0; k < all.size(); ++k) {
    if (!all[k]) throw ApiError(404, "no run with id " + std::to_string(ids[k]));
    const store::RunSeries& s = *all[k];
    Json xs = Json::array(), ys = Json::array();
    for (const std::size_t i : thin_indices(s.steps.size(), max_points)) {
      xs.push_back(s.steps[i]);
      ys.push_back(number_or_null(s.values[i]));
    }
    out.push_back({{"id", s.id},
                   {"label", s.label},
                   {"status", s.status},
                   {"points", s.steps.size()},
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
  for (const store::StatusActivity& a : store::status_activity(store, s.id)) {
    counts[a.status] = a.runs;
    // Appended piecewise: GCC 12 warns falsely (-Wrestrict) on "|" + std::string.
    for (const std::string& part : {a.status, std::to_string(a.runs), a.latest_heartbeat, a.latest_finish,
                                    a.latest_start}) {
      token.append(part).append("|");
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
