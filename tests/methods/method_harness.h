// Helpers for the golden tests: load a plugin from the build's plugin folder
// and run one training step through MethodHandle, the way the classify
// paradigm does (setup, training_loss, backward).
#pragma once

#include <torch/types.h>

#include <cstdint>
#include <string>
#include <vector>

#include "plugins/loader.h"

namespace reglab::testing {

using Rows = std::vector<std::vector<double>>;

// libreglab_<name>.so from REGLAB_BUILD_PLUGIN_DIR, loaded once per process.
const plugins::LoadedPlugin& build_plugin(const std::string& name);

struct StepResult {
  torch::Tensor loss;  // the scalar the method returned
  torch::Tensor grad;  // d loss / d logits
};

// `params_json` is the [method] table as JSON ("{}" for the defaults).
StepResult run_step(const std::string& method, const std::string& params_json, const torch::Tensor& logits,
                    const std::vector<std::int64_t>& labels);

torch::Tensor make_logits(const Rows& rows, torch::ScalarType dtype);

// Element-wise |actual - expected| <= tol, with the position in the message.
void expect_rows_near(const torch::Tensor& actual, const Rows& expected, double tol);

}  // namespace reglab::testing
