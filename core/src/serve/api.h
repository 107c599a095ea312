// serve/api.h — the dashboard's JSON API, independent of any HTTP library.
//
// Every endpoint is a GET that reads the store and answers JSON; nothing
// here writes. The routes, their parameters and their answers are documented
// in results/README.md ("The dashboard's JSON API"). Requests are plain data
// (path plus query parameters, repeatable), so the API is tested without a
// socket and the server only translates. Errors are answered, not thrown:
// 400 for a bad parameter, 404 for an unknown route, sweep or run, each with
// {"error": "..."} naming the parameter or object. No torch.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "store/store.h"

namespace reglab::serve {

struct ApiRequest {
  std::string path;                                         // "/api/runs"
  std::vector<std::pair<std::string, std::string>> params;  // decoded, in order; keys may repeat

  // The last value of `key`, or `fallback` when absent.
  std::string get(const std::string& key, const std::string& fallback = "") const;
  std::vector<std::string> all(const std::string& key) const;
};

struct ApiResponse {
  int status = 200;
  std::string body;  // JSON
};

// Most points a curve answer holds per series unless the request asks for
// fewer (max_points); longer series are thinned on the server.
inline constexpr std::size_t kDefaultMaxPoints = 1000;
// Most runs one /api/runs page lists.
inline constexpr std::int64_t kMaxPageSize = 1000;

// Answers one request with the given store (which the caller keeps for the
// thread; Store is not thread-safe).
ApiResponse handle_api(store::Store& store, const ApiRequest& request);

// The indices of `n` points to keep so that at most `max_points` remain:
// every point when n <= max_points, otherwise evenly strided indices that
// always include the first and the last. Exposed for tests.
std::vector<std::size_t> thin_indices(std::size_t n, std::size_t max_points);

}  // namespace reglab::serve
