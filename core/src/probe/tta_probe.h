// probe/tta_probe.h — run a test-time adaptation method's hooks (tta_setup,
// tta_step) on a small model and inputs given as JSON.
//
// The model is a Sequential written layer by layer with its weights, so a
// method can be checked step by step against its official code on the same
// model: the response gives, after every step, the logits the method
// returned, how many samples drove the update, every parameter and buffer of
// the model, and the method's state. The method is set up as the tta
// paradigm sets it up (setup, then tta_setup on the source model in eval
// mode; a step with "reset": true restores the source weights in place and
// calls tta_setup again, as between corruptions). The format is documented
// in plugins/README.md ("Probing a tta method"); in short:
//
//   {"method": "tent", "paradigm": "tta", "dtype": "float32",
//    "model": [{"linear": {"weight": [[1, 0], [0, 1]], "bias": [0, 0]}},
//              {"batchnorm1d": {}}, {"relu": {}}, {"linear": {"weight": [[1, -1]]}}],
//    "held_out": [[..]], "batch_size": 4, "seed": 0,
//    "steps": [{"inputs": [[..], ..]}, {"inputs": [[..], ..], "reset": true}]}
//   -> {"method": .., "num_classes": 1, ..,
//       "steps": [{"logits": [[..]], "num_used": 4, "model": {"0.weight": .., ..}, "state": {..}}]}
//
// Everything in the request, the model included, is checked before any hook
// runs: a malformed request throws std::invalid_argument naming the key
// ("model[1].batchnorm1d.weight: ..."); an exception from the method surfaces
// as plugins::PluginError naming the method and the hook. CPU, calling thread.
#pragma once

#include <nlohmann/json_fwd.hpp>

#include "plugins/loader.h"

namespace reglab::probe {

// `request["paradigm"]` is "tta" or absent (then the plugin supports tta and
// neither classify nor mil); run_probe dispatches here.
nlohmann::json run_tta_probe(const nlohmann::json& request, const plugins::LoadedPlugin& plugin);

}  // namespace reglab::probe
