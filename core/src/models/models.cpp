// models/models.cpp — builds the mlp and cnn classifiers as nn::Sequential.
#include "models/models.h"

#include <torch/nn/modules/activation.h>
#include <torch/nn/modules/batchnorm.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/dropout.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/modules/pooling.h>

#include <cmath>
#include <memory>
#include <stdexcept>
#include <string>
#include <utility>

namespace reglab::models {
namespace {

std::string shape_string(const std::vector<std::int64_t>& shape) {
  std::string out = "[";
  for (std::size_t i = 0; i < shape.size(); ++i) {
    out += (i ? ", " : "") + std::to_string(shape[i]);
  }
  return out + "]";
}

void require_sizes(const std::vector<std::int64_t>& sizes, const char* key) {
  for (std::int64_t s : sizes) {
    if (s < 1) {
      throw std::invalid_argument(std::string("model.") + key + " entries must be positive, got " +
                                  shape_string(sizes));
    }
  }
}

torch::nn::Sequential make_mlp(const ModelOptions& options,
                               const std::vector<std::int64_t>& input_shape,
                               std::int64_t num_classes) {
  require_sizes(options.hidden, "hidden");
  if (!(options.dropout >= 0.0 && options.dropout < 1.0)) {
    throw std::invalid_argument("model.dropout must be in [0, 1), got " +
                                std::to_string(options.dropout));
  }
  std::int64_t width = 1;
  for (std::int64_t d : input_shape) width *= d;

  torch::nn::Sequential net;
  net->push_back(torch::nn::Flatten());
  for (std::int64_t hidden : options.hidden) {
    net->push_back(torch::nn::Linear(width, hidden));
    net->push_back(torch::nn::ReLU());
    if (options.dropout > 0.0) net->push_back(torch::nn::Dropout(options.dropout));
    width = hidden;
  }
  net->push_back(torch::nn::Linear(width, num_classes));
  return net;
}

torch::nn::Sequential make_cnn(const ModelOptions& options,
                               const std::vector<std::int64_t>& input_shape,
                               std::int64_t num_classes) {
  if (input_shape.size() != 3) {
    throw std::invalid_argument("model.arch = cnn needs image input [C, H, W], got " +
                                shape_string(input_shape));
  }
  if (options.channels.empty()) {
    throw std::invalid_argument("model.channels must list at least one channel count for cnn");
  }
  require_sizes(options.channels, "channels");
  // Each stage halves H and W (floor); a stage needs at least 2x2 to pool.
  std::int64_t h = input_shape[1];
  std::int64_t w = input_shape[2];
  for (std::size_t i = 0; i < options.channels.size(); ++i) {
    if (h < 2 || w < 2) {
      throw std::invalid_argument("model.channels: " + std::to_string(options.channels.size()) +
                                  " pooling stages are too many for input " +
                                  shape_string(input_shape));
    }
    h /= 2;
    w /= 2;
  }

  torch::nn::Sequential net;
  std::int64_t in_channels = input_shape[0];
  for (std::int64_t out_channels : options.channels) {
    // No conv bias: the BatchNorm right after subtracts any constant shift,
    // so a bias would be a parameter with no effect.
    net->push_back(torch::nn::Conv2d(
        torch::nn::Conv2dOptions(in_channels, out_channels, 3).padding(1).bias(false)));
    net->push_back(torch::nn::BatchNorm2d(out_channels));
    net->push_back(torch::nn::ReLU());
    net->push_back(torch::nn::MaxPool2d(2));
    in_channels = out_channels;
  }
  net->push_back(torch::nn::AdaptiveAvgPool2d(1));
  net->push_back(torch::nn::Flatten());
  net->push_back(torch::nn::Linear(in_channels, num_classes));
  return net;
}

class BeforeForwardImpl final : public torch::nn::Module {
 public:
  explicit BeforeForwardImpl(std::function<void(bool)> hook) : hook_(std::move(hook)) {}
  torch::Tensor forward(torch::Tensor x) {
    hook_(is_training());
    return x;
  }

 private:
  std::function<void(bool)> hook_;
};

}  // namespace

torch::nn::Sequential with_before_forward(const torch::nn::Sequential& model, std::function<void(bool)> hook) {
  torch::nn::Sequential out;
  out->push_back("before_forward", std::make_shared<BeforeForwardImpl>(std::move(hook)));
  const auto children = model->named_children();
  std::size_t i = 0;
  for (const torch::nn::AnyModule& layer : *model) out->push_back(children[i++].key(), layer);
  out->train(model->is_training());
  return out;
}

torch::nn::Sequential make_model(const ModelOptions& options,
                                 const std::vector<std::int64_t>& input_shape,
                                 std::int64_t num_classes) {
  if (input_shape.empty()) {
    throw std::invalid_argument("make_model: empty input shape");
  }
  for (std::int64_t d : input_shape) {
    if (d < 1) throw std::invalid_argument("make_model: bad input shape " + shape_string(input_shape));
  }
  if (num_classes < 1) {
    throw std::invalid_argument("make_model: num_classes must be positive, got " +
                                std::to_string(num_classes));
  }
  if (options.arch == "mlp") return make_mlp(options, input_shape, num_classes);
  if (options.arch == "cnn") return make_cnn(options, input_shape, num_classes);
  throw std::invalid_argument("model.arch must be mlp or cnn, got '" + options.arch + "'");
}

}  // namespace reglab::models
