#include "paradigms/device.h"

#include <torch/cuda.h>

#include <stdexcept>
#include <string>

namespace reglab::paradigms {

torch::Device trial_device(const config::Json& task) {
  const std::string name = task.value("device", std::string("cpu"));
  if (name == "cuda" && !torch::cuda::is_available())
    throw std::runtime_error("task.device = \"cuda\" but LibTorch sees no CUDA device");
  return name == "cuda" ? torch::Device(torch::kCUDA) : torch::Device(torch::kCPU);
}

}  // namespace reglab::paradigms
