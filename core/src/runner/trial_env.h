// runner/trial_env.h — what a paradigm gets from the runner for one trial.
//
// The paradigm owns the training loop; the environment gives it the trial's
// configuration, a logger (the trial's log file), a metric recorder that
// batches points into the store, the folder for its checkpoints, a way to
// report progress to the coordinator, and the interrupt flag to poll between
// steps. Single-threaded.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

#include "config/config.h"
#include "metrics/directions.h"
#include "reglab/method.h"
#include "store/store.h"

namespace reglab::runner {

// Raised by a paradigm when the interrupt flag was seen; the trial is then
// recorded as interrupted (its checkpoint lets a later run resume).
class Interrupted : public std::runtime_error {
 public:
  Interrupted() : std::runtime_error("interrupted") {}
};

// Buffers metric points and direction declarations and writes them to the
// store, one transaction each per flush (the paradigm flushes once per epoch).
// The paradigms record their own keys with record_core, which declares each
// key's direction from the core's table (metrics/directions.h); methods get
// the recorder as their MetricSink and declare their keys themselves.
class MetricRecorder final : public MetricSink {
 public:
  MetricRecorder(store::Store* store, std::int64_t run_id) : store_(store), run_id_(run_id) {}
  void record(std::string_view key, double value, std::int64_t step) override {
    points_.push_back({std::string(key), step, value});
  }
  // A key is declared once per trial; the same direction again is a no-op,
  // another one is std::invalid_argument naming the key and both directions.
  void declare(std::string_view key, MetricDirection direction) override {
    const auto [it, fresh] = directions_.try_emplace(std::string(key), direction);
    if (fresh) {
      declarations_.push_back({it->first, direction});
    } else if (it->second != direction) {
      throw std::invalid_argument("metric '" + it->first + "' is declared " + to_string(it->second) +
                                  " is better and then " + to_string(direction) + " is better");
    }
  }
  // A key of the core's own: declared from metrics/directions.h, then recorded
  // (std::logic_error for a key missing from that table).
  void record_core(std::string_view key, double value, std::int64_t step) {
    declare(key, metrics::require_core_direction(key));
    record(key, value, step);
  }
  void flush() {
    if (store_ != nullptr && !declarations_.empty()) store_->declare_metrics(run_id_, declarations_);
    declarations_.clear();
    if (store_ != nullptr && !points_.empty()) store_->add_metrics(run_id_, points_);
    points_.clear();
  }
  const std::vector<store::MetricPoint>& pending() const { return points_; }
  // Every key declared so far in this trial, with its direction.
  const std::map<std::string, MetricDirection>& directions() const { return directions_; }

 private:
  store::Store* store_;
  std::int64_t run_id_;
  std::vector<store::MetricPoint> points_;
  std::vector<store::MetricDeclaration> declarations_;  // not yet written
  std::map<std::string, MetricDirection> directions_;
};

struct TrialEnv {
  config::Json config;                 // the resolved trial configuration
  Logger& log;
  MetricRecorder& metrics;
  std::filesystem::path run_dir;       // checkpoints live here (created by the runner)
  std::function<bool()> interrupted;   // true once Ctrl-C was pressed
  // Progress for the coordinator's display: epoch, total, latest metrics.
  std::function<void(const config::Json&)> report;
  // Called after each epoch's metrics are flushed (heartbeat in the store).
  std::function<void()> heartbeat;
  // Records the method plugin's version once it is known.
  std::function<void(const std::string& name, const std::string& version)> method_version;
  // Records a file the trial produced (kind: "checkpoint", ...) with its checksum.
  std::function<void(const std::string& kind, const std::filesystem::path& file)> artifact;
  // Wall-clock seconds when the coordinator started this worker (0 = unknown);
  // the paradigm records time.startup_s = first step done − spawned_at.
  double spawned_at = 0;
  // The verified checkpoint of the stage the trial starts from (init.from);
  // empty when it has none. The paradigm loads its model from it.
  std::filesystem::path init_checkpoint = {};
  // The stage's resolved configuration (null when the trial has none): what
  // the source model was trained on (the tta paradigm normalises its test
  // data with the stage's training statistics).
  config::Json init_config = nullptr;
};

}  // namespace reglab::runner
