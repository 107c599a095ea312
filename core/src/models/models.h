// models/models.h — the classifiers the classify paradigm trains.
//
// `mlp`: flatten, then Linear+ReLU for each hidden size, then Linear to the
// classes. `cnn`: for each channel count a 3x3 conv (padding 1) + BatchNorm +
// ReLU + 2x2 max-pool, then global average pooling and a Linear layer. Both
// return logits [B, K]. Initialisation is LibTorch's default, drawn from the
// global generator (seed it first).
#pragma once

#include <torch/nn/modules/container/sequential.h>

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace reglab::models {

struct ModelOptions {
  std::string arch = "mlp";                   // mlp | cnn
  std::vector<std::int64_t> hidden = {256};   // mlp
  std::vector<std::int64_t> channels = {32, 64};  // cnn
  double dropout = 0.0;                       // mlp, after each hidden ReLU
};

// Throws std::invalid_argument on unknown arch or an input shape the arch
// cannot take (cnn needs [C, H, W]).
torch::nn::Sequential make_model(const ModelOptions& options,
                                 const std::vector<std::int64_t>& input_shape,
                                 std::int64_t num_classes);

// The same layers behind a first one, "before_forward", that calls
// hook(is_training()) and passes its input on: how a paradigm runs a
// method's before_forward on every forward pass, training and evaluation
// alike. The other layers keep their names, so parameter names (and
// checkpoint keys) are unchanged.
torch::nn::Sequential with_before_forward(const torch::nn::Sequential& model, std::function<void(bool)> hook);

}  // namespace reglab::models
