#include "methods/method_harness.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <map>
#include <string_view>

#include "plugins/method_handle.h"
#include "reglab/method.h"

namespace reglab::testing {
namespace {

class NullLogger final : public Logger {
 public:
  void log(LogLevel, std::string_view) override {}
};

class NullSink final : public MetricSink {
 public:
  void record(std::string_view, double, std::int64_t) override {}
};

}  // namespace

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
  return {loss.detach(), leaf.grad()};
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

}  // namespace reglab::testing
