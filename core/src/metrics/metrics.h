// metrics/metrics.h — evaluation metrics for classification, from logits.
//
// All take logits [N, K] (any float dtype) and labels [N] int64 and return
// plain doubles; N = 0 returns NaN. Computed in float64.
#pragma once

#include <torch/types.h>

#include <cstdint>

namespace reglab::metrics {

// Fraction of argmax(logits) == labels.
double accuracy(const torch::Tensor& logits, const torch::Tensor& labels);

// Mean negative log-likelihood, −mean log softmax(z)[y] (nats).
double nll(const torch::Tensor& logits, const torch::Tensor& labels);

// Expected calibration error with `bins` equal-width confidence bins over
// (0, 1] (bin b holds confidences in (b/B, (b+1)/B]), confidence = max
// softmax probability: Σ_b (n_b/N)·|acc_b − conf_b|.
double ece(const torch::Tensor& logits, const torch::Tensor& labels, std::int64_t bins = 15);

// Area under the risk–coverage curve with max-softmax confidence as the
// score (Geifman & El-Yaniv): sort by confidence descending, risk at coverage
// i/N is the error rate of the i most confident samples, AURC = mean over
// i = 1..N of those risks.
double aurc(const torch::Tensor& logits, const torch::Tensor& labels);

// Mean Shannon entropy of softmax(z) in nats.
double mean_entropy(const torch::Tensor& logits);

}  // namespace reglab::metrics
