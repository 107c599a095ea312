// serve_api.cpp — how fast the dashboard answers on a big store.
//
// Builds (once, then reuses) a store with one sweep of --runs runs (default
// 10,000: 5 methods × 4 learning rates × 5 noise rates × 100 seeds, all
// completed, so one configuration's seeds are 100 runs) and
// --points metric points in all (default 10,000,000: test.acc and train.loss
// at --points / runs / 2 steps each), starts the real `reglab serve` on it
// as a child process, and times the requests the pages make, over HTTP from
// this process (median and slowest of --reps). The baseline, measured in the
// same run, is a GET of a static file (the page itself): what the transport
// alone costs. Prints one markdown table. No torch.
//
//   reglab_bench_serve --reglab build/reglab [--db /tmp/reglab-serve-bench.db] [--runs 10000]
//                      [--points 10000000] [--reps 20]
#include <httplib.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fcntl.h>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <regex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <SQLiteCpp/SQLiteCpp.h>

#include "store/store.h"
#include "store/testing.h"

namespace fs = std::filesystem;

namespace {

const char* kMethods[] = {"ce", "label_smoothing", "confidence_penalty", "elr", "ps_kd"};
const char* kLrs[] = {"0.1", "0.03", "0.01", "0.003"};
const char* kNoise[] = {"0.0", "0.1", "0.2", "0.3", "0.4"};

void build_store(const fs::path& db, int runs, std::int64_t points) {
  const auto t0 = std::chrono::steady_clock::now();
  reglab::store::Store s(db);
  const std::int64_t sweep = s.upsert_sweep("big", "10k runs for the dashboard benchmark", "");
  std::vector<reglab::store::NewRun> news;
  for (int i = 0; i < runs; ++i) {
    const char* m = kMethods[i % 5];
    const char* lr = kLrs[(i / 5) % 4];
    const char* noise = kNoise[(i / 20) % 5];
    const int seed = i / 100;
    news.push_back({"run" + std::to_string(i),
                    std::string(m) + " lr " + lr + " noise " + noise + " seed " + std::to_string(seed),
                    std::string(R"({"data":{"noise":)") + noise + R"(},"method":{"name":")" + m +
                        R"("},"optim":{"lr":)" + lr + R"(},"seed":)" + std::to_string(seed) + "}",
                    m});
  }
  const std::vector<std::int64_t> ids = s.ensure_runs(sweep, news);
  const std::int64_t steps = points / runs / 2;
  for (std::size_t r = 0; r < ids.size(); ++r) {
    s.mark_running(ids[r], 1, "bench", "", "");
    std::vector<reglab::store::MetricPoint> batch;
    batch.reserve(static_cast<std::size_t>(2 * steps));
    const double base = 0.5 + 0.05 * static_cast<double>(r % 5);
    for (std::int64_t k = 0; k < steps; ++k) {
      batch.push_back({"test.acc", k, base + 0.3 * (1.0 - 1.0 / (1.0 + 0.01 * static_cast<double>(k)))});
      batch.push_back({"train.loss", k, 1.0 / (1.0 + 0.01 * static_cast<double>(k))});
    }
    s.add_metrics(ids[r], batch);
    s.mark_finished(ids[r], reglab::store::RunStatus::kCompleted, "");
    if ((r + 1) % 1000 == 0) {
      const double el = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      std::cerr << "  built " << (r + 1) << "/" << ids.size() << " runs (" << el << " s)\n";
    }
  }
}

struct Server {
  pid_t pid = -1;
  int port = 0;
};

Server start_server(const std::string& reglab, const fs::path& db) {
  const fs::path out = fs::temp_directory_path() / ("reglab-bench-serve-" + std::to_string(::getpid()) + ".out");
  Server s;
  s.pid = ::fork();
  if (s.pid == 0) {
    const int fd = ::open(out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    ::dup2(fd, 1);
    ::dup2(fd, 2);
    ::execl(reglab.c_str(), reglab.c_str(), "--db", db.c_str(), "serve", "--port", "0", static_cast<char*>(nullptr));
    ::_exit(127);
  }
  const std::regex address(R"(127\.0\.0\.1:(\d+)/)");
  for (int i = 0; i < 600; ++i) {
    std::stringstream ss;
    ss << std::ifstream(out).rdbuf();
    std::smatch m;
    const std::string text = ss.str();
    if (std::regex_search(text, m, address)) {
      s.port = std::stoi(m[1]);
      return s;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  throw std::runtime_error("reglab serve did not start (see " + out.string() + ")");
}

struct Timing {
  double median_ms, max_ms;
  std::size_t bytes;
};

Timing time_get(httplib::Client& c, const std::string& path, int reps) {
  std::vector<double> ms;
  std::size_t bytes = 0;
  for (int i = 0; i < reps; ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    auto res = c.Get(path);
    const auto t1 = std::chrono::steady_clock::now();
    if (!res || res->status != 200) {
      throw std::runtime_error("GET " + path + " failed: " + (res ? res->body : std::string("no answer")));
    }
    bytes = res->body.size();
    ms.push_back(std::chrono::duration<double, std::milli>(t1 - t0).count());
  }
  std::sort(ms.begin(), ms.end());
  return {ms[ms.size() / 2], ms.back(), bytes};
}

}  // namespace

int main(int argc, char** argv) {
  std::string reglab = "build/reglab";
  fs::path db = fs::temp_directory_path() / "reglab-serve-bench.db";
  int runs = 10000;
  std::int64_t points = 10000000;
  int reps = 20;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string flag = argv[i], v = argv[i + 1];
    if (flag == "--reglab") reglab = v;
    else if (flag == "--db") db = v;
    else if (flag == "--runs") runs = std::atoi(v.c_str());
    else if (flag == "--points") points = std::atoll(v.c_str());
    else if (flag == "--reps") reps = std::atoi(v.c_str());
    else {
      std::cerr << "usage: reglab_bench_serve --reglab build/reglab [--db FILE] [--runs 10000] [--points 10000000] "
                   "[--reps 20]\n";
      return 2;
    }
  }
  if (runs < 100 || reps < 1) {
    std::cerr << "reglab_bench_serve: --runs must be >= 100 and --reps >= 1\n";
    return 2;
  }
  if (!fs::exists(db)) {
    std::cerr << "building " << db << ": " << runs << " runs, " << points << " points\n";
    const auto t0 = std::chrono::steady_clock::now();
    build_store(db.string() + ".part", runs, points);
    fs::rename(db.string() + ".part", db);
    for (const char* ext : {"-wal", "-shm"}) fs::remove(db.string() + ".part" + ext);
    std::cerr << "built in " << std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() << " s\n";
  }
  std::int64_t stored_points = 0, stored_runs = 0;
  {
    reglab::store::Store s(db);
    SQLite::Database& d = reglab::store::raw_connection_for_tests(s);
    stored_runs = d.execAndGet("SELECT COUNT(*) FROM runs").getInt64();
    stored_points = d.execAndGet("SELECT COUNT(*) FROM metrics").getInt64();
  }

  const Server server = start_server(reglab, db);
  int rc = 0;
  try {
    httplib::Client c("127.0.0.1", server.port);
    c.set_read_timeout(60);
    std::string hundred;
    // 100 runs spread over the sweep.
    for (std::int64_t i = 0; i < 100; ++i) hundred.append(i > 0 ? "," : "").append(std::to_string(1 + i * (stored_runs / 100)));
    struct Case {
      const char* name;
      std::string path;
      double target_ms;  // 0: no target
    };
    const std::vector<Case> cases = {
        {"baseline: GET / (static page)", "/", 0},
        {"sweep page: /api/sweep", "/api/sweep?name=big", 0},
        {"list runs: first page, metric column", "/api/runs?sweep=big&metric=test.acc&columns=method.name&columns=optim.lr",
         200},
        {"list runs: last page", "/api/runs?sweep=big&metric=test.acc&offset=9900&columns=method.name", 200},
        {"filter: method + lr (500 of 10k runs)",
         "/api/runs?sweep=big&metric=test.acc&where=method.name%3Delr&where=optim.lr%3D0.01&columns=method.name", 200},
        {"filter + sort by metric desc",
         "/api/runs?sweep=big&metric=test.acc&where=method.name%3Delr&sort=metric&order=desc", 200},
        {"sort all 10k by metric", "/api/runs?sweep=big&metric=test.acc&sort=metric&order=desc", 200},
        {"sort all 10k by param optim.lr", "/api/runs?sweep=big&sort=param:optim.lr", 200},
        {"text search (label)", "/api/runs?sweep=big&q=ps_kd%20lr%200.003", 200},
        {"curve: 1 metric over 100 runs (series)", "/api/series?key=test.acc&ids=" + hundred, 500},
        {"curve: 1 metric over 100 runs, thinned to 200", "/api/series?key=test.acc&max_points=200&ids=" + hundred, 500},
        {"group curves: one group of 100 runs (100 seeds)",
         "/api/curves?sweep=big&metric=test.acc&by=method.name&where=optim.lr%3D0.01&where=method.name%3Delr&"
         "where=data.noise%3D0.2",
         500},
        {"group curves: 5 groups of 100 runs (by method)",
         "/api/curves?sweep=big&metric=test.acc&by=method.name&where=optim.lr%3D0.01&where=data.noise%3D0.2", 0},
        {"compare: all 10k runs by method and lr",
         "/api/compare?sweep=big&metric=test.acc&by=method.name&by=optim.lr", 0},
        {"state poll", "/api/state?sweep=big", 0},
    };
    std::printf("reglab serve on a store of %lld runs and %lld metric points; %d requests each, over HTTP\n\n",
                static_cast<long long>(stored_runs), static_cast<long long>(stored_points), reps);
    std::printf("| request | median ms | max ms | answer KiB | target | x baseline |\n|---|---|---|---|---|---|\n");
    double baseline = 0;
    for (const Case& k : cases) {
      (void)time_get(c, k.path, 1);  // warm the page cache and the connection
      const Timing t = time_get(c, k.path, reps);
      if (baseline == 0) baseline = t.median_ms;
      std::string target = k.target_ms > 0 ? (t.median_ms < k.target_ms ? "< " : "MISSED < ") +
                                                 std::to_string(static_cast<int>(k.target_ms)) + " ms"
                                           : "";
      std::printf("| %s | %.1f | %.1f | %.1f | %s | %.1fx |\n", k.name, t.median_ms, t.max_ms,
                  static_cast<double>(t.bytes) / 1024.0, target.c_str(), t.median_ms / baseline);
    }
  } catch (const std::exception& e) {
    std::cerr << "reglab_bench_serve: " << e.what() << "\n";
    rc = 1;
  }
  ::kill(server.pid, SIGTERM);
  ::waitpid(server.pid, nullptr, 0);
  return rc;
}
