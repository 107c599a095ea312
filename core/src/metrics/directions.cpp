// metrics/directions.cpp — the table of the core's metric directions.
//
// The reasons for the less obvious entries are beside them. "none" means the
// value is a diagnostic with no better side: ranking runs by it would reward
// a setting, not a method.
#include "metrics/directions.h"

#include <stdexcept>
#include <string>

namespace reglab::metrics {
namespace {

using D = MetricDirection;

struct Exact {
  std::string_view key;
  D direction;
};

// Keys recorded as they are.
constexpr Exact kExact[] = {
    // classify (and mil, which shares the train./test. names)
    {"train.loss", D::kLower},  // the training objective, regulariser terms included
    // Accuracy on the training labels as used, noisy ones included: it rises both by
    // fitting the clean labels (good) and by memorising the flipped ones (bad), so it
    // is a diagnostic, not a score.
    {"train.acc", D::kNone},
    {"train.clean_acc", D::kHigher},  // the samples whose label is right
    // Agreement with the *flipped* (wrong) label on the flipped samples: how much of
    // the noise the model memorised. A noise-robust method keeps it low.
    {"train.flipped_acc", D::kLower},
    {"train.flipped_true_acc", D::kHigher},  // the flipped samples' true labels recovered
    {"val.acc", D::kHigher},
    {"val.nll", D::kLower},
    {"test.acc", D::kHigher},
    {"test.nll", D::kLower},
    {"test.ece", D::kLower},
    {"test.aurc", D::kLower},
    {"test.auc", D::kHigher},
    {"test.instance_auc", D::kHigher},
    {"test.attention_entropy", D::kNone},  // how spread the attention is: a property, not a score
    {"test.attention_max", D::kNone},
    {"lr", D::kNone},
    // sft
    {"sft.loss", D::kLower},
    // rlvr training
    {"rlvr.reward", D::kHigher},
    {"rlvr.label_acc", D::kHigher},      // the (possibly label-free) reward's labels that are right
    {"rlvr.invalid_frac", D::kLower},    // answers that could not be parsed: fewer is better
    {"rlvr.length", D::kNone},
    {"rlvr.distinct_answers", D::kNone},  // diversity, wanted or not depending on the method
    {"rlvr.clip_frac", D::kNone},
    {"rlvr.kl", D::kLower},               // drift from the reference policy
    {"rlvr.entropy", D::kNone},
    // The policy-gradient surrogate: advantage-weighted, about zero by construction;
    // its value says nothing about the policy's quality.
    {"rlvr.loss", D::kNone},
    {"rlvr.grad_norm", D::kNone},
    {"rlvr.replaced_rows", D::kNone},
    // tta, over the whole stream
    {"tta.err", D::kLower},
    {"tta.clean_err", D::kLower},
    {"tta.clean_err_source", D::kLower},
    {"tta.segment_err", D::kLower},
    {"tta.used_frac", D::kNone},  // the share of samples a method adapted on: a setting
    {"tta.auroc", D::kHigher},
    {"tta.known_acc", D::kHigher},
    // Throughput and timings depend on the machine and its load, not only the method.
    {"tta.samples_per_s", D::kNone},
    {"time.startup_s", D::kNone},
    {"time.train_s", D::kNone},
    {"time.epoch_s", D::kNone},
    {"time.eval_s", D::kNone},
    {"time.step_s", D::kNone},
    {"time.tta_s", D::kNone},
};

// "<prefix><name>" with one dot-free name (a corruption).
constexpr Exact kPerCorruption[] = {
    {"tta.err.", D::kLower},        {"tta.clean_err.", D::kLower}, {"tta.used_frac.", D::kNone},
    {"tta.auroc.", D::kHigher},     {"tta.known_acc.", D::kHigher},
};

// "eval.<domain>.<score>" (sft and rlvr evaluations, policy_task.cpp): scores
// by exact name, then by name prefix (pass_at_<k>, maj_at_<n>).
constexpr Exact kEvalScores[] = {
    {"greedy_acc", D::kHigher},     {"entropy", D::kNone},
    {"length", D::kNone},           {"invalid_frac", D::kLower},
    {"distinct_answers", D::kNone}, {"distinct_scratchpads", D::kNone},
};
constexpr Exact kEvalScorePrefixes[] = {{"pass_at_", D::kHigher}, {"maj_at_", D::kHigher}};

bool starts_with(std::string_view s, std::string_view prefix) { return s.substr(0, prefix.size()) == prefix; }

bool one_segment(std::string_view s) { return !s.empty() && s.find('.') == std::string_view::npos; }

}  // namespace

std::optional<MetricDirection> core_direction(std::string_view key) {
  for (const Exact& e : kExact)
    if (e.key == key) return e.direction;
  for (const Exact& f : kPerCorruption)
    if (starts_with(key, f.key) && one_segment(key.substr(f.key.size()))) return f.direction;
  constexpr std::string_view kEval = "eval.";
  if (starts_with(key, kEval)) {
    const std::string_view rest = key.substr(kEval.size());
    const auto dot = rest.find('.');
    if (dot == std::string_view::npos || dot == 0) return std::nullopt;
    const std::string_view score = rest.substr(dot + 1);
    if (!one_segment(score)) return std::nullopt;
    for (const Exact& e : kEvalScores)
      if (e.key == score) return e.direction;
    for (const Exact& e : kEvalScorePrefixes)
      if (starts_with(score, e.key) && score.size() > e.key.size()) return e.direction;
  }
  return std::nullopt;
}

MetricDirection require_core_direction(std::string_view key) {
  if (const auto d = core_direction(key)) return *d;
  throw std::logic_error("core metric '" + std::string(key) +
                         "' has no direction in metrics/directions.cpp; add it there (higher, lower or none)");
}

}  // namespace reglab::metrics
