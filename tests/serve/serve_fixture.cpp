#include "serve/serve_fixture.h"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <fcntl.h>
#include <fstream>
#include <regex>
#include <sstream>
#include <stdexcept>
#include <thread>
#include <vector>

#include "store/store.h"

namespace reglab::testing_support {

namespace fs = std::filesystem;

namespace {

std::string config(const std::string& method, int seed, const std::string& note) {
  std::string c = R"({"method":{"name":")" + method + R"("},"optim":{"lr":0.1},"seed":)" + std::to_string(seed);
  if (!note.empty()) {
    std::string escaped;
    for (char ch : note) {
      if (ch == '"' || ch == '\\') escaped += '\\';
      escaped += ch;
    }
    c += R"(,"data":{"note":")" + escaped + R"("})";
  }
  return c + "}";
}

}  // namespace

void write_demo_store(const fs::path& db, const fs::path& logs) {
  fs::create_directories(logs);
  store::Store s(db);
  const std::int64_t sweep = s.upsert_sweep("demo", "Two methods, three seeds",
                                            "[sweep]\nname = \"demo\"\n[grid]\n\"method.name\" = [\"ce\", \"elr\"]\n");
  std::int64_t next = 1;
  for (const std::string method : {"ce", "elr"}) {
    for (int seed = 0; seed < 3; ++seed, ++next) {
      const std::int64_t id = s.ensure_run(sweep, "key" + std::to_string(next), method + " seed " + std::to_string(seed),
                                           config(method, seed, ""), method);
      const fs::path log = logs / ("run" + std::to_string(id) + ".log");
      std::ofstream(log) << "epoch 0 starting\nepoch 19 done: test.acc fine\n";
      s.mark_running(id, 4242, "fixture-host", "abc1234", log.string());
      std::vector<store::MetricPoint> points;
      const double base = method == "ce" ? 0.50 : 0.60;
      for (int epoch = 0; epoch < 20; ++epoch) {
        points.push_back({"test.acc", epoch, base + 0.01 * epoch + 0.001 * seed});
        points.push_back({"train.loss", epoch, 1.0 / (epoch + 1)});
      }
      s.declare_metrics(id, {{"test.acc", MetricDirection::kHigher}, {"train.loss", MetricDirection::kLower}});
      s.add_metrics(id, points);
      s.add_artifact({.run_id = id, .kind = "checkpoint", .path = "results/runs/demo/final.pt", .checksum = "ff00"});
      s.mark_finished(id, store::RunStatus::kCompleted, "");
    }
  }
  const std::int64_t failed = s.ensure_run(sweep, "key7", kHostileLabel, config("ce", 3, kHostileValue), "ce");
  s.mark_running(failed, 4242, "fixture-host", "abc1234", "");
  s.mark_finished(failed, store::RunStatus::kFailed, kHostileError);
  const std::int64_t running = s.ensure_run(sweep, "key8", "elr seed 3", config("elr", 3, ""), "elr");
  s.mark_running(running, 4242, "fixture-host", "abc1234", "");
  std::vector<store::MetricPoint> points;
  for (int epoch = 0; epoch < 5; ++epoch) points.push_back({"test.acc", epoch, 0.6 + 0.01 * epoch});
  s.add_metrics(running, points);
}

ServerProcess::ServerProcess(const fs::path& db, const fs::path& workdir) : out_(workdir / "serve.out") {
  const std::string binary = REGLAB_BINARY;
  pid_ = ::fork();
  if (pid_ < 0) throw std::runtime_error("fork failed");
  if (pid_ == 0) {
    const int fd = ::open(out_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    ::dup2(fd, 1);
    ::dup2(fd, 2);
    const std::string db_arg = db.string();
    ::execl(binary.c_str(), binary.c_str(), "--db", db_arg.c_str(), "serve", "--port", "0", static_cast<char*>(nullptr));
    ::_exit(127);
  }
  const std::regex address(R"(http://127\.0\.0\.1:(\d+)/)");
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  std::string text;
  while (std::chrono::steady_clock::now() < deadline) {
    std::ifstream f(out_);
    std::stringstream ss;
    ss << f.rdbuf();
    text = ss.str();
    std::smatch m;
    if (std::regex_search(text, m, address)) {
      port_ = std::stoi(m[1]);
      return;
    }
    int status = 0;
    if (::waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      throw std::runtime_error("reglab serve exited before serving: " + text);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  stop();
  throw std::runtime_error("reglab serve printed no address within 30 s: " + text);
}

int ServerProcess::stop() {
  if (pid_ < 0) return -1;
  ::kill(pid_, SIGTERM);
  int status = 0;
  ::waitpid(pid_, &status, 0);
  pid_ = -1;
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

ServerProcess::~ServerProcess() { stop(); }

}  // namespace reglab::testing_support
