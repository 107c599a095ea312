// tests/serve/serve_fixture.h — a small real results store and a real
// `reglab serve` child process for the dashboard's tests.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <filesystem>
#include <string>

namespace reglab::testing_support {

// Strings from the store that must reach the page as text, never as markup.
inline constexpr const char* kHostileLabel = "<script>window.__reglab_xss=1</script>";
inline constexpr const char* kHostileError = "<img src=x onerror=\"window.__reglab_xss=2\"> failed";
inline constexpr const char* kHostileValue = "<b onmouseover=\"window.__reglab_xss=3\">bold</b>";

// Writes sweep "demo" into a new store at `db`:
//   runs 1–6  completed: method.name ce|elr × seed 0,1,2, optim.lr 0.1;
//             test.acc at epochs 0..19 = base + 0.01·epoch + 0.001·seed
//             (base ce 0.50, elr 0.60), train.loss = 1/(epoch+1);
//   run 7     failed, label kHostileLabel, error kHostileError,
//             data.note kHostileValue, method.name ce, seed 3;
//   run 8     running (method.name elr, seed 3), test.acc at epochs 0..4.
// Runs 1–6 have a log file (under `logs`) and a checkpoint artifact.
void write_demo_store(const std::filesystem::path& db, const std::filesystem::path& logs);

// `reglab serve --db DB --port 0` in a child process; the constructor waits
// until it prints its address (or throws with what it printed), the
// destructor stops it with SIGTERM.
class ServerProcess {
 public:
  ServerProcess(const std::filesystem::path& db, const std::filesystem::path& workdir);
  ~ServerProcess();
  ServerProcess(const ServerProcess&) = delete;
  ServerProcess& operator=(const ServerProcess&) = delete;

  int port() const { return port_; }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }
  // SIGTERM, then the exit status (as waitpid reports it through WEXITSTATUS; -1 if killed).
  int stop();

 private:
  pid_t pid_ = -1;
  int port_ = 0;
  std::filesystem::path out_;
};

}  // namespace reglab::testing_support
