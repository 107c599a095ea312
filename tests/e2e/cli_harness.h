// Runs the real `reglab` binary as a child process in a temporary folder.
#pragma once

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "util/util.h"

extern char** environ;

namespace reglab::testing {

namespace fs = std::filesystem;

struct CliResult {
  int code = -1;
  std::string out, err;
};

class CliSandbox {
 public:
  CliSandbox() {
    dir_ = fs::temp_directory_path() / ("reglab_e2e_" + std::to_string(getpid()) + "_" + std::to_string(counter()++));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    setenv("REGLAB_PLUGIN_PATH", REGLAB_FIXTURE_PLUGIN_DIR, 1);
  }
  ~CliSandbox() { fs::remove_all(dir_); }

  const fs::path& dir() const { return dir_; }
  fs::path db() const { return dir_ / "results" / "reglab.db"; }

  fs::path write(const std::string& name, const std::string& text) const {
    fs::path p = dir_ / name;
    std::ofstream(p) << text;
    return p;
  }

  // Starts reglab with `args` (after --db); stdout/stderr go to files.
  pid_t start(const std::vector<std::string>& args, const std::string& tag = "last") {
    std::vector<std::string> full = {REGLAB_BINARY, "--db", db().string()};
    full.insert(full.end(), args.begin(), args.end());
    std::vector<char*> argv;
    for (auto& a : full) argv.push_back(a.data());
    argv.push_back(nullptr);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    std::string out = (dir_ / (tag + ".out")).string(), err = (dir_ / (tag + ".err")).string();
    posix_spawn_file_actions_addopen(&fa, 1, out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    posix_spawn_file_actions_addopen(&fa, 2, err.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawnattr_t attr;
    posix_spawnattr_init(&attr);
    // Its own process group, like a shell job, so signals reach only it.
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP);
    posix_spawnattr_setpgroup(&attr, 0);
    pid_t pid = -1;
    if (posix_spawn(&pid, full[0].c_str(), &fa, &attr, argv.data(), environ) != 0) pid = -1;
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&attr);
    return pid;
  }

  CliResult wait(pid_t pid, const std::string& tag = "last") {
    int status = 0;
    waitpid(pid, &status, 0);
    CliResult r;
    r.code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    r.out = slurp(dir_ / (tag + ".out"));
    r.err = slurp(dir_ / (tag + ".err"));
    return r;
  }

  CliResult run(const std::vector<std::string>& args) { return wait(start(args)); }

  static std::string slurp(const fs::path& p) {
    std::ifstream in(p);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
  }

 private:
  static int& counter() {
    static int c = 0;
    return c;
  }
  fs::path dir_;
};

// A tiny synthetic classification sweep: trials finish in about a second.
inline std::string tiny_sweep(const std::string& name, const std::string& variants, const std::string& extra = "",
                              const std::string& seeds = "[0, 1]") {
  return "[sweep]\nname = \"" + name + "\"\nseeds = " + seeds + "\n" + variants +
         "\n[task]\nepochs = 2\nbatch_size = 64\n"
         "[data]\ndataset = \"synthetic\"\nval_fraction = 0.2\n"
         "[data.synthetic]\nsamples = 600\ntest_samples = 200\nfeatures = 10\nclasses = 3\n"
         "[model]\narch = \"mlp\"\nhidden = [16]\n"
         "[optim]\nname = \"sgd\"\nlr = 0.1\n" +
         extra;
}

template <class Pred>
bool wait_until(Pred pred, double seconds) {
  auto end = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
  while (std::chrono::steady_clock::now() < end) {
    if (pred()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return pred();
}

}  // namespace reglab::testing
