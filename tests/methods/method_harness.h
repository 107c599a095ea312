// Helpers for the golden tests: load a plugin from the build's plugin folder
// and run one training step through MethodHandle, the way the classify
// paradigm does (setup, training_loss, backward).
#pragma once

#include <torch/types.h>

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "plugins/loader.h"
#include "plugins/method_handle.h"
#include "reglab/method.h"

namespace reglab::testing {

using Rows = std::vector<std::vector<double>>;

// A method's log lines and metrics, dropped.
class NullLogger final : public Logger {
 public:
  void log(LogLevel, std::string_view) override {}
};

class NullSink final : public MetricSink {
 public:
  void record(std::string_view, double, std::int64_t) override {}
  void declare(std::string_view, MetricDirection) override {}
};

// libreglab_<name>.so from REGLAB_BUILD_PLUGIN_DIR, loaded once per process.
const plugins::LoadedPlugin& build_plugin(const std::string& name);

struct StepResult {
  torch::Tensor loss;  // the scalar the method returned
  torch::Tensor grad;  // d loss / d logits
  std::string loss_fn;  // the autograd node that made the loss ("" for a leaf), e.g. which path a method took
};

// `params_json` is the [method] table as JSON ("{}" for the defaults).
StepResult run_step(const std::string& method, const std::string& params_json, const torch::Tensor& logits,
                    const std::vector<std::int64_t>& labels);

// One method set up once for N samples, K classes and E epochs (CPU), whose
// steps run as the classify paradigm runs them: training_loss, backward,
// after_optimizer_step (no optimizer). For stateful methods: state carried
// across steps, state_dict()/load_state_dict() through handle().
class MethodSession {
 public:
  MethodSession(const std::string& method, const std::string& params_json, std::int64_t num_samples,
                std::int64_t num_classes, std::int64_t total_epochs, torch::ScalarType dtype,
                Paradigm paradigm = kClassify);
  ~MethodSession();
  MethodSession(const MethodSession&) = delete;
  MethodSession& operator=(const MethodSession&) = delete;

  StepResult step(const torch::Tensor& logits, const std::vector<std::int64_t>& labels,
                  const std::vector<std::int64_t>& indices, std::int64_t epoch = 0);
  plugins::MethodHandle& handle() { return *handle_; }
  // A StepContext for calling the handle's hooks directly (rlvr, tta).
  StepContext context(std::int64_t epoch, std::int64_t step) { return {epoch, total_epochs_, step, *log_, *metrics_}; }

 private:
  Params params_;
  std::unique_ptr<Logger> log_;
  std::unique_ptr<MetricSink> metrics_;
  std::unique_ptr<plugins::MethodHandle> handle_;
  std::int64_t total_epochs_;
  std::int64_t steps_ = 0;
};

torch::Tensor make_logits(const Rows& rows, torch::ScalarType dtype);

// Element-wise |actual - expected| <= tol, with the position in the message.
void expect_rows_near(const torch::Tensor& actual, const Rows& expected, double tol);

// The same for a nested JSON list of numbers (a probe response's grad_logits
// or state entry).
void expect_json_rows_near(const nlohmann::json& actual, const Rows& expected, double tol);

}  // namespace reglab::testing
