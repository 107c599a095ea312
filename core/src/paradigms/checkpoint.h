// paradigms/checkpoint.h — a trial's resumable checkpoint, shared by the
// paradigms: the model's parameters and buffers, the optimizer's state, the
// method's state_dict and where the loop stands, in one LibTorch archive.
// Written to a temporary file and renamed, so a crash mid-write never leaves
// a torn checkpoint. The archive's "model" entry alone is what a stage hands
// to the trials that start from it (init.from).
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>

#include "plugins/method_handle.h"
#include "reglab/method.h"

namespace torch::optim {
class Optimizer;
}  // namespace torch::optim

namespace reglab::paradigms {

struct LoopPosition {
  std::int64_t next_epoch = 0;  // the first epoch still to run
  std::int64_t step = 0;        // the global optimizer step reached
};

void save_checkpoint(const std::filesystem::path& file, torch::nn::Module& model, torch::optim::Optimizer& optimizer,
                     const StateDict& method_state, LoopPosition position);

struct RestoredCheckpoint {
  StateDict method_state;
  LoopPosition position;
};

// Loads model and optimizer in place; throws (c10::Error or std::exception)
// when the file is unreadable or does not fit them.
RestoredCheckpoint load_checkpoint(const std::filesystem::path& file, torch::nn::Module& model,
                                   torch::optim::Optimizer& optimizer);

// Where a paradigm's loop starts: from `file` when it exists and fits (the
// model, optimizer and method state loaded in place, the position logged),
// else from the beginning. An unreadable checkpoint is logged, `restart` is
// called to build a fresh model and optimizer, and the position is {0, 0}.
LoopPosition resume_or_restart(const std::filesystem::path& file, torch::nn::Module& model,
                               torch::optim::Optimizer& optimizer, plugins::MethodHandle& method, Logger& log,
                               const std::function<void()>& restart);

// Only the model's weights (a stage's final model); throws as load_checkpoint.
void load_model_weights(const std::filesystem::path& file, torch::nn::Module& model);

}  // namespace reglab::paradigms
