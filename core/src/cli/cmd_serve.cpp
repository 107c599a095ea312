// `reglab serve`: the local, read-only dashboard over the results store.
#include <iostream>
#include <memory>

#include "cli/commands.h"
#include "serve/server.h"

namespace reglab::cli {

void add_serve(CLI::App& app, GlobalOptions& g, int& exit_code) {
  auto o = std::make_shared<serve::ServeOptions>();
  CLI::App* cmd = app.add_subcommand("serve", "Browse sweeps, runs, comparisons and live curves in a web browser.");
  cmd->footer(
      "Open the address it prints. Pages: the sweeps; a sweep's runs (sort by any column or by a\n"
      "metric, filter by status, text or any parameter KEY=VALUE); a run (config, summaries, curves,\n"
      "log tail, artifacts); and a comparison that groups runs by chosen keys with mean ± 95% CI and\n"
      "interactive curves (drag to zoom, double-click to reset, hover for values, click a legend entry\n"
      "to hide a group). While a sweep runs, the pages refresh themselves.\n\n"
      "It only reads the database and binds 127.0.0.1 unless told otherwise; everything it serves is\n"
      "compiled into reglab, so it works offline. The JSON API behind it is documented in\n"
      "results/README.md. Stop it with Ctrl-C.\n\n"
      "Examples:\n"
      "  reglab serve\n"
      "  reglab serve --db other/results.db --port 9000\n"
      "  reglab serve --port 0            # any free port (printed)");
  cmd->add_option("--port", o->port, "TCP port (0: any free port)")->check(CLI::Range(0, 65535))->capture_default_str();
  cmd->add_option("--host", o->host, "address to bind; 0.0.0.0 exposes the dashboard to the network")
      ->capture_default_str();
  cmd->add_option("--threads", o->threads, "worker threads")->check(CLI::Range(1, 64))->capture_default_str();
  cmd->callback([o, &g, &exit_code] {
    o->db = g.db;
    exit_code = serve::serve(*o, [&](int port) {
      std::cout << "reglab serve: http://" << (o->host == "0.0.0.0" ? "127.0.0.1" : o->host) << ":" << port
                << "/ (database " << o->db << "; Ctrl-C stops)" << std::endl;
    });
  });
}

}  // namespace reglab::cli
