// paradigms/tta_model.h — what the tta paradigm, the probe and the tta tests
// share about the model being adapted: the TtaModel handed to a method for a
// torch::nn::Sequential, and the source weights restored between segments.
#pragma once

#include <torch/nn/modules/container/sequential.h>
#include <torch/types.h>

#include <string>
#include <utility>
#include <vector>

#include "reglab/method.h"

namespace reglab::paradigms {

// A TtaModel over `model`: forward runs the Sequential (whichever copy it is
// given), clone makes a deep copy. The returned struct refers to the module
// `model` holds, which the caller keeps alive.
TtaModel sequential_tta_model(torch::nn::Sequential model);

// The parameters and buffers of a model when it was loaded, put back in place
// (same tensors, so a method's pointers stay valid) before each segment that
// starts from the source. restore() also leaves the model as loaded: eval
// mode, every parameter trainable, no gradients. A buffer a method has since
// left undefined (BatchNorm without running statistics) is skipped.
class SourceWeights {
 public:
  explicit SourceWeights(torch::nn::Module& model);
  void restore(torch::nn::Module& model) const;

 private:
  std::vector<std::pair<std::string, torch::Tensor>> params_, buffers_;
};

}  // namespace reglab::paradigms
