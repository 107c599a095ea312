// runner/progress.h — what the user sees while a sweep runs.
//
// On a terminal: a status block redrawn in place (trials done / running /
// failed, elapsed and ETA, and one line per running trial with its epoch and
// latest metric). Elsewhere (CI, pipes): one plain line per event. Writes to
// stderr; stdout stays free for results.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <string>

namespace reglab::runner {

class Progress {
 public:
  Progress(std::string sweep, int to_run, bool live);
  ~Progress();

  void started(std::int64_t run_id, const std::string& label);
  void epoch(std::int64_t run_id, std::int64_t epoch, std::int64_t epochs, const std::string& metric, double value);
  void finished(std::int64_t run_id, const std::string& outcome, const std::string& detail);
  void message(const std::string& line);
  void tick();  // redraws the live block at most a few times a second

 private:
  struct Running {
    std::string label;
    std::int64_t epoch = 0, epochs = 0;
    std::string metric;
    double value = 0;
    std::chrono::steady_clock::time_point start;
  };
  void redraw(bool force);
  void clear_block();
  std::string eta() const;

  std::string sweep_;
  int to_run_;
  bool live_;
  int done_ = 0, failed_ = 0;
  double finished_seconds_ = 0;  // sum of durations of finished trials
  std::map<std::int64_t, Running> running_;
  std::chrono::steady_clock::time_point start_, last_draw_;
  int drawn_lines_ = 0;
};

}  // namespace reglab::runner
