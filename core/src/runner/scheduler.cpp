#include "runner/scheduler.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <deque>
#include <map>
#include <set>
#include <thread>

#include "plugins/loader.h"
#include "runner/lease.h"
#include "runner/preload.h"
#include "runner/run_folder.h"
#include "runner/progress.h"
#include "stages/checkpoint.h"
#include "runner/trial.h"
#include "store/store.h"
#include "util/util.h"

namespace reglab::runner {

namespace fs = std::filesystem;

namespace {

std::atomic<int> g_stop_requests{0};
extern "C" void on_coordinator_signal(int) { g_stop_requests.fetch_add(1); }

// Installs the coordinator's SIGINT/SIGTERM handlers for the duration of a
// sweep (no SA_RESTART, so poll() wakes up) and restores the old ones.
class StopSignals {
 public:
  StopSignals() {
    g_stop_requests = 0;
    struct sigaction sa {};
    sa.sa_handler = on_coordinator_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, &old_int_);
    sigaction(SIGTERM, &sa, &old_term_);
  }
  ~StopSignals() {
    sigaction(SIGINT, &old_int_, nullptr);
    sigaction(SIGTERM, &old_term_, nullptr);
  }

 private:
  struct sigaction old_int_ {}, old_term_ {};
};

struct Child {
  pid_t pid = -1;
  int out_fd = -1;  // the worker's stdout: progress lines
  std::int64_t run_id = 0;
  std::string label;
  fs::path log_path;
  std::string buffer;
  std::chrono::steady_clock::time_point start;
  bool timed_out = false;
  bool killed_by_us = false;
};

struct Pending {
  std::int64_t run_id;
  std::string label;
  std::string key;
};

std::string describe_exit(int status) {
  if (WIFSIGNALED(status)) {
    int sig = WTERMSIG(status);
    return "worker killed by signal " + std::to_string(sig) + " (" + strsignal(sig) + ")";
  }
  if (WIFEXITED(status)) return "worker exited with code " + std::to_string(WEXITSTATUS(status)) + " without recording a result";
  return "worker ended abnormally";
}

// Starts the worker of one trial. With an empty `exe` the worker is a fork of
// this process that calls run_trial_process directly (LibTorch, plugins and
// preloaded data are already in memory); otherwise it execs `exe _trial ...`.
Child spawn(const fs::path& exe, const fs::path& db, const Pending& p, const fs::path& log_path, int threads,
            int lease_fd) {
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) throw std::runtime_error(std::string("pipe: ") + std::strerror(errno));
  int log_fd = ::open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (log_fd < 0) {
    close(fds[0]);
    close(fds[1]);
    throw std::runtime_error("cannot open " + log_path.string() + ": " + std::strerror(errno));
  }
  std::string exe_s = exe.string(), db_s = db.string(), run_s = std::to_string(p.run_id),
              threads_s = std::to_string(threads), spawned_s = std::to_string(util::now_seconds()),
              lease_s = std::to_string(lease_fd);
  std::vector<char*> argv = {exe_s.data(), const_cast<char*>("_trial"), const_cast<char*>("--db"), db_s.data(),
                             const_cast<char*>("--run"), run_s.data(), const_cast<char*>("--threads"),
                             threads_s.data(), const_cast<char*>("--spawned-at"), spawned_s.data(),
                             const_cast<char*>("--lease-fd"), lease_s.data(), nullptr};
  const pid_t parent = getpid();
  const double spawned_at = util::now_seconds();
  std::fflush(nullptr);
  pid_t pid = fork();
  if (pid < 0) throw std::runtime_error(std::string("fork: ") + std::strerror(errno));
  if (pid == 0) {
    // Only async-signal-safe calls until exec. The worker dies with us.
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) _exit(1);
    dup2(fds[1], STDOUT_FILENO);
    dup2(log_fd, STDERR_FILENO);
    if (!exe.empty()) {
      fcntl(lease_fd, F_SETFD, 0);  // the lease crosses exec into the worker
      execv(argv[0], argv.data());
      _exit(127);
    }
    // Forked worker: restore default signal handling (the trial installs its
    // own), run the trial, and leave without running the coordinator's
    // destructors or atexit handlers.
    std::signal(SIGINT, SIG_DFL);
    std::signal(SIGTERM, SIG_DFL);
    int code = 1;
    try {
      TrialProcessOptions t;
      t.db = db;
      t.run_id = p.run_id;
      t.threads = threads;
      t.spawned_at = spawned_at;
      t.lease_fd = lease_fd;
      code = run_trial_process(t);
    } catch (const std::exception& e) {
      std::fprintf(stderr, "reglab worker: %s\n", e.what());
    } catch (...) {
      std::fprintf(stderr, "reglab worker: unknown exception\n");
    }
    std::fflush(nullptr);
    _exit(code);
  }
  close(fds[1]);
  close(log_fd);
  fcntl(fds[0], F_SETFL, O_NONBLOCK);
  Child c;
  c.pid = pid;
  c.out_fd = fds[0];
  c.run_id = p.run_id;
  c.label = p.label;
  c.log_path = log_path;
  c.start = std::chrono::steady_clock::now();
  return c;
}

// Reads whatever the worker wrote and forwards complete progress lines.
void drain(Child& c, Progress& progress) {
  char buf[4096];
  while (true) {
    ssize_t n = read(c.out_fd, buf, sizeof buf);
    if (n <= 0) break;
    c.buffer.append(buf, static_cast<std::size_t>(n));
  }
  std::size_t pos;
  while ((pos = c.buffer.find('\n')) != std::string::npos) {
    std::string line = c.buffer.substr(0, pos);
    c.buffer.erase(0, pos + 1);
    if (!util::starts_with(line, kProgressPrefix)) continue;
    try {
      auto j = config::Json::parse(line.substr(std::strlen(kProgressPrefix)));
      progress.epoch(c.run_id, j.value("epoch", 0), j.value("epochs", 0), j.value("metric", ""), j.value("value", 0.0));
    } catch (const std::exception&) {
      // A malformed progress line only costs the display an update.
    }
  }
}

// How long a new coordinator waits for the leases of runs left 'running' to
// be released: a worker killed with its coordinator (PR_SET_PDEATHSIG) takes a
// moment to exit.
constexpr std::chrono::milliseconds kLeaseGrace{5000};

std::string method_of(const config::Json& cfg) {
  return cfg.contains("method") ? cfg["method"].value("name", "") : "";
}

// The code identity a trial of `method` would run with now.
store::CodeIdentity current_identity(const std::string& method) {
  const plugins::LoadedPlugin* p = plugins::registry().find(method);
  if (p == nullptr) return {method, "", ""};
  return {method, p->info->version ? p->info->version : "", p->digest};
}

// Summarises the code changes behind runs re-run (or kept) by --rerun.
class CodeChanges {
 public:
  void add(const store::CodeIdentity& was, const store::CodeIdentity& now) {
    ++count_[was.describe() + " -> now " + now.describe()];
  }
  void add(const std::string& what) { ++count_[what]; }
  bool empty() const { return count_.empty(); }
  std::string describe() const {
    std::string out;
    for (const auto& [what, n] : count_) out += "\n  " + std::to_string(n) + " run(s) of " + what;
    return out;
  }

 private:
  std::map<std::string, int> count_;
};

// Whether a completed run is run again under `policy`; `unknown` counts the
// runs kept because they recorded no code identity (made before schema 3).
bool rerun_wanted(const store::RunRow& run, const store::CodeIdentity& now, RerunPolicy policy, bool stage_changed,
                  CodeChanges& changes, int& unknown) {
  const store::CodeIdentity was = store::code_identity_of(run);
  const bool own = was.known() && now.known() && was != now;
  const bool changed = stage_changed || own;
  if (!was.known() && !stage_changed) ++unknown;
  if (own)
    changes.add(was, now);
  else if (stage_changed)
    changes.add(was.method_name + ", started from a stage (init.from) that runs again");
  switch (policy) {
    case RerunPolicy::kAll: return true;
    case RerunPolicy::kNone: return false;
    case RerunPolicy::kChanged: return changed;
  }
  return false;
}

}  // namespace

const char* to_string(RerunPolicy p) {
  switch (p) {
    case RerunPolicy::kChanged: return "changed";
    case RerunPolicy::kAll: return "all";
    case RerunPolicy::kNone: return "none";
  }
  return "?";
}

SchedulerResult run_sweep(const sweep::Sweep& sw, const SchedulerOptions& opt) {
  SchedulerResult result;
  result.total = static_cast<int>(sw.trials.size());
  // Closed around every fork: an SQLite connection must not cross a fork, and
  // a child that inherited one would share its in-memory lock state.
  auto store = std::make_unique<store::Store>(opt.db);
  const std::string host = util::hostname();
  const std::int64_t sweep_id = store->upsert_sweep(sw.name, sw.description, sw.toml_text);
  const auto lease_deadline = std::chrono::steady_clock::now() + kLeaseGrace;
  std::vector<std::string> notes;  // said before anything runs

  // Stages whose completed run is run again (other code, or --rerun all):
  // the trials that start from them are run again too.
  std::set<std::string> rebuilt_stages;
  CodeChanges changes;
  int unknown_identity = 0;
  std::vector<std::int64_t> to_supersede;
  if (!sw.stages.empty()) {
    if (auto stage_sweep = store->find_sweep(sweep::kStagesSweep)) {
      std::map<std::string, store::RunRow> current;
      for (auto& r : store->list_runs(stage_sweep->id))
        if (r.status != store::RunStatus::kSuperseded) current[r.key] = r;
      for (const auto& st : sw.stages) {
        auto it = current.find(st.key);
        if (it == current.end() || it->second.status != store::RunStatus::kCompleted) continue;
        if (rerun_wanted(it->second, current_identity(method_of(st.config)), opt.rerun, false, changes,
                         unknown_identity)) {
          rebuilt_stages.insert(st.key);
          to_supersede.push_back(it->second.id);
        }
      }
    }
  }

  std::deque<Pending> queue;
  for (const auto& t : sw.trials) {
    const std::string method = method_of(t.config);
    std::int64_t id = store->ensure_run(sweep_id, t.key, t.label, t.config.dump(), method);
    auto run = store->get_run(id);
    if (run->status == store::RunStatus::kRunning) {
      // Running exactly while its lease is held; a worker that is gone (its
      // coordinator was killed) has released it, at most after a moment.
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(lease_deadline - std::chrono::steady_clock::now());
      const fs::path dir = run_directory(opt.db, sw.name, t.key);
      if (!lease_held(dir, std::max(left, std::chrono::milliseconds(0)))) {
        if (store->mark_interrupted_if_running(id, "interrupted: its worker is gone (the run's lease " +
                                                       (dir / kLeaseFile).string() + " was free)"))
          ++result.recovered_stale;
        run = store->get_run(id);
      }
    }
    const std::string stage = t.stage;
    if (run->status == store::RunStatus::kCompleted &&
        rerun_wanted(*run, current_identity(method), opt.rerun, rebuilt_stages.count(stage) > 0, changes,
                     unknown_identity)) {
      to_supersede.push_back(id);
      queue.push_back({id, t.label, t.key});  // its new attempt's id is set below
      continue;
    }
    switch (run->status) {
      case store::RunStatus::kCompleted: ++result.skipped_completed; break;
      case store::RunStatus::kFailed:
        if (opt.retry_failed)
          queue.push_back({id, t.label, t.key});
        else
          ++result.skipped_failed;
        break;
      case store::RunStatus::kRunning:
        // Its lease is held: another reglab process is running it.
        ++result.skipped_running;
        break;
      default: queue.push_back({id, t.label, t.key}); break;
    }
  }

  // Other code than now: said before anything runs, then the old attempts are
  // kept as 'superseded' (their folders moved aside) and new ones queued.
  if (!changes.empty()) {
    const char* what = opt.rerun == RerunPolicy::kNone
                           ? "they are kept as they are (--rerun none); `reglab compare` refuses to pool them with "
                             "runs of other code"
                           : "they run again as new attempts (--rerun changed, the default); the old runs stay "
                             "queryable with status 'superseded'";
    notes.push_back("code changed since these completed runs:" + changes.describe() + "\n" + what);
  }
  if (opt.rerun == RerunPolicy::kAll && !to_supersede.empty())
    notes.push_back(std::to_string(to_supersede.size()) + " completed run(s) run again as new attempts (--rerun all)");
  if (unknown_identity > 0 && opt.rerun != RerunPolicy::kAll)
    notes.push_back(std::to_string(unknown_identity) +
                    " completed run(s) recorded no code identity (made before reglab recorded one); kept "
                    "(--rerun all runs them again)");
  for (const std::string& n : notes) std::fprintf(stderr, "reglab: %s\n", n.c_str());
  std::map<std::int64_t, std::int64_t> replaced;  // old run id -> its new attempt
  for (const std::int64_t old_id : to_supersede) {
    const auto run = store->get_run(old_id);
    const fs::path dir = run_directory(opt.db, run->sweep_name, run->key);
    const store::CodeIdentity now = current_identity(run->method_name);
    replaced[old_id] = store->supersede_run(old_id, "superseded: its trial was run again with " + now.describe());
    std::error_code ec;
    if (fs::exists(dir, ec)) {
      const fs::path aside = move_aside(dir);
      store->move_run_files(old_id, dir.string(), aside.string());
    }
  }
  for (Pending& p : queue)
    if (auto it = replaced.find(p.run_id); it != replaced.end()) p.run_id = it->second;

  // Stages first: every stage a queued trial starts from is produced, or
  // rebuilt when its checkpoint is missing or corrupt, before any trial runs;
  // a trial whose stage cannot be produced fails with the stage's reason.
  if (!sw.stages.empty() && !queue.empty()) {
    std::map<std::string, std::string> stage_of;
    for (const auto& t : sw.trials) stage_of[t.key] = t.stage;
    std::set<std::string> needed;
    for (const auto& q : queue) needed.insert(stage_of[q.key]);
    const fs::path results = fs::absolute(opt.db).parent_path();
    sweep::Sweep stage_sweep;
    stage_sweep.name = sweep::kStagesSweep;
    stage_sweep.description = "stages: configurations that trials start from (init.from)";
    for (const auto& st : sw.stages) {
      if (!needed.count(st.key)) continue;
      const stages::StageCheck check = stages::check_stage(*store, st.key, results);
      if (check.usable()) continue;
      if (check.run_id) {
        auto run = store->get_run(*check.run_id);
        if (run && run->status == store::RunStatus::kCompleted) {
          // Never resume from, or hand out, a checkpoint that fails its check.
          std::error_code ec;
          fs::remove(stages::stage_checkpoint_path(results, st.key), ec);
          store->reset_run(*check.run_id, check.problem + "; rebuilding it");
          std::fprintf(stderr, "%s; rebuilding it\n", check.problem.c_str());
        }
      }
      sweep::Trial t;
      t.key = st.key;
      t.config = st.config;
      t.seed = st.config.value("seed", std::int64_t{0});
      t.label = "stage " + st.file.filename().string();
      stage_sweep.trials.push_back(std::move(t));
    }
    if (!stage_sweep.trials.empty()) {
      store.reset();  // no connection may cross the stages' forks
      const SchedulerResult staged = run_sweep(stage_sweep, opt);
      store = std::make_unique<store::Store>(opt.db);
      if (staged.stopped_by_user) {
        result.stopped_by_user = true;
        return result;
      }
    }
    std::deque<Pending> ready;
    // One check per stage: it hashes the stage's checkpoint, and many trials
    // share a stage.
    std::map<std::string, stages::StageCheck> checked;
    for (const auto& q : queue) {
      const std::string& stage = stage_of[q.key];
      if (!stage.empty()) {
        auto it = checked.find(stage);
        if (it == checked.end()) it = checked.emplace(stage, stages::check_stage(*store, stage, results)).first;
        const stages::StageCheck& check = it->second;
        if (!check.usable()) {
          store->mark_finished(q.run_id, store::RunStatus::kFailed,
                               "init.from: " + check.problem +
                                   (check.problem.find("is failed") != std::string::npos
                                        ? " (run the sweep with --retry-failed to try the stage again)"
                                        : ""));
          ++result.failed;
          continue;
        }
      }
      ready.push_back(q);
    }
    queue.swap(ready);
  }

  fs::path exe;
  if (opt.exec_workers) {
    exe = opt.worker_exe.empty() ? fs::read_symlink("/proc/self/exe") : opt.worker_exe;
  } else {
    std::vector<config::Json> configs;
    for (const auto& t : sw.trials)
      for (const auto& q : queue)
        if (q.key == t.key) configs.push_back(t.config);
    prepare_to_fork_workers(configs);
  }
  const int jobs = std::max(1, opt.jobs);
  const int hw = opt.threads_total > 0 ? opt.threads_total : static_cast<int>(std::thread::hardware_concurrency());
  const int threads = std::max(1, hw / jobs);
#ifdef REGLAB_SOURCE_DIR
  const std::string git_rev = util::git_revision(REGLAB_SOURCE_DIR);
#else
  const std::string git_rev = "unknown";
#endif

  Progress progress(sw.name, static_cast<int>(queue.size()), opt.live_display);
  if (result.recovered_stale > 0)
    progress.message(std::to_string(result.recovered_stale) +
                     " run(s) left running by a reglab process that is gone (their leases were free) were marked "
                     "interrupted and will be resumed");
  if (result.skipped_running > 0)
    progress.message("not running " + std::to_string(result.skipped_running) +
                     " run(s) that another reglab process is running right now (their leases are held); "
                     "they are not finished by this command");
  if (result.skipped_completed > 0 || result.skipped_failed > 0)
    progress.message("skipping " + std::to_string(result.skipped_completed) + " completed run(s)" +
                     (result.skipped_failed ? ", " + std::to_string(result.skipped_failed) +
                                                  " failed run(s) (use --retry-failed to run them again)"
                                            : std::string()));

  // Hashed once here, so that forked workers inherit it instead of each
  // reading the binary again.
  (void)reglab_binary_digest();
  StopSignals signals;
  int handled_stops = 0;
  std::map<pid_t, Child> children;

  auto finish = [&](Child& c, int status) {
    drain(c, progress);
    close(c.out_fd);
    auto run = store->get_run(c.run_id);
    store::RunStatus st = run ? run->status : store::RunStatus::kRunning;
    std::string detail;
    if (st == store::RunStatus::kRunning || st == store::RunStatus::kPending) {
      if (c.killed_by_us && !c.timed_out) {
        st = store::RunStatus::kInterrupted;
        store->mark_finished(c.run_id, st, "killed after a second interrupt");
      } else {
        std::string why = c.timed_out ? "timed out after " + std::to_string(static_cast<long>(opt.trial_timeout_s)) +
                                            " s (--trial-timeout); worker killed"
                                      : describe_exit(status);
        st = store::RunStatus::kFailed;
        store->mark_finished(c.run_id, st, why + "\n\nlog tail:\n" + util::tail_file(c.log_path, 30));
        detail = why;
      }
    } else if (st == store::RunStatus::kFailed && run) {
      detail = run->error.substr(0, run->error.find('\n'));
    }
    switch (st) {
      case store::RunStatus::kCompleted: ++result.completed; progress.finished(c.run_id, "done", ""); break;
      case store::RunStatus::kInterrupted: ++result.interrupted; progress.finished(c.run_id, "interrupted", ""); break;
      default: ++result.failed; progress.finished(c.run_id, "failed", detail + " (log: " + c.log_path.string() + ")"); break;
    }
  };

  while (true) {
    const int stops = g_stop_requests.load();
    if (stops > handled_stops) {
      if (handled_stops == 0) {
        progress.message("interrupt: no new trials; asking running trials to save and stop (Ctrl-C again to kill them)");
        for (auto& [pid, c] : children) kill(pid, SIGINT);
      } else {
        for (auto& [pid, c] : children) {
          c.killed_by_us = true;
          kill(pid, SIGKILL);
        }
      }
      handled_stops = stops;
      result.stopped_by_user = true;
    }
    while (handled_stops == 0 && static_cast<int>(children.size()) < jobs && !queue.empty()) {
      Pending p = queue.front();
      queue.pop_front();
      const fs::path dir = run_directory(opt.db, sw.name, p.key);
      const fs::path log_path = dir / "trial.log";
      // The folder must be this run's own (a foreign one is moved aside),
      // and its lease ours, before the store says the run is running: the
      // lease is what makes 'running' true (runner/lease.h).
      const FolderClaim folder = claim_run_folder(dir, {store->store_id(), p.run_id, p.key});
      if (!folder.moved_aside.empty()) progress.message(folder.moved_aside);
      std::optional<Lease> lease;
      if (folder.usable) lease = Lease::try_acquire(dir);
      if (!lease) {
        progress.message(folder.usable ? "run " + std::to_string(p.run_id) + " (" + p.label +
                                             ") is being run by another reglab process (its lease is held)"
                                       : folder.refused);
        ++result.skipped_running;
        continue;
      }
      // Claim under our own pid: another coordinator on the same sweep may
      // have finished this run since we listed it.
      if (!store->claim_run(p.run_id, getpid(), host, git_rev, log_path.string())) {
        auto now = store->get_run(p.run_id);
        if (now && now->status == store::RunStatus::kCompleted)
          ++result.skipped_completed;
        else
          ++result.skipped_running;
        continue;
      }
      store.reset();
      Child c = spawn(exe, opt.db, p, log_path, threads, lease->fd());
      lease->release();  // the worker holds it now
      store = std::make_unique<store::Store>(opt.db);
      store->set_run_pid(p.run_id, c.pid);
      progress.started(p.run_id, p.label);
      children.emplace(c.pid, std::move(c));
    }
    if (children.empty()) break;

    std::vector<pollfd> fds;
    for (auto& [pid, c] : children) fds.push_back({c.out_fd, POLLIN, 0});
    poll(fds.data(), fds.size(), 200);
    for (auto& [pid, c] : children) drain(c, progress);

    int status = 0;
    pid_t done;
    while ((done = waitpid(-1, &status, WNOHANG)) > 0) {
      auto it = children.find(done);
      if (it == children.end()) continue;
      finish(it->second, status);
      children.erase(it);
    }
    if (opt.trial_timeout_s > 0) {
      auto now = std::chrono::steady_clock::now();
      for (auto& [pid, c] : children) {
        if (!c.timed_out && std::chrono::duration<double>(now - c.start).count() > opt.trial_timeout_s) {
          c.timed_out = true;
          kill(pid, SIGKILL);
        }
      }
    }
    progress.tick();
  }
  return result;
}

}  // namespace reglab::runner
