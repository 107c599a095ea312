#include "serve/server.h"

#include <httplib.h>
#include <pthread.h>
#include <signal.h>

#include <atomic>
#include <filesystem>
#include <map>
#include <memory>
#include <stdexcept>
#include <thread>

#include "serve/api.h"
#include "serve/assets.h"
#include "store/store.h"

namespace reglab::serve {

namespace {

// Scripts, styles and data from this server only; no frames, plugins or
// base-URI games. uPlot styles its elements through the CSSOM, which this
// policy allows without 'unsafe-inline'.
constexpr const char* kContentSecurityPolicy =
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

void common_headers(httplib::Response& res) {
  res.set_header("Content-Security-Policy", kContentSecurityPolicy);
  res.set_header("X-Content-Type-Options", "nosniff");
  res.set_header("Referrer-Policy", "no-referrer");
}

// One store connection per worker thread, opened on first use.
store::Store& thread_store(const std::string& db) {
  thread_local std::map<std::string, std::unique_ptr<store::Store>> stores;
  auto& s = stores[db];
  // live: a sweep that starts after the dashboard is still seen.
  if (!s) s = std::make_unique<store::Store>(db, store::ReadOnly{true});
  return *s;
}

}  // namespace

int serve(const ServeOptions& options, const std::function<void(int port)>& on_ready) {
  if (!std::filesystem::exists(options.db)) {
    throw std::runtime_error("no results database at " + options.db + " (run a sweep first, or pass --db)");
  }
  // Opened once here so a damaged or foreign file is reported before binding.
  (void)thread_store(options.db);

  httplib::Server server;
  const int threads = options.threads < 1 ? 1 : options.threads;
  server.new_task_queue = [threads] { return new httplib::ThreadPool(static_cast<std::size_t>(threads)); };

  server.Get(R"(/api/.*)", [&options](const httplib::Request& req, httplib::Response& res) {
    ApiRequest r;
    r.path = req.path;
    for (const auto& [k, v] : req.params) r.params.emplace_back(k, v);
    ApiResponse a;
    try {
      a = handle_api(thread_store(options.db), r);
    } catch (const std::exception& e) {  // the store could not be opened on this thread
      a = ApiResponse{500, std::string("{\"error\":\"cannot read the store\"}")};
    }
    common_headers(res);
    res.set_header("Cache-Control", "no-store");
    res.status = a.status;
    res.set_content(a.body, "application/json; charset=utf-8");
  });
  server.Get(R"(/.*)", [](const httplib::Request& req, httplib::Response& res) {
    common_headers(res);
    const Asset* asset = find_asset(req.path == "/index.html" ? "/" : req.path);
    if (asset == nullptr) {
      res.status = 404;
      res.set_content("not found\n", "text/plain; charset=utf-8");
      return;
    }
    res.set_header("Cache-Control", "no-cache");
    res.set_content(std::string(asset->data), std::string(asset->content_type));
  });
  // Anything but GET/HEAD is refused: the dashboard never writes.
  auto refuse = [](const httplib::Request&, httplib::Response& res) {
    common_headers(res);
    res.status = 405;
    res.set_header("Allow", "GET, HEAD");
    res.set_content("the dashboard is read-only\n", "text/plain; charset=utf-8");
  };
  server.Post(R"(/.*)", refuse);
  server.Put(R"(/.*)", refuse);
  server.Delete(R"(/.*)", refuse);
  server.Patch(R"(/.*)", refuse);

  int port = options.port;
  if (port == 0) {
    port = server.bind_to_any_port(options.host);
    if (port < 0) throw std::runtime_error("cannot bind " + options.host + " to any port");
  } else if (!server.bind_to_port(options.host, port)) {
    throw std::runtime_error("cannot bind " + options.host + ":" + std::to_string(port) +
                             " (in use? try another --port, or --port 0 for any free one)");
  }

  // SIGINT/SIGTERM stop the server from a thread of its own: stop() is not
  // safe inside a signal handler. Blocked before any worker starts, so they
  // all inherit the mask and only sigwait sees the signals.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  std::atomic<bool> signalled{false};
  std::thread stopper([&server, &signalled, signals] {
    int sig = 0;
    sigwait(&signals, &sig);
    signalled = true;
    server.stop();
  });

  on_ready(port);
  const bool ok = server.listen_after_bind();
  // listen ended without a signal (it failed): wake the stopper ourselves.
  if (!signalled) pthread_kill(stopper.native_handle(), SIGTERM);
  stopper.join();
  pthread_sigmask(SIG_UNBLOCK, &signals, nullptr);
  return ok ? 0 : 1;
}

}  // namespace reglab::serve
