#include "paradigms/checkpoint.h"

#include <torch/nn/module.h>
#include <torch/optim/optimizer.h>
#include <torch/serialize.h>

#include <map>
#include <stdexcept>
#include <string>
#include <vector>

namespace reglab::paradigms {

namespace fs = std::filesystem;

namespace {

std::string shape_text(c10::IntArrayRef sizes) {
  std::string out = "[";
  for (std::size_t i = 0; i < sizes.size(); ++i) out += (i ? ", " : "") + std::to_string(sizes[i]);
  return out + "]";
}

// LibTorch's Module::load replaces each tensor's storage with the archive's,
// shape included, so a checkpoint of another architecture would load
// without a word. Every tensor's shape is checked first.
void load_model_checked(torch::serialize::InputArchive& model_archive, torch::nn::Module& model) {
  std::map<std::string, std::vector<std::int64_t>> expected;
  for (const auto& p : model.named_parameters()) expected[p.key()] = p.value().sizes().vec();
  for (const auto& b : model.named_buffers())
    if (b.value().defined()) expected[b.key()] = b.value().sizes().vec();
  model.load(model_archive);
  for (const auto& p : model.named_parameters()) {
    const auto& want = expected.at(p.key());
    if (p.value().sizes().vec() != want)
      throw std::runtime_error("parameter '" + p.key() + "' has shape " + shape_text(p.value().sizes()) +
                               " in the checkpoint, the model expects " + shape_text(want));
  }
  for (const auto& b : model.named_buffers()) {
    const auto it = expected.find(b.key());
    if (b.value().defined() && it != expected.end() && b.value().sizes().vec() != it->second)
      throw std::runtime_error("buffer '" + b.key() + "' has shape " + shape_text(b.value().sizes()) +
                               " in the checkpoint, the model expects " + shape_text(it->second));
  }
}

}  // namespace


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
  load_model_checked(model_archive, model);
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
  load_model_checked(model_archive, model);
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
