// metrics/directions.h — the direction of every metric key the core records.
//
// One table for the whole core: the paradigms declare each of their keys from
// it when they record (runner::MetricRecorder::record_core), and the store's
// schema migration to version 4 back-fills the directions of the core's keys
// in databases written before metrics declared their directions. Plugin keys
// are never in it: a plugin declares its own (MetricSink::declare).
//
// A key is either exact ("test.acc") or belongs to a family: one per
// corruption ("tta.err.<corruption>") or per evaluation domain and score
// ("eval.<domain>.pass_at_<k>"); a family member takes the family's direction.
// No torch (the store links this file).
#pragma once

#include <optional>
#include <string_view>

#include "reglab/metric_direction.h"

namespace reglab::metrics {

// The core's direction for `key`; nullopt when the key is not one the core
// records (a plugin's metric, or a typo).
std::optional<MetricDirection> core_direction(std::string_view key);

// Like core_direction, but a key missing from the table is a programming
// error of the core: std::logic_error naming the key, so a new core metric
// cannot be recorded without a direction.
MetricDirection require_core_direction(std::string_view key);

}  // namespace reglab::metrics
