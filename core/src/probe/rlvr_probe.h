// probe/rlvr_probe.h — `reglab probe` for rlvr methods: rewards from groups
// of answers and the policy loss of given log-probs, masks and advantages,
// without a policy or sampling. The request format is in plugins/README.md
// ("Probing an rlvr method"). Throws std::invalid_argument("probe request:
// ...") on a malformed request; hooks' errors come out as PluginError.
#pragma once

#include <nlohmann/json_fwd.hpp>

#include "plugins/loader.h"

namespace reglab::probe {

nlohmann::json run_rlvr_probe(const nlohmann::json& request, const plugins::LoadedPlugin& plugin);

}  // namespace reglab::probe
