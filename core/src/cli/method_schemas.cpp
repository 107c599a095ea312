#include "cli/method_schemas.h"

#include "plugins/loader.h"

namespace reglab::cli {

config::MethodLookup registry_lookup() {
  return [](const std::string& name) -> std::optional<config::MethodSchema> {
    const plugins::LoadedPlugin* p = plugins::registry().find(name);
    if (p == nullptr) return std::nullopt;
    config::MethodSchema s;
    s.name = p->info->name;
    s.paradigms = p->info->paradigms;
    s.params.assign(p->info->params, p->info->params + p->info->num_params);
    return s;
  };
}

config::MethodNames registry_names() {
  return [] { return plugins::registry().names(); };
}

}  // namespace reglab::cli
