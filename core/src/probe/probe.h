// probe/probe.h — run a method's training hooks on tensors given as JSON.
//
// The probe is how a method is checked against numbers computed elsewhere
// (the paper's equations by hand, the official PyTorch code): it builds the
// logits as a leaf tensor, calls the method's hooks exactly as the classify
// paradigm does, and returns the loss, the gradient of the loss with respect
// to the logits, and the method's state after every step. No model, no data
// set, no optimizer: only the method. The request format is documented in
// plugins/README.md ("The probe"); in short:
//
//   {"method": "label_smoothing", "params": {"epsilon": 0.2}, "dtype": "float64",
//    "steps": [{"logits": [[0, 1.0986]], "labels": [1]}]}
//   -> {"method": ..., "version": ..., "steps": [{"loss": .., "grad_logits": [[..]], "state": {}}]}
//
// For the mil paradigm ("paradigm": "mil", the default for a method that
// supports mil but not classify) each step also gives "attention_logits"
// [B, H, N] (and optionally "attention_mask" [B, N] of 0/1); they become a
// second leaf, and the step's result adds "grad_attention_logits".
//
// For the tta paradigm ("paradigm": "tta", the default for a method that
// supports tta but neither classify nor mil) the request gives a model and
// inputs instead; see probe/tta_probe.h.
//
// The whole request is validated before any training hook runs (state entries
// after setup(), against the method's own state_dict()). A malformed request
// (missing or ragged logits, a label outside [0, K), an unknown key, method or
// parameter, a bad state entry) throws std::invalid_argument naming the key;
// an exception from the method itself surfaces as plugins::PluginError naming
// the method and the hook. Runs on the CPU, on the calling thread; enables
// autograd for its own duration whatever the caller's mode.
#pragma once

#include <nlohmann/json_fwd.hpp>

#include "plugins/loader.h"

namespace reglab::probe {

// Looks the method up by name in plugins::registry().
nlohmann::json run_probe(const nlohmann::json& request);

// The same with the plugin given; `request["method"]`, if present, must match
// its name.
nlohmann::json run_probe(const nlohmann::json& request, const plugins::LoadedPlugin& plugin);

}  // namespace reglab::probe
