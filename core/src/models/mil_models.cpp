#include "models/mil_models.h"

#include <torch/nn/modules/activation.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/dropout.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/modules/pooling.h>
#include <torch/types.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <stdexcept>
#include <string>

namespace reglab::models {

namespace {

std::string shape_string(const std::vector<std::int64_t>& shape) {
  std::string out = "[";
  for (std::size_t i = 0; i < shape.size(); ++i) out += (i ? ", " : "") + std::to_string(shape[i]);
  return out + "]";
}

void check_options(const MilModelOptions& o, const std::vector<std::int64_t>& input_shape) {
  auto fail = [](const std::string& what) { throw std::invalid_argument("mil model: " + what); };
  if (input_shape.empty()) fail("empty input shape");
  for (std::int64_t d : input_shape)
    if (d < 1) fail("bad input shape " + shape_string(input_shape));
  if (o.encoder != "mlp" && o.encoder != "cnn") fail("model.arch must be mlp or cnn, got '" + o.encoder + "'");
  if (o.attention != "gated" && o.attention != "plain")
    fail("model.mil.attention must be gated or plain, got '" + o.attention + "'");
  if (o.hidden.empty()) fail("model.hidden must list at least one width (the last is the embedding size)");
  for (std::int64_t w : o.hidden)
    if (w < 1) fail("model.hidden entries must be positive, got " + shape_string(o.hidden));
  if (o.heads < 1 || o.hidden.back() % o.heads != 0)
    fail("model.mil.heads = " + std::to_string(o.heads) + " must divide the embedding size " +
         std::to_string(o.hidden.back()));
  if (o.attention_hidden < 1) fail("model.mil.attention_hidden must be positive");
  if (o.num_classes < 2) fail("needs at least 2 classes");
  if (!(o.dropout >= 0.0 && o.dropout < 1.0)) fail("model.dropout must be in [0, 1)");
}

void add_dense(torch::nn::Sequential& net, std::int64_t width, const MilModelOptions& o, bool bias) {
  for (std::int64_t w : o.hidden) {
    net->push_back(torch::nn::Linear(torch::nn::LinearOptions(width, w).bias(bias)));
    net->push_back(torch::nn::ReLU());
    if (o.dropout > 0.0) net->push_back(torch::nn::Dropout(o.dropout));
    width = w;
  }
}

torch::nn::Sequential make_encoder(const MilModelOptions& o, const std::vector<std::int64_t>& input_shape) {
  torch::nn::Sequential net;
  if (o.encoder == "mlp") {
    std::int64_t width = 1;
    for (std::int64_t d : input_shape) width *= d;
    net->push_back(torch::nn::Flatten());
    // Bias-free, as the AEM code's instance projection (DimReduction).
    add_dense(net, width, o, /*bias=*/false);
    return net;
  }
  if (input_shape.size() != 3)
    throw std::invalid_argument("mil model: model.arch = cnn needs image instances [C, H, W], got " +
                                shape_string(input_shape));
  if (o.channels.empty()) throw std::invalid_argument("mil model: model.channels must list at least one count");
  std::int64_t c = input_shape[0], h = input_shape[1], w = input_shape[2];
  for (std::int64_t out : o.channels) {
    if (out < 1) throw std::invalid_argument("mil model: model.channels entries must be positive");
    // A 5×5 valid convolution then a 2×2 pool needs at least 6×6 coming in.
    if (h < 6 || w < 6)
      throw std::invalid_argument("mil model: model.channels: " + std::to_string(o.channels.size()) +
                                  " convolution stages are too many for instances " + shape_string(input_shape));
    net->push_back(torch::nn::Conv2d(torch::nn::Conv2dOptions(c, out, 5)));
    net->push_back(torch::nn::ReLU());
    net->push_back(torch::nn::MaxPool2d(2));
    c = out;
    h = (h - 4) / 2;
    w = (w - 4) / 2;
  }
  net->push_back(torch::nn::Flatten());
  add_dense(net, c * h * w, o, /*bias=*/true);
  return net;
}

// nn.Linear's default initialisation: U(−1/√fan_in, 1/√fan_in) for weight and bias.
torch::Tensor uniform(std::vector<std::int64_t> shape, std::int64_t fan_in) {
  const double bound = 1.0 / std::sqrt(static_cast<double>(fan_in));
  return torch::empty(shape).uniform_(-bound, bound);
}

}  // namespace

AttentionMilImpl::AttentionMilImpl(const MilModelOptions& o, const std::vector<std::int64_t>& input_shape) {
  check_options(o, input_shape);
  embedding_ = o.hidden.back();
  heads_ = o.heads;
  gated_ = o.attention == "gated";
  const std::int64_t slice = embedding_ / heads_, d = o.attention_hidden;
  encoder_ = register_module("encoder", make_encoder(o, input_shape));
  v_weight_ = register_parameter("attention_v_weight", uniform({heads_, slice, d}, slice));
  v_bias_ = register_parameter("attention_v_bias", uniform({heads_, d}, slice));
  if (gated_) {
    u_weight_ = register_parameter("attention_u_weight", uniform({heads_, slice, d}, slice));
    u_bias_ = register_parameter("attention_u_bias", uniform({heads_, d}, slice));
  }
  w_weight_ = register_parameter("attention_w_weight", uniform({heads_, d}, d));
  w_bias_ = register_parameter("attention_w_bias", uniform({heads_}, d));
  classifier_ = register_module("classifier", torch::nn::Linear(embedding_, o.num_classes));
}

torch::Tensor AttentionMilImpl::attention_scores(const torch::Tensor& e) const {
  const std::int64_t b = e.size(0), n = e.size(1);
  // [B, N, L] -> [H, B·N, L/H]: every head's slices as one batch of a bmm.
  const torch::Tensor slices = e.reshape({b * n, heads_, embedding_ / heads_}).transpose(0, 1);
  torch::Tensor hidden = torch::tanh(torch::baddbmm(v_bias_.unsqueeze(1), slices, v_weight_));
  if (gated_) hidden = hidden * torch::sigmoid(torch::baddbmm(u_bias_.unsqueeze(1), slices, u_weight_));
  const torch::Tensor scores = torch::bmm(hidden, w_weight_.unsqueeze(2)).squeeze(2) + w_bias_.unsqueeze(1);
  return scores.view({heads_, b, n}).permute({1, 0, 2});
}

MilOutput AttentionMilImpl::forward(const torch::Tensor& instances, const std::vector<std::int64_t>& bag_sizes) {
  if (bag_sizes.empty()) throw std::invalid_argument("mil model: no bags given");
  std::int64_t total = 0, longest = 0;
  for (std::int64_t s : bag_sizes) {
    if (s < 1) throw std::invalid_argument("mil model: a bag has " + std::to_string(s) + " instances");
    total += s;
    longest = std::max(longest, s);
  }
  if (!instances.defined() || instances.dim() < 1 || instances.size(0) != total)
    throw std::invalid_argument("mil model: expected " + std::to_string(total) + " instances, got " +
                                (instances.defined() ? shape_string(instances.sizes().vec()) : "none"));
  const std::int64_t b = static_cast<std::int64_t>(bag_sizes.size());
  const torch::Tensor flat = encoder_->forward(instances);  // [Σ sizes, L]
  const auto bool_options = torch::TensorOptions().dtype(torch::kBool).device(flat.device());

  MilOutput out;
  torch::Tensor e;
  bool padded = false;
  if (b == 1) {
    e = flat.unsqueeze(0);
    out.mask = torch::ones({1, total}, bool_options);
  } else {
    // Row j of bag i goes to position i·N_max + j of a zero-filled [B·N_max, L].
    std::vector<std::int64_t> positions;
    positions.reserve(static_cast<std::size_t>(total));
    for (std::int64_t i = 0; i < b; ++i)
      for (std::int64_t j = 0; j < bag_sizes[static_cast<std::size_t>(i)]; ++j) positions.push_back(i * longest + j);
    const torch::Tensor at = torch::tensor(positions, torch::kInt64).to(flat.device());
    e = torch::zeros({b * longest, embedding_}, flat.options()).index_copy(0, at, flat).view({b, longest, embedding_});
    out.mask = torch::zeros({b * longest}, bool_options).index_fill(0, at, true).view({b, longest});
    padded = total != b * longest;
  }
  out.attention_logits = attention_scores(e);  // [B, H, N]
  if (padded)
    out.attention_logits =
        out.attention_logits.masked_fill(out.mask.logical_not().unsqueeze(1), -std::numeric_limits<double>::infinity());
  out.attention = torch::softmax(out.attention_logits, 2);
  const std::int64_t n = e.size(1);
  // z[b, h] = Σ_n a[b, h, n] · e[b, n, slice h]
  const torch::Tensor per_head = e.view({b, n, heads_, embedding_ / heads_}).permute({0, 2, 1, 3});
  const torch::Tensor pooled = torch::matmul(out.attention.unsqueeze(2), per_head).reshape({b, embedding_});
  out.logits = classifier_->forward(pooled);
  return out;
}

}  // namespace reglab::models
