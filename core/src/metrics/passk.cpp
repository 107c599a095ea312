#include "metrics/passk.h"

#include <algorithm>
#include <stdexcept>
#include <string>

namespace reglab::metrics {

double pass_at_k(std::int64_t n, std::int64_t c, std::int64_t k) {
  if (n < 1 || c < 0 || c > n || k < 1 || k > n)
    throw std::invalid_argument("pass@k needs 0 ≤ c ≤ n and 1 ≤ k ≤ n, got n=" + std::to_string(n) +
                                " c=" + std::to_string(c) + " k=" + std::to_string(k));
  if (n - c < k) return 1.0;
  double all_wrong = 1.0;  // C(n−c, k) / C(n, k)
  for (std::int64_t i = n - c + 1; i <= n; ++i) all_wrong *= 1.0 - static_cast<double>(k) / static_cast<double>(i);
  return 1.0 - all_wrong;
}

std::optional<std::int64_t> majority_answer(const std::vector<std::optional<std::int64_t>>& answers,
                                            std::int64_t k) {
  if (answers.empty() || k < 1) throw std::invalid_argument("maj@k needs at least one answer and k ≥ 1");
  const std::size_t m = std::min(answers.size(), static_cast<std::size_t>(k));
  // Distinct answers in order of first appearance with their counts; k is small.
  std::vector<std::optional<std::int64_t>> distinct;
  std::vector<std::int64_t> counts;
  for (std::size_t i = 0; i < m; ++i) {
    std::size_t j = 0;
    while (j < distinct.size() && distinct[j] != answers[i]) ++j;
    if (j == distinct.size()) {
      distinct.push_back(answers[i]);
      counts.push_back(0);
    }
    ++counts[j];
  }
  std::size_t best = 0;
  for (std::size_t j = 1; j < distinct.size(); ++j)
    if (counts[j] > counts[best]) best = j;
  return distinct[best];
}

double maj_at_k(const std::vector<std::optional<std::int64_t>>& answers, std::int64_t truth, std::int64_t k) {
  const auto winner = majority_answer(answers, k);
  return winner && *winner == truth ? 1.0 : 0.0;
}

}  // namespace reglab::metrics
