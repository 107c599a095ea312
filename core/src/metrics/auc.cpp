#include "metrics/auc.h"

#include <torch/types.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <numeric>
#include <stdexcept>
#include <string>
#include <vector>

namespace reglab::metrics {

namespace {
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
}  // namespace

double roc_auc(const torch::Tensor& scores, const torch::Tensor& labels) {
  if (!scores.defined() || !labels.defined() || scores.dim() != 1 || labels.dim() != 1 ||
      scores.size(0) != labels.size(0))
    throw std::invalid_argument("roc_auc: scores and labels must both be [N]");
  const torch::Tensor s = scores.detach().to(torch::kCPU, torch::kFloat64).contiguous();
  const torch::Tensor y = labels.detach().to(torch::kCPU, torch::kInt64).contiguous();
  const std::int64_t n = s.size(0);
  const double* sv = s.data_ptr<double>();
  const std::int64_t* yv = y.data_ptr<std::int64_t>();
  std::int64_t positives = 0;
  for (std::int64_t i = 0; i < n; ++i) {
    if (std::isnan(sv[i])) throw std::invalid_argument("roc_auc: score " + std::to_string(i) + " is NaN");
    if (yv[i] != 0 && yv[i] != 1)
      throw std::invalid_argument("roc_auc: labels must be 0 or 1, got " + std::to_string(yv[i]));
    positives += yv[i];
  }
  const std::int64_t negatives = n - positives;
  if (positives == 0 || negatives == 0) return kNaN;

  // Sum of the positives' ranks (1-based), tied scores sharing their mean rank.
  std::vector<std::int64_t> order(static_cast<std::size_t>(n));
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(), [&](std::int64_t a, std::int64_t b) { return sv[a] < sv[b]; });
  double positive_rank_sum = 0;
  for (std::int64_t i = 0; i < n;) {
    std::int64_t j = i;
    std::int64_t tied_positives = 0;
    while (j < n && sv[order[static_cast<std::size_t>(j)]] == sv[order[static_cast<std::size_t>(i)]]) {
      tied_positives += yv[order[static_cast<std::size_t>(j)]];
      ++j;
    }
    const double mean_rank = 0.5 * static_cast<double>(i + 1 + j);  // ranks i+1 .. j
    positive_rank_sum += mean_rank * static_cast<double>(tied_positives);
    i = j;
  }
  const double p = static_cast<double>(positives);
  return (positive_rank_sum - p * (p + 1.0) / 2.0) / (p * static_cast<double>(negatives));
}

AttentionSummary summarize_attention(const torch::Tensor& weights, const torch::Tensor& mask) {
  if (!weights.defined() || weights.dim() != 3)
    throw std::invalid_argument("summarize_attention: weights must be [B, H, N]");
  const torch::Tensor a = weights.detach().to(torch::kCPU, torch::kFloat64);
  if (mask.defined() && (mask.dim() != 2 || mask.size(0) != a.size(0) || mask.size(1) != a.size(2)))
    throw std::invalid_argument("summarize_attention: mask must be [B, N] matching the weights");
  if (a.numel() == 0) return {kNaN, kNaN};
  torch::Tensor plogp = torch::where(a > 0, a * a.log(), torch::zeros_like(a));
  if (mask.defined()) plogp = plogp.masked_fill(mask.to(torch::kCPU).logical_not().unsqueeze(1), 0.0);
  const double entropy = (-plogp.sum(2)).mean().item<double>();
  const double max_weight = std::get<0>(a.max(2)).mean().item<double>();
  return {entropy, max_weight};
}

}  // namespace reglab::metrics
