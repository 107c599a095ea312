// paradigms/device.h — the device a trial runs on.
#pragma once

#include <torch/types.h>

#include "config/config.h"

namespace reglab::paradigms {

// task.device of the trial's [task] table: "cpu" (the default) or "cuda".
// Throws std::runtime_error when CUDA is asked for and LibTorch sees no
// CUDA device, so the trial fails with that reason instead of a LibTorch
// error deep in the first forward pass.
torch::Device trial_device(const config::Json& task_table);

}  // namespace reglab::paradigms
