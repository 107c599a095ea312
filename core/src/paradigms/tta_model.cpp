#include "paradigms/tta_model.h"

#include <torch/nn/module.h>
#include <torch/utils.h>

#include <memory>

namespace reglab::paradigms {

TtaModel sequential_tta_model(torch::nn::Sequential model) {
  return TtaModel{*model,
                  [](torch::nn::Module& m, const torch::Tensor& x) {
                    return dynamic_cast<torch::nn::SequentialImpl&>(m).forward(x);
                  },
                  [model]() { return std::dynamic_pointer_cast<torch::nn::Module>(model->clone()); }};
}

SourceWeights::SourceWeights(torch::nn::Module& model) {
  for (const auto& p : model.named_parameters()) params_.emplace_back(p.key(), p.value().detach().clone());
  for (const auto& b : model.named_buffers())
    if (b.value().defined()) buffers_.emplace_back(b.key(), b.value().detach().clone());
}

void SourceWeights::restore(torch::nn::Module& model) const {
  torch::NoGradGuard no_grad;
  auto params = model.named_parameters();
  for (const auto& [name, value] : params_) {
    torch::Tensor& p = params[name];
    p.copy_(value);
    p.mutable_grad() = torch::Tensor();
    p.set_requires_grad(true);
  }
  auto buffers = model.named_buffers();
  for (const auto& [name, value] : buffers_) {
    const torch::Tensor* live = buffers.find(name);
    if (live != nullptr && live->defined()) live->copy_(value);
  }
  model.eval();
}

}  // namespace reglab::paradigms
