#include "runner/preload.h"

#include <ATen/Parallel.h>

#include "data/dataset.h"
#include "paradigms/classify.h"

namespace reglab::runner {

void prepare_to_fork_workers(const std::vector<config::Json>& trial_configs) {
  at::set_num_threads(1);
  for (const config::Json& cfg : trial_configs) {
    if (!cfg.contains("data") || !cfg.contains("task")) continue;
    const std::string paradigm = cfg["task"].value("paradigm", std::string("classify"));
    if (paradigm != "classify" && paradigm != "mil" && paradigm != "tta") continue;
    data::preload(paradigms::data_options_from(cfg["data"]));
  }
}

}  // namespace reglab::runner
