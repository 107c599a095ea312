// reglab/tta.h — what test-time methods share: BatchNorm switches, entropy.
//
// Tent, EATA, CoTTA, the open-set filter and SFDA's BatchNorm variant all
// configure a model the same way their official code does: BatchNorm uses
// the statistics of the batch it sees, in train and eval mode alike (the
// Python code sets track_running_stats = False and running_mean/var = None),
// and only BatchNorm's affine weight and bias adapt. Header-only; a plugin
// that includes it links nothing more.
//
// The switch to batch statistics keeps the registered running buffers (only
// the tensors the forward reads are cleared), so a paradigm that restores a
// model's buffers in place still can. A model in that state cannot be copied
// with Cloneable::clone (the copy's reset() registers no running buffers);
// use_running_statistics() undoes the switch first.
#pragma once

#include <torch/nn/module.h>
#include <torch/nn/modules/batchnorm.h>
#include <torch/types.h>

#include <vector>

namespace reglab::tta {

// f(bn) for every BatchNorm1d/2d/3d of `model` (itself included), parents
// before children.
template <class F>
void for_each_batch_norm(torch::nn::Module& model, F&& f) {
  auto visit = [&](torch::nn::Module& m) {
    if (auto* b1 = dynamic_cast<torch::nn::BatchNorm1dImpl*>(&m)) f(*b1);
    else if (auto* b2 = dynamic_cast<torch::nn::BatchNorm2dImpl*>(&m)) f(*b2);
    else if (auto* b3 = dynamic_cast<torch::nn::BatchNorm3dImpl*>(&m)) f(*b3);
  };
  // The model itself apart: modules(include_self = true) needs it owned by a
  // shared_ptr, which the caller's model need not be.
  visit(model);
  for (const auto& m : model.modules(/*include_self=*/false)) visit(*m);
}

inline bool has_batch_norm(torch::nn::Module& model) {
  bool found = false;
  for_each_batch_norm(model, [&](auto&) { found = true; });
  return found;
}

// Batch mean and biased variance in every mode; running statistics neither
// read nor updated.
inline void use_batch_statistics(torch::nn::Module& model) {
  for_each_batch_norm(model, [](auto& bn) {
    bn.options.track_running_stats(false);
    bn.running_mean = torch::Tensor();
    bn.running_var = torch::Tensor();
    bn.num_batches_tracked = torch::Tensor();
  });
}

// Undoes use_batch_statistics: the forward reads the registered running
// buffers again (and clone() works).
inline void use_running_statistics(torch::nn::Module& model) {
  for_each_batch_norm(model, [](auto& bn) {
    if (bn.options.track_running_stats()) return;
    auto buffers = bn.named_buffers(/*recurse=*/false);
    const torch::Tensor* mean = buffers.find("running_mean");
    if (mean == nullptr || !mean->defined()) return;
    bn.options.track_running_stats(true);
    bn.running_mean = *mean;
    bn.running_var = buffers["running_var"];
    bn.num_batches_tracked = buffers["num_batches_tracked"];
  });
}

// Freezes every parameter of `model` except BatchNorm's affine weights and
// biases, which it returns (weight then bias, BatchNorms in module order)
// with requires_grad on and no gradient.
inline std::vector<torch::Tensor> adapt_batch_norm_affine(torch::nn::Module& model) {
  for (auto& p : model.parameters()) p.requires_grad_(false);
  std::vector<torch::Tensor> params;
  for_each_batch_norm(model, [&](auto& bn) {
    for (torch::Tensor* p : {&bn.weight, &bn.bias}) {
      if (!p->defined()) continue;
      p->requires_grad_(true);
      p->mutable_grad() = torch::Tensor();
      params.push_back(*p);
    }
  });
  return params;
}

// H(softmax(z)) of each row of logits z [B, K], differentiable.
inline torch::Tensor softmax_entropy(const torch::Tensor& logits) {
  return -(logits.softmax(1) * logits.log_softmax(1)).sum(1);
}

}  // namespace reglab::tta
