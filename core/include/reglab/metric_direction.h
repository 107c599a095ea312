// reglab/metric_direction.h — which way a metric is better.
//
// Declared by whoever records a metric (MetricSink::declare in method.h), kept
// by the store beside the values (table metric_directions) and used by every
// ranking: compare's "best", the "best" summaries, reports and the dashboard.
// Nothing downstream guesses a direction from a metric's name. No torch, so
// the store and the query commands include it too.
#pragma once

#include <optional>
#include <string_view>

namespace reglab {

//   kHigher  larger values are better (accuracy, AUC, pass@k)
//   kLower   smaller values are better (loss, NLL, ECE, error rates)
//   kNone    no "better": fractions, counts, entropies, temperatures, timings
enum class MetricDirection { kHigher, kLower, kNone };

// "higher", "lower" or "none": the words the store and the query commands use.
inline const char* to_string(MetricDirection direction) {
  switch (direction) {
    case MetricDirection::kHigher: return "higher";
    case MetricDirection::kLower: return "lower";
    case MetricDirection::kNone: return "none";
  }
  return "none";
}

// The inverse of to_string; nullopt for any other word.
inline std::optional<MetricDirection> metric_direction_from_string(std::string_view word) {
  if (word == "higher") return MetricDirection::kHigher;
  if (word == "lower") return MetricDirection::kLower;
  if (word == "none") return MetricDirection::kNone;
  return std::nullopt;
}

}  // namespace reglab
