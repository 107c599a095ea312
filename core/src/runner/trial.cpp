#include "runner/trial.h"

#include <ATen/Parallel.h>
#include <c10/util/Exception.h>
#include <spdlog/sinks/basic_file_sink.h>
#include <spdlog/spdlog.h>

#include <atomic>
#include <csignal>
#include <cstdio>
#include <iostream>

#include "paradigms/classify.h"
#include "paradigms/mil.h"
#include "paradigms/rlvr.h"
#include "paradigms/sft.h"
#include "paradigms/tta.h"
#include "plugins/loader.h"
#include "runner/lease.h"
#include "runner/run_folder.h"
#include "stages/checkpoint.h"
#include "runner/trial_env.h"
#include "store/store.h"
#include "sweep/stage.h"
#include "util/hash.h"
#include "util/hash.h"
#include "util/util.h"

namespace reglab::runner {

namespace fs = std::filesystem;

namespace {

std::atomic<bool> g_interrupted{false};
extern "C" void on_stop_signal(int) { g_interrupted.store(true); }

// The plugins' Logger, writing to the trial's spdlog logger.
class SpdLogger final : public Logger {
 public:
  explicit SpdLogger(std::shared_ptr<spdlog::logger> logger) : logger_(std::move(logger)) {}
  void log(LogLevel level, std::string_view message) override {
    switch (level) {
      case LogLevel::kDebug: logger_->debug(message); break;
      case LogLevel::kInfo: logger_->info(message); break;
      case LogLevel::kWarn: logger_->warn(message); break;
      case LogLevel::kError: logger_->error(message); break;
    }
  }

 private:
  std::shared_ptr<spdlog::logger> logger_;
};

}  // namespace

const std::string& reglab_binary_digest() {
  static const std::string digest = [] {
    try {
      return util::hash_file_hex("/proc/self/exe");
    } catch (const std::exception&) {
      return std::string();
    }
  }();
  return digest;
}

fs::path run_directory(const fs::path& db, const std::string& sweep, const std::string& key) {
  fs::path base = db.parent_path().empty() ? fs::path(".") : db.parent_path();
  return base / "runs" / sweep / key;
}

int run_trial_process(const TrialProcessOptions& options) {
  std::signal(SIGINT, on_stop_signal);
  std::signal(SIGTERM, on_stop_signal);
  at::set_num_threads(std::max(1, options.threads));

  store::Store store(options.db, options.journal);
  auto run = store.get_run(options.run_id);
  if (!run) {
    std::cerr << "reglab: no run " << options.run_id << " in " << options.db << "\n";
    return 1;
  }
  const fs::path run_dir = options.results_dir.empty()
                               ? run_directory(options.db, run->sweep_name, run->key)
                               : options.results_dir / "runs" / run->sweep_name / run->key;
  // The folder must be this run's own, and its lease ours, before anything is
  // read from or written to it (a coordinator did both already and handed
  // the lease over; a Slurm element or a hand-started worker does them here).
  const runner::FolderClaim folder = claim_run_folder(run_dir, {store.store_id(), run->id, run->key});
  if (!folder.usable) {
    std::cerr << "reglab: run " << run->id << ": " << folder.refused << "\n";
    return kExitLeaseHeld;
  }
  if (!folder.moved_aside.empty()) std::cerr << "reglab: " << folder.moved_aside << "\n";
  Lease lease;
  if (options.lease_fd >= 0) {
    lease = Lease::adopt(options.lease_fd);
  } else {
    std::optional<Lease> taken;
    try {
      taken = Lease::try_acquire(run_dir);
    } catch (const std::exception& e) {
      // A file system without flock: the run goes on unleased (reglab
      // status says so for Slurm results folders).
      std::cerr << "reglab: warning: " << e.what() << "; run " << run->id << " runs without a lease\n";
    }
    if (taken) {
      lease = std::move(*taken);
    } else if (lease_support_problem(run_dir).empty()) {
      std::cerr << "reglab: run " << run->id << " (" << run->key << ") is already running in another process "
                << "(its lease " << (run_dir / kLeaseFile).string() << " is held); not starting it again\n";
      return kExitLeaseHeld;
    }
  }
  const fs::path log_path = run->log_path.empty() ? run_dir / "trial.log" : fs::path(run->log_path);

  // A logger of our own, never registered globally (plugins must not find it
  // through spdlog's registry either).
  auto sink = std::make_shared<spdlog::sinks::basic_file_sink_mt>(log_path.string(), /*truncate=*/false);
  auto logger = std::make_shared<spdlog::logger>("trial", sink);
  logger->set_pattern("%Y-%m-%d %H:%M:%S.%e %^%l%$ %v");
  logger->set_level(spdlog::level::info);
  logger->flush_on(spdlog::level::info);
  SpdLogger log(logger);
  log.info("run " + std::to_string(run->id) + " key " + run->key + " (" + run->label + ") attempt " +
           std::to_string(run->attempts) + ", " + std::to_string(options.threads) + " thread(s), pid " +
           std::to_string(getpid()));

  MetricRecorder recorder(&store, run->id);
  bool checkpoint_recorded = false;
  TrialEnv env{config::Json::parse(run->config_json), log, recorder, run_dir,
               [] { return g_interrupted.load(); },
               [](const config::Json& progress) {
                 std::cout << kProgressPrefix << progress.dump() << std::endl;
               },
               [&] { store.heartbeat(run->id); },
               [&](const std::string& name, const std::string& version) {
                 const plugins::LoadedPlugin* plugin = plugins::registry().find(name);
                 store.set_code_identity(run->id, version, plugin ? plugin->digest : std::string(),
                                         reglab_binary_digest());
               },
               [&](const std::string& kind, const fs::path& file) {
                 if (kind == "checkpoint") checkpoint_recorded = true;
                 store.add_artifact({run->id, kind, file.string(), util::hash_file_hex(file)});
               },
               options.spawned_at};
  auto fail = [&](const std::string& what) {
    log.log(LogLevel::kError, what);
    logger->flush();
    store.mark_finished(run->id, store::RunStatus::kFailed, what + "\n\nlog tail:\n" + util::tail_file(log_path, 30));
    return 1;
  };
  try {
    const std::string stage = env.config.contains("init") ? env.config["init"].value("stage", std::string()) : "";
    if (!stage.empty()) {
      // Local trials find the stage in their own store; a Slurm element, whose
      // store is its shard, finds it in the stage's shard.
      const fs::path results = options.results_dir.empty() ? fs::absolute(options.db).parent_path() : options.results_dir;
      stages::StageCheck check = stages::check_stage(store, stage, results);
      std::optional<store::RunRow> stage_run = check.run_id ? store.get_run(*check.run_id) : std::nullopt;
      const fs::path stage_shard = results / "shards" / sweep::kStagesSweep / (stage + ".db");
      if (!check.usable() && fs::exists(stage_shard)) {
        store::Store shard(stage_shard, store::Journal::kRollback);
        check = stages::check_stage(shard, stage, results);
        stage_run = check.run_id ? shard.get_run(*check.run_id) : std::nullopt;
      }
      if (!check.usable()) return fail("init.from: " + check.problem);
      env.init_checkpoint = check.checkpoint;
      if (stage_run) env.init_config = config::Json::parse(stage_run->config_json);
      log.info("starting from stage " + stage + ": " + check.checkpoint.string());
    }
    const std::string paradigm = env.config.at("task").value("paradigm", std::string("classify"));
    if (paradigm == "mil") {
      paradigms::run_mil(env);
    } else if (paradigm == "tta") {
      paradigms::run_tta(env);
    } else if (paradigm == "sft") {
      paradigms::run_sft(env);
    } else if (paradigm == "rlvr") {
      paradigms::run_rlvr(env);
    } else if (paradigm == "classify") {
      paradigms::run_classify(env);
    } else {
      return fail("paradigm '" + paradigm + "' is not available in this build");
    }
    recorder.flush();
    // A trial that resumes from a checkpoint written after its last step
    // (killed before it was marked completed, or a store started afresh
    // beside its results) has nothing left to run and writes no checkpoint
    // now; the one it resumed from is its final model, and a stage must
    // record it for the trials that start from it.
    const fs::path checkpoint = run_dir / "checkpoint.pt";
    if (!checkpoint_recorded && fs::exists(checkpoint)) env.artifact("checkpoint", checkpoint);
    store.mark_finished(run->id, store::RunStatus::kCompleted, "");
    log.info("completed");
    return 0;
  } catch (const Interrupted&) {
    recorder.flush();
    log.warn("interrupted; the last checkpoint will be resumed by the next run of the sweep");
    store.mark_finished(run->id, store::RunStatus::kInterrupted, "interrupted by the user");
    return kExitInterrupted;
  } catch (const c10::Error& e) {
    return fail(e.what_without_backtrace());
  } catch (const std::exception& e) {
    return fail(e.what());
  }
}

}  // namespace reglab::runner
