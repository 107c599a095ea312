// metrics/auc.h — area under the ROC curve, and summaries of MIL attention.
//
// roc_auc is the probability that a random positive scores above a random
// negative, ties counting one half (the Mann–Whitney statistic; what
// sklearn.metrics.roc_auc_score computes). Scores may be any float dtype;
// labels are 0/1 (int or bool). Computed in float64 on the CPU. NaN when
// there are no positives or no negatives; NaN scores are an error.
//
// summarize_attention takes attention weights [B, H, N] (rows over N sum to
// one on the valid entries) and a validity mask [B, N] (true = a real
// instance, false = padding; an undefined mask = all valid) and returns,
// averaged over bags and heads, the Shannon entropy −Σ a log a (nats, 0·log 0
// = 0) and the largest weight of each row. Padding entries must hold weight
// zero. Empty input gives NaN.
#pragma once

#include <torch/types.h>

namespace reglab::metrics {

double roc_auc(const torch::Tensor& scores, const torch::Tensor& labels);

struct AttentionSummary {
  double mean_entropy = 0;
  double mean_max_weight = 0;
};

AttentionSummary summarize_attention(const torch::Tensor& weights, const torch::Tensor& mask);

}  // namespace reglab::metrics
