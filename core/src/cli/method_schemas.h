// cli/method_schemas.h — the bridge between the plugin registry and sweep
// validation (which knows nothing of plugins).
#pragma once

#include "config/schema.h"

namespace reglab::cli {

config::MethodLookup registry_lookup();
config::MethodNames registry_names();

}  // namespace reglab::cli
