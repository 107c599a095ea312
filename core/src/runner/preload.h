// runner/preload.h — getting the coordinator ready to fork trial workers.
//
// Workers are forked from the coordinator without exec, so LibTorch, the
// plugins and the raw data sets are loaded once and shared copy-on-write
// (a fresh exec spends about a second linking LibTorch's ~300 libraries).
// Forking is only safe while the coordinator has a single thread, so this
// also pins its intra-op threads to one: no OpenMP pool ever starts in it.
// No torch in this header.
#pragma once

#include <vector>

#include "config/config.h"

namespace reglab::runner {

void prepare_to_fork_workers(const std::vector<config::Json>& trial_configs);

}  // namespace reglab::runner
