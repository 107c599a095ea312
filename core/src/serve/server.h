// serve/server.h — `reglab serve`: the read-only dashboard over HTTP.
//
// Serves the single-page dashboard (HTML, script, style and the uPlot chart
// library, all compiled into the binary from core/src/serve/web at build
// time: nothing is fetched from elsewhere) and the JSON API of serve/api.h.
// Only GET is answered. Each worker thread opens its own connection to the
// store (SQLite in WAL mode), so the dashboard reads while a sweep writes.
// Every answer carries a Content-Security-Policy that allows only the
// server's own scripts, styles and data. No torch.
#pragma once

#include <cstdint>
#include <functional>
#include <string>

namespace reglab::serve {

struct ServeOptions {
  std::string db = "results/reglab.db";
  std::string host = "127.0.0.1";  // loopback: other machines cannot connect unless asked
  int port = 8080;                 // 0: any free port
  int threads = 4;
};

// Binds, calls on_ready(port actually bound), then serves until SIGINT or
// SIGTERM; returns 0 after a clean stop. Throws std::runtime_error when the
// database does not exist or the address cannot be bound (naming both).
int serve(const ServeOptions& options, const std::function<void(int port)>& on_ready);

}  // namespace reglab::serve
