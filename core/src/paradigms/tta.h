// paradigms/tta.h — test-time adaptation on a stream of corrupted test data.
//
// A tta trial starts from a source model: the final checkpoint of its stage
// (init.from, a classify configuration; env.init_checkpoint). It rebuilds the
// same model, loads those weights and feeds the method (reglab/method.h:
// tta_setup, tta_step) a stream of unlabelled batches of the Fashion-MNIST
// test set corrupted by data/corruptions.h, scoring the predictions each
// tta_step returns as they are returned.
//
// The test data (data.test_limit applies) is split once per trial, seeded by
// the trial's seed:
//   * held out: tta.held_out clean samples of the known classes, never in the
//     stream, given to tta_setup as TtaContext::held_out_inputs;
//   * the stream set: the other samples of the known classes and, when
//     tta.unknown_ratio = r > 0, round(n·r/(1−r)) samples of the classes
//     data.classes leaves out (n = known samples in the stream set), so
//     that a fraction r of the stream is unknown.
// Images are corrupted in [0, 1] and then normalised with the stage's
// training-split statistics, exactly as the source model saw its inputs.
// The corruption draws use tta.corruption_seed, not the trial's seed, and
// are cached under <results>/cache/fashion-mnist-c (data/corruption_cache.h).
//
// The stream is a list of segments, each the whole stream set under one
// corruption at one severity, in an order shuffled per segment (seeded by
// the trial's seed and the segment's position) and cut into batches of
// tta.batch_size (the last one may be smaller). stream_segments() builds
// the list for the three protocols:
//   standard   each corruption at tta.severity; the source weights are
//              restored (and tta_setup called again) before each one
//   continual  each corruption at tta.severity (5 by default) one after the
//              other, never reset
//   gradual    for each corruption the severities 1 2 3 4 5 4 3 2 1, one
//              segment each, never reset
// tta.corruptions lists the corruptions in the order they come; empty means
// all ten in the protocol's order (default_corruption_order()).
//
// Metrics (step conventions in brackets; corruption k is 1-based):
//   tta.err.<c>            online error on the known samples of corruption
//                          c, over all its segments                [k]
//   tta.used_frac.<c>      fraction of c's samples that drove an update [k]
//   tta.clean_err.<c>      error on the clean stream set (known samples) of
//                          the model as adapted at the end of c, in its
//                          current mode, on a copy                 [k]
//   tta.segment_err        online error of each segment [segment, 1-based]
//   tta.err, tta.used_frac over the whole stream          [number of corruptions]
//   tta.clean_err          standard: mean of tta.clean_err.<c>; continual and
//                          gradual: after the whole stream (forgetting)
//                                                         [number of corruptions]
//   tta.clean_err_source   the source model's clean error, eval mode  [0]
//   open set (tta.unknown_ratio > 0), per corruption and overall:
//   tta.auroc[.<c>]        ROC AUC of known (positive) vs unknown samples by
//                          the max softmax of the returned logits
//   tta.known_acc[.<c>]    accuracy on the known samples (= 1 − tta.err)
//   tta.samples_per_s      stream samples per second of tta_step  [number of corruptions]
//   time.tta_s             seconds spent in tta_step              [number of corruptions]
//   time.startup_s         as in classify, at the first step      [0]
// Progress: one log line per corruption. A trial interrupted mid-stream
// starts again from the source model when resumed (streams are short).
#pragma once

#include <torch/types.h>

#include <cstdint>
#include <string>
#include <vector>

#include "runner/trial_env.h"

namespace reglab::paradigms {

void run_tta(runner::TrialEnv& env);

// One part of the stream: the stream set under one corruption.
struct StreamSegment {
  std::string corruption;
  int severity = 5;
  bool reset_before = false;  // restore the source weights and call tta_setup first
  std::int64_t corruption_index = 0;  // 0-based position of `corruption` in the stream
};

// The corruptions of a protocol when tta.corruptions is empty: standard and
// gradual in the table order of data/corruptions.h; continual in CoTTA's
// CIFAR-10-C order restricted to these ten (gaussian_noise, shot_noise,
// impulse_noise, defocus_blur, motion_blur, fog, brightness, contrast,
// elastic_transform, pixelate). Throws std::invalid_argument for an unknown
// protocol.
std::vector<std::string> default_corruption_order(const std::string& protocol);

// The segments of a protocol; `corruptions` empty = the default order. The
// first segment always has reset_before. Throws std::invalid_argument naming
// the problem for an unknown protocol or corruption or a severity outside
// 1..5.
std::vector<StreamSegment> stream_segments(const std::string& protocol, const std::vector<std::string>& corruptions,
                                           int severity);

// Which test samples go where (indices into the test set, ascending within
// each part). `labels` are the test set's original labels; `classes` the
// known classes (empty = all, no unknowns possible). Throws
// std::runtime_error when the held-out samples leave no known sample for the
// stream, or when fewer unknown samples exist than the ratio asks.
struct StreamSplit {
  torch::Tensor held_out;      // int64 indices of clean held-out samples (known classes)
  torch::Tensor stream;        // int64 indices of the stream set: known, then unknown samples
  torch::Tensor stream_labels; // int64: the known samples' labels relabelled as in data.classes; −1 = unknown
  std::int64_t num_known = 0;  // the first num_known entries of `stream` are known
};
StreamSplit split_test_set(const torch::Tensor& labels, const std::vector<std::int64_t>& classes,
                           std::int64_t held_out, double unknown_ratio, std::uint64_t seed);

// The order of the `count` samples of the segment at 0-based `position`:
// a permutation that depends only on (seed, position).
torch::Tensor segment_order(std::int64_t count, std::uint64_t seed, std::int64_t position);

// Online scores of returned predictions.
class OnlineScores {
 public:
  // logits [B, K] as returned; labels [B] int64, −1 for unknown samples.
  void add(const torch::Tensor& logits, const torch::Tensor& labels, std::int64_t num_used);
  void merge(const OnlineScores& other);
  std::int64_t samples() const { return samples_; }
  double error() const;      // on the known samples; NaN when there are none
  double used_fraction() const;  // num_used summed / samples; NaN when empty
  double auroc() const;      // known vs unknown by max softmax; NaN without both kinds

 private:
  std::int64_t samples_ = 0, known_ = 0, correct_ = 0, used_ = 0;
  std::vector<float> confidence_;
  std::vector<std::uint8_t> is_known_;
};

}  // namespace reglab::paradigms
