// metrics/passk.h — sampling metrics of the rlvr paradigm.
//
// pass@k: the unbiased estimator of Chen et al. 2021 ("Evaluating Large
// Language Models Trained on Code"): from n samples of which c are correct,
//   pass@k = 1 − C(n−c, k) / C(n, k) = 1 − Π_{i=n−c+1}^{n} (1 − k/i),
// computed in the product form (binomials of n = 64 overflow doubles' exact
// range long before they overflow; the product never leaves [0, 1]).
// It is 1 when n − c < k (every k-subset holds a correct sample).
//
// maj@k: the majority vote over the first k answers is correct. An invalid
// answer (nullopt) votes for "no answer", which can win but is never correct
// (as TTRL counts an empty extracted answer). Ties go to the answer seen first.
//
// Pure functions; throw std::invalid_argument on arguments outside their range.
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

namespace reglab::metrics {

// 0 ≤ c ≤ n, 1 ≤ k ≤ n.
double pass_at_k(std::int64_t n, std::int64_t c, std::int64_t k);

// The most common answer among the first k (all when k ≥ size); ties: the
// first seen. nullopt when "no answer" wins. Throws on an empty list or k < 1.
std::optional<std::int64_t> majority_answer(const std::vector<std::optional<std::int64_t>>& answers,
                                            std::int64_t k);

// 1.0 when majority_answer(answers, k) equals truth, else 0.0.
double maj_at_k(const std::vector<std::optional<std::int64_t>>& answers, std::int64_t truth, std::int64_t k);

}  // namespace reglab::metrics
