#include "methods/method_harness.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <filesystem>
#include <map>

#include "plugins/method_handle.h"
#include "reglab/method.h"

#include <torch/csrc/autograd/function.h>

namespace reglab::testing {

const plugins::LoadedPlugin& build_plugin(const std::string& name) {
  static std::map<std::string, plugins::LoadedPlugin> loaded;
  auto it = loaded.find(name);
  if (it == loaded.end()) {
    const auto file = std::filesystem::path(REGLAB_BUILD_PLUGIN_DIR) / ("libreglab_" + name + ".so");
    it = loaded.emplace(name, plugins::load_plugin(file)).first;
  }
  return it->second;
}

StepResult run_step(const std::string& method, const std::string& params_json, const torch::Tensor& logits,
                    const std::vector<std::int64_t>& labels) {
  const plugins::LoadedPlugin& plugin = build_plugin(method);
  const Params params = plugins::resolve_params(*plugin.info, params_json);
  NullLogger log;
  NullSink sink;
  const std::int64_t b = logits.size(0);
  const MethodContext ctx{params, log, sink, kClassify, b, logits.size(1), 1, torch::Device(torch::kCPU),
                          logits.scalar_type()};
  plugins::MethodHandle handle(plugin);
  handle.setup(ctx);

  const torch::Tensor leaf = logits.detach().clone().requires_grad_(true);
  Outputs outputs;
  outputs.set("logits", leaf);
  const Batch batch{torch::Tensor(), torch::tensor(labels, torch::kLong), torch::arange(b, torch::kLong)};
  const StepContext step{0, 1, 0, log, sink};
  torch::Tensor loss = handle.training_loss(batch, outputs, step);
  loss.backward();
  return {loss.detach(), leaf.grad(), loss.grad_fn() ? loss.grad_fn()->name() : std::string()};
}

MethodSession::MethodSession(const std::string& method, const std::string& params_json, std::int64_t num_samples,
                             std::int64_t num_classes, std::int64_t total_epochs, torch::ScalarType dtype,
                             Paradigm paradigm)
    : log_(std::make_unique<NullLogger>()), metrics_(std::make_unique<NullSink>()), total_epochs_(total_epochs) {
  const plugins::LoadedPlugin& plugin = build_plugin(method);
  params_ = plugins::resolve_params(*plugin.info, params_json);
  handle_ = std::make_unique<plugins::MethodHandle>(plugin);
  const MethodContext ctx{params_,      *log_, *metrics_, paradigm, num_samples, num_classes, total_epochs,
                          torch::kCPU, dtype};
  handle_->setup(ctx);
}

MethodSession::~MethodSession() = default;

StepResult MethodSession::step(const torch::Tensor& logits, const std::vector<std::int64_t>& labels,
                               const std::vector<std::int64_t>& indices, std::int64_t epoch) {
  const torch::Tensor leaf = logits.detach().clone().requires_grad_(true);
  Outputs outputs;
  outputs.set("logits", leaf);
  const Batch batch{torch::Tensor(), torch::tensor(labels, torch::kLong), torch::tensor(indices, torch::kLong)};
  const StepContext ctx{epoch, total_epochs_, steps_++, *log_, *metrics_};
  torch::Tensor loss = handle_->training_loss(batch, outputs, ctx);
  loss.backward();
  handle_->after_optimizer_step(batch, outputs, ctx);
  return {loss.detach(), leaf.grad(), loss.grad_fn() ? loss.grad_fn()->name() : std::string()};
}

torch::Tensor make_logits(const Rows& rows, torch::ScalarType dtype) {
  std::vector<double> flat;
  for (const auto& r : rows) flat.insert(flat.end(), r.begin(), r.end());
  const auto b = static_cast<std::int64_t>(rows.size());
  return torch::tensor(flat, torch::kDouble).reshape({b, b ? static_cast<std::int64_t>(rows[0].size()) : 0}).to(dtype);
}

void expect_rows_near(const torch::Tensor& actual, const Rows& expected, double tol) {
  ASSERT_EQ(actual.dim(), 2);
  ASSERT_EQ(actual.size(0), static_cast<std::int64_t>(expected.size()));
  const torch::Tensor a = actual.to(torch::kDouble);
  for (std::size_t i = 0; i < expected.size(); ++i) {
    ASSERT_EQ(a.size(1), static_cast<std::int64_t>(expected[i].size()));
    for (std::size_t j = 0; j < expected[i].size(); ++j)
      EXPECT_NEAR(a[i][j].item<double>(), expected[i][j], tol) << "at [" << i << "][" << j << "]";
  }
}

void expect_json_rows_near(const nlohmann::json& actual, const Rows& expected, double tol) {
  ASSERT_TRUE(actual.is_array()) << actual.dump();
  ASSERT_EQ(actual.size(), expected.size());
  for (std::size_t i = 0; i < expected.size(); ++i) {
    ASSERT_TRUE(actual[i].is_array()) << actual.dump();
    ASSERT_EQ(actual[i].size(), expected[i].size());
    for (std::size_t j = 0; j < expected[i].size(); ++j)
      EXPECT_NEAR(actual[i][j].get<double>(), expected[i][j], tol) << "at [" << i << "][" << j << "]";
  }
}

}  // namespace reglab::testing
