#include "runner/progress.h"

#include <cmath>
#include <cstdio>

namespace reglab::runner {

namespace {
std::string format_duration(double s) {
  if (!std::isfinite(s) || s < 0) return "?";
  long t = static_cast<long>(s + 0.5);
  char buf[32];
  if (t >= 3600)
    std::snprintf(buf, sizeof buf, "%ldh%02ldm", t / 3600, (t % 3600) / 60);
  else
    std::snprintf(buf, sizeof buf, "%ldm%02lds", t / 60, t % 60);
  return buf;
}
}  // namespace

Progress::Progress(std::string sweep, int to_run, bool live)
    : sweep_(std::move(sweep)), to_run_(to_run), live_(live), start_(std::chrono::steady_clock::now()) {}

Progress::~Progress() {
  if (live_) redraw(true);
}

void Progress::started(std::int64_t run_id, const std::string& label) {
  running_[run_id] = Running{label, 0, 0, "", 0, std::chrono::steady_clock::now()};
  if (!live_) std::fprintf(stderr, "[%s] start  run %lld  %s\n", sweep_.c_str(), static_cast<long long>(run_id), label.c_str());
  redraw(false);
}

void Progress::epoch(std::int64_t run_id, std::int64_t epoch, std::int64_t epochs, const std::string& metric,
                     double value) {
  auto it = running_.find(run_id);
  if (it == running_.end()) return;
  it->second.epoch = epoch;
  it->second.epochs = epochs;
  it->second.metric = metric;
  it->second.value = value;
  if (!live_)
    std::fprintf(stderr, "[%s] run %lld epoch %lld/%lld %s=%.4f\n", sweep_.c_str(), static_cast<long long>(run_id),
                 static_cast<long long>(epoch), static_cast<long long>(epochs), metric.c_str(), value);
  redraw(false);
}

void Progress::finished(std::int64_t run_id, const std::string& outcome, const std::string& detail) {
  auto it = running_.find(run_id);
  std::string label = it != running_.end() ? it->second.label : "";
  if (it != running_.end()) {
    finished_seconds_ += std::chrono::duration<double>(std::chrono::steady_clock::now() - it->second.start).count();
    running_.erase(it);
  }
  ++done_;
  if (outcome == "failed") ++failed_;
  std::string line = "[" + sweep_ + "] " + outcome + " run " + std::to_string(run_id) + "  " + label +
                     (detail.empty() ? "" : "  — " + detail);
  message(line);
}

void Progress::message(const std::string& line) {
  if (live_) clear_block();
  std::fprintf(stderr, "%s\n", line.c_str());
  if (live_) redraw(true);
}

void Progress::tick() { redraw(false); }

std::string Progress::eta() const {
  if (done_ == 0) return "?";
  const int parallel = std::max<int>(1, static_cast<int>(running_.size()));
  const double per_trial = finished_seconds_ / done_;
  const int remaining = to_run_ - done_;
  return format_duration(per_trial * remaining / parallel);
}

void Progress::clear_block() {
  for (int i = 0; i < drawn_lines_; ++i) std::fprintf(stderr, "\x1b[1A\x1b[2K");
  drawn_lines_ = 0;
}

void Progress::redraw(bool force) {
  if (!live_) return;
  auto now = std::chrono::steady_clock::now();
  if (!force && now - last_draw_ < std::chrono::milliseconds(200)) return;
  last_draw_ = now;
  clear_block();
  const double elapsed = std::chrono::duration<double>(now - start_).count();
  std::fprintf(stderr, "\x1b[1m%s\x1b[0m  %d/%d done, %zu running, %d failed  elapsed %s  ETA %s\n", sweep_.c_str(),
               done_, to_run_, running_.size(), failed_, format_duration(elapsed).c_str(), eta().c_str());
  drawn_lines_ = 1;
  for (const auto& [id, r] : running_) {
    if (r.epochs > 0)
      std::fprintf(stderr, "  run %-5lld %-40.40s epoch %lld/%lld  %s %.4f\n", static_cast<long long>(id),
                   r.label.c_str(), static_cast<long long>(r.epoch), static_cast<long long>(r.epochs), r.metric.c_str(),
                   r.value);
    else
      std::fprintf(stderr, "  run %-5lld %-40.40s starting\n", static_cast<long long>(id), r.label.c_str());
    ++drawn_lines_;
  }
  std::fflush(stderr);
}

}  // namespace reglab::runner
