// tests/report/report_fixture.h — a small store with hand-checkable contents.
//
// Sweep "noisy" (description and TOML recorded):
//   ce  (no epsilon)        seed 0: test.acc 0.50 0.60 0.70   test.nll 1.0 0.8 0.6
//                           seed 1: test.acc 0.54 0.66 0.74   test.nll 1.2 0.9 0.8
//   label_smoothing eps 0.1 seed 0: test.acc 0.40 0.62 0.80   test.nll 0.9 0.7 0.5
//                           seed 1: test.acc 0.44 0.58 0.76   test.nll 1.1 0.8 0.7
//                           seed 2: test.acc 0.42 0.66        test.nll 1.0 0.75
//   ce seed 2: failed, with an error and a log file.
// (Steps 1, 2, 3; the last label_smoothing run stopped logging after step 2,
// so step 3 has n = 2 in both groups.)
//
// The statistics the tests expect were computed with Python's
// statistics.mean / statistics.stdev and the Student t quantiles 12.70620474
// (1 dof) and 4.30265273 (2 dof): ci95 = t * stdev / sqrt(n).
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "metrics/directions.h"
#include "store/store.h"
#include "store/temp_db.h"

namespace reglab::testing_support {

inline std::int64_t add_report_run(store::Store& s, std::int64_t sweep, const std::string& key,
                                   const std::string& config_json, const std::string& label,
                                   const std::string& method, const std::vector<store::MetricPoint>& points,
                                   store::RunStatus status = store::RunStatus::kCompleted,
                                   const std::string& error = "", const std::string& log_path = "") {
  const auto id = s.ensure_run(sweep, key, label, config_json, method);
  s.mark_running(id, ::getpid(), "labhost", "abc123def456", log_path);
  s.set_code_identity(id, method == "ce" ? "1.0.0" : "1.2.0", "", "");
  // Directions as the paradigms declare them (core keys only).
  std::vector<store::MetricDeclaration> declared;
  for (const auto& p : points) {
    if (const auto d = metrics::core_direction(p.key)) declared.push_back({p.key, *d});
  }
  s.declare_metrics(id, declared);
  s.add_metrics(id, points);
  s.mark_finished(id, status, error);
  return id;
}

inline std::string ce_config(int seed) {
  return R"({"method":{"name":"ce"},"optim":{"lr":0.1},"seed":)" + std::to_string(seed) + "}";
}
inline std::string ls_config(int seed) {
  return R"({"method":{"name":"label_smoothing","epsilon":0.1},"optim":{"lr":0.1},"seed":)" + std::to_string(seed) +
         "}";
}

class ReportStore : public ::testing::Test {
 protected:
  void SetUp() override {
    store_ = std::make_unique<store::Store>(dir_.file("r.db"));
    store::Store& s = *store_;
    sweep_ = s.upsert_sweep("noisy", "CE vs label smoothing under noise",
                            "[sweep]\nname = \"noisy\"\nseeds = [0, 1, 2]\n");
    s.upsert_sweep("other", "", "");
    add_report_run(s, sweep_, "ce000000", ce_config(0), "method.name=ce seed=0", "ce",
                   {{"test.acc", 1, 0.50}, {"test.acc", 2, 0.60}, {"test.acc", 3, 0.70},
                    {"test.nll", 1, 1.0}, {"test.nll", 2, 0.8}, {"test.nll", 3, 0.6}});
    add_report_run(s, sweep_, "ce111111", ce_config(1), "method.name=ce seed=1", "ce",
                   {{"test.acc", 1, 0.54}, {"test.acc", 2, 0.66}, {"test.acc", 3, 0.74},
                    {"test.nll", 1, 1.2}, {"test.nll", 2, 0.9}, {"test.nll", 3, 0.8}});
    add_report_run(s, sweep_, "ls000000", ls_config(0), "method.name=label_smoothing seed=0", "label_smoothing",
                   {{"test.acc", 1, 0.40}, {"test.acc", 2, 0.62}, {"test.acc", 3, 0.80},
                    {"test.nll", 1, 0.9}, {"test.nll", 2, 0.7}, {"test.nll", 3, 0.5}});
    add_report_run(s, sweep_, "ls111111", ls_config(1), "method.name=label_smoothing seed=1", "label_smoothing",
                   {{"test.acc", 1, 0.44}, {"test.acc", 2, 0.58}, {"test.acc", 3, 0.76},
                    {"test.nll", 1, 1.1}, {"test.nll", 2, 0.8}, {"test.nll", 3, 0.7}});
    add_report_run(s, sweep_, "ls222222", ls_config(2), "method.name=label_smoothing seed=2", "label_smoothing",
                   {{"test.acc", 1, 0.42}, {"test.acc", 2, 0.66}, {"test.nll", 1, 1.0}, {"test.nll", 2, 0.75}});
    log_path_ = dir_.file("ce2.log");
    std::ofstream(log_path_) << "epoch 1 loss 2.3\nepoch 2 loss nan\nfatal: loss is NaN at epoch 2\n";
    add_report_run(s, sweep_, "ce222222", ce_config(2), "method.name=ce seed=2", "ce",
                   {{"test.acc", 1, 0.99}}, store::RunStatus::kFailed, "non-finite loss at epoch 2",
                   log_path_.string());
  }

  TempDir dir_;
  std::unique_ptr<store::Store> store_;
  std::int64_t sweep_ = 0;
  std::filesystem::path log_path_;
};

}  // namespace reglab::testing_support
