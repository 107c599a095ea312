#include "paradigms/checkpoint.h"

#include <torch/nn/module.h>
#include <torch/optim/optimizer.h>
#include <torch/serialize.h>

namespace reglab::paradigms {

namespace fs = std::filesystem;

void save_checkpoint(const fs::path& file, torch::nn::Module& model, torch::optim::Optimizer& optimizer,
                     const StateDict& method_state, LoopPosition position) {
  torch::serialize::OutputArchive archive, model_archive, optim_archive, method_archive;
  model.save(model_archive);
  optimizer.save(optim_archive);
  for (const auto& [k, v] : method_state) method_archive.write(k, v);
  archive.write("model", model_archive);
  archive.write("optimizer", optim_archive);
  archive.write("method", method_archive);
  archive.write("next_epoch", torch::tensor(position.next_epoch));
  archive.write("step", torch::tensor(position.step));
  fs::path tmp = file;
  tmp += ".tmp";
  archive.save_to(tmp.string());
  fs::rename(tmp, file);
}

RestoredCheckpoint load_checkpoint(const fs::path& file, torch::nn::Module& model, torch::optim::Optimizer& optimizer) {
  torch::serialize::InputArchive archive, model_archive, optim_archive, method_archive;
  archive.load_from(file.string());
  archive.read("model", model_archive);
  archive.read("optimizer", optim_archive);
  archive.read("method", method_archive);
  model.load(model_archive);
  optimizer.load(optim_archive);
  RestoredCheckpoint out;
  for (const std::string& k : method_archive.keys()) {
    torch::Tensor t;
    method_archive.read(k, t);
    out.method_state[k] = t;
  }
  torch::Tensor e, s;
  archive.read("next_epoch", e);
  archive.read("step", s);
  out.position = {e.item<std::int64_t>(), s.item<std::int64_t>()};
  return out;
}

void load_model_weights(const fs::path& file, torch::nn::Module& model) {
  torch::serialize::InputArchive archive, model_archive;
  archive.load_from(file.string());
  archive.read("model", model_archive);
  model.load(model_archive);
}

LoopPosition resume_or_restart(const std::filesystem::path& file, torch::nn::Module& model,
                               torch::optim::Optimizer& optimizer, plugins::MethodHandle& method, Logger& log,
                               const std::function<void()>& restart) {
  if (!std::filesystem::exists(file)) return {};
  try {
    const RestoredCheckpoint restored = load_checkpoint(file, model, optimizer);
    method.load_state_dict(restored.method_state);
    log.info("resumed from " + file.string() + " at epoch " + std::to_string(restored.position.next_epoch + 1));
    return restored.position;
  } catch (const std::exception& ex) {
    log.warn("ignoring unreadable checkpoint " + file.string() + ": " + ex.what());
  }
  // Outside the handler: restart() replaces the model the failed load was
  // given, and may itself throw.
  restart();
  return {};
}

}  // namespace reglab::paradigms
