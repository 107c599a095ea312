// metrics/metrics.cpp — classification metrics in float64 on the CPU.
#include "metrics/metrics.h"

#include <torch/types.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <stdexcept>
#include <string>
#include <vector>

namespace reglab::metrics {
namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

torch::Tensor as_logits(const torch::Tensor& logits) {
  if (!logits.defined() || logits.dim() != 2) {
    throw std::invalid_argument("metrics: logits must be [N, K]");
  }
  return logits.detach().to(torch::kCPU, torch::kFloat64);
}

torch::Tensor as_labels(const torch::Tensor& labels, const torch::Tensor& z) {
  if (!labels.defined() || labels.dim() != 1 || labels.size(0) != z.size(0)) {
    throw std::invalid_argument("metrics: labels must be [N] with N = " +
                                std::to_string(z.size(0)));
  }
  torch::Tensor y = labels.detach().to(torch::kCPU, torch::kInt64);
  if (y.numel() > 0 && (y.min().item<std::int64_t>() < 0 ||
                        y.max().item<std::int64_t>() >= z.size(1))) {
    throw std::invalid_argument("metrics: a label is outside 0.." + std::to_string(z.size(1) - 1));
  }
  return y;
}

}  // namespace

double accuracy(const torch::Tensor& logits, const torch::Tensor& labels) {
  const torch::Tensor z = as_logits(logits);
  const torch::Tensor y = as_labels(labels, z);
  if (z.size(0) == 0) return kNaN;
  return z.argmax(1).eq(y).to(torch::kFloat64).mean().item<double>();
}

double nll(const torch::Tensor& logits, const torch::Tensor& labels) {
  const torch::Tensor z = as_logits(logits);
  const torch::Tensor y = as_labels(labels, z);
  if (z.size(0) == 0) return kNaN;
  return -torch::log_softmax(z, 1).gather(1, y.unsqueeze(1)).mean().item<double>();
}

double ece(const torch::Tensor& logits, const torch::Tensor& labels, std::int64_t bins) {
  if (bins < 1) throw std::invalid_argument("ece: bins must be positive, got " + std::to_string(bins));
  const torch::Tensor z = as_logits(logits);
  const torch::Tensor y = as_labels(labels, z);
  const std::int64_t n = z.size(0);
  if (n == 0) return kNaN;

  auto [conf_t, pred_t] = torch::softmax(z, 1).max(1);
  const torch::Tensor correct_t = pred_t.eq(y).to(torch::kFloat64).contiguous();
  conf_t = conf_t.contiguous();
  const double* conf = conf_t.data_ptr<double>();
  const double* correct = correct_t.data_ptr<double>();

  const double b_count = static_cast<double>(bins);
  std::vector<double> sum_conf(bins, 0.0), sum_correct(bins, 0.0);
  std::vector<std::int64_t> count(bins, 0);
  for (std::int64_t i = 0; i < n; ++i) {
    // Bin b is (b/B, (b+1)/B]: ceil(c*B) - 1, then corrected against the
    // same boundaries computed as b/B, so a confidence equal to a boundary
    // lands in the lower bin even where c*B rounds the other way.
    auto b = static_cast<std::int64_t>(std::ceil(conf[i] * b_count)) - 1;
    b = std::clamp<std::int64_t>(b, 0, bins - 1);
    while (b > 0 && conf[i] <= static_cast<double>(b) / b_count) --b;
    while (b < bins - 1 && conf[i] > static_cast<double>(b + 1) / b_count) ++b;
    sum_conf[b] += conf[i];
    sum_correct[b] += correct[i];
    ++count[b];
  }
  double total = 0.0;
  for (std::int64_t b = 0; b < bins; ++b) {
    if (count[b] == 0) continue;
    // (n_b/N)·|acc_b − conf_b| = |Σcorrect − Σconf| / N
    total += std::abs(sum_correct[b] - sum_conf[b]);
  }
  return total / static_cast<double>(n);
}

double aurc(const torch::Tensor& logits, const torch::Tensor& labels) {
  const torch::Tensor z = as_logits(logits);
  const torch::Tensor y = as_labels(labels, z);
  const std::int64_t n = z.size(0);
  if (n == 0) return kNaN;

  auto [conf_t, pred_t] = torch::softmax(z, 1).max(1);
  const torch::Tensor wrong_t = pred_t.ne(y).contiguous();
  conf_t = conf_t.contiguous();
  const double* conf = conf_t.data_ptr<double>();
  const bool* wrong = wrong_t.data_ptr<bool>();

  // Stable sort by descending confidence: tied samples keep their input
  // order, so the result is defined (and reproducible) for ties.
  std::vector<std::int64_t> order(n);
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(),
                   [conf](std::int64_t a, std::int64_t b) { return conf[a] > conf[b]; });
  double errors = 0.0;
  double risk_sum = 0.0;
  for (std::int64_t i = 0; i < n; ++i) {
    errors += wrong[order[i]] ? 1.0 : 0.0;
    risk_sum += errors / static_cast<double>(i + 1);
  }
  return risk_sum / static_cast<double>(n);
}

double mean_entropy(const torch::Tensor& logits) {
  const torch::Tensor z = as_logits(logits);
  if (z.size(0) == 0) return kNaN;
  const torch::Tensor log_p = torch::log_softmax(z, 1);
  const torch::Tensor p = log_p.exp();
  // 0·log 0 = 0: a class with probability exactly 0 (logit −inf) adds nothing.
  const torch::Tensor terms = torch::where(p > 0, p * log_p, torch::zeros_like(p));
  return -terms.sum(1).mean().item<double>();
}

}  // namespace reglab::metrics
