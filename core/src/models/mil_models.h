// models/mil_models.h — attention-based multiple-instance models.
//
// AttentionMil maps the instances of one or several bags to bag logits
// through three parts (Ilse, Tomczak, Welling 2018, "Attention-based Deep
// Multiple Instance Learning"):
//
//   encoder     every instance to an embedding h_n ∈ R^L
//     mlp: flatten, then per width w of `hidden` Linear(·, w, no bias) + ReLU
//          (+ dropout); one width is the AEM code's DimReduction h = ReLU(W x).
//     cnn: per channel count c of `channels` Conv2d(·, c, 5×5) + ReLU +
//          MaxPool 2×2, flatten, then per width Linear(·, w) + ReLU (+ dropout);
//          channels [20, 50], hidden [500] is the MNIST-bags LeNet.
//     L is the last width of `hidden`.
//   attention   H heads; head h sees its slice h_n^(h) ∈ R^(L/H) (H = 1: all of
//               h_n) and scores it with its own network of hidden size D:
//     gated: A_hn = w_hᵀ(tanh(V_h h_n^(h) + b_V) ⊙ sigmoid(U_h h_n^(h) + b_U)) + b_w
//     plain: A_hn = w_hᵀ tanh(V_h h_n^(h) + b_V) + b_w
//     a_h = softmax_n(A_h) over the bag's instances; z^(h) = Σ_n a_hn h_n^(h).
//   classifier  Linear(L, K) on z = concat_h z^(h).
//
// With H = 1 this is ABMIL exactly (gated or plain); with H > 1 each head
// pools its own slice, so H must divide L. Parameters are initialised as
// torch's nn.Linear does (uniform ±1/√fan_in), from the global generator.
//
// forward() takes the instances of B bags one after the other ([Σ sizes,
// ...]) and the bag sizes (each ≥ 1). Bags of different sizes are padded to
// the largest: `mask` marks the real entries, padded attention logits are
// −inf and their weights 0, so each bag's result is what it would be alone.
// Throws std::invalid_argument on bad options or input shapes.
#pragma once

#include <torch/nn/module.h>
#include <torch/nn/modules/container/sequential.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/pimpl.h>
#include <torch/types.h>

#include <cstdint>
#include <string>
#include <vector>

namespace reglab::models {

struct MilModelOptions {
  std::string encoder = "mlp";                    // mlp | cnn
  std::vector<std::int64_t> hidden = {256};       // dense widths; the last is L
  std::vector<std::int64_t> channels = {32, 64};  // cnn only
  double dropout = 0.0;                           // after each dense ReLU of the encoder
  std::string attention = "gated";                // gated | plain
  std::int64_t heads = 1;                         // H, divides L
  std::int64_t attention_hidden = 128;            // D
  std::int64_t num_classes = 2;                   // K
};

struct MilOutput {
  torch::Tensor logits;            // [B, K]
  torch::Tensor attention_logits;  // [B, H, N_max], −inf at padding
  torch::Tensor attention;         // [B, H, N_max], softmax over the bag's instances, 0 at padding
  torch::Tensor mask;              // bool [B, N_max], true at real instances
};

class AttentionMilImpl : public torch::nn::Module {
 public:
  AttentionMilImpl(const MilModelOptions& options, const std::vector<std::int64_t>& input_shape);

  MilOutput forward(const torch::Tensor& instances, const std::vector<std::int64_t>& bag_sizes);

  std::int64_t embedding_size() const { return embedding_; }
  std::int64_t heads() const { return heads_; }

 private:
  torch::Tensor attention_scores(const torch::Tensor& embeddings) const;  // [B, N, L] -> [B, H, N]

  std::int64_t embedding_ = 0;
  std::int64_t heads_ = 1;
  bool gated_ = true;
  torch::nn::Sequential encoder_{nullptr};
  // Head h's V_h is v_weight_[h] ([L/H, D]), and so on: one batched matmul
  // serves every head.
  torch::Tensor v_weight_, v_bias_, u_weight_, u_bias_, w_weight_, w_bias_;
  torch::nn::Linear classifier_{nullptr};
};
TORCH_MODULE(AttentionMil);

}  // namespace reglab::models
