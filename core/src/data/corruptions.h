// data/corruptions.h — Fashion-MNIST-C: seeded, deterministic image
// corruptions for evaluating models (and test-time adaptation) under
// distribution shift.
//
// The ten corruptions and their five severities follow CIFAR-10-C (Hendrycks
// & Dietterich, "Benchmarking Neural Network Robustness to Common Corruptions
// and Perturbations", ICLR 2019; generator: hendrycks/robustness,
// ImageNet-C/create_c/make_cifar_c.py), carried over to one-channel 28x28
// images. corruptions.cpp defines each one precisely and lists every
// adaptation; the parameters, for severities 1..5:
//
//   gaussian_noise     noise std                        .04   .06   .08   .09   .10
//   shot_noise         Poisson events per unit c        500   250   100    75    50
//   impulse_noise      salt-and-pepper fraction         .01   .02   .03   .05   .07
//   defocus_blur       disk radius (px)                  .3    .4    .5     1   1.5
//                      anti-alias Gaussian sigma (px)    .4    .5    .6    .2    .1
//   motion_blur        radius (px; 2*ceil(r)+1 taps)      6     6     6     8     9
//                      Gaussian sigma along path (px)     1   1.5     2  2.25*  2.5
//   contrast           factor on (x - mean)             .75    .5    .4    .3   .15
//   brightness         added intensity                  .05    .1   .15    .2    .3
//   pixelate           shrink factor                    .95    .9   .85   .75   .65
//                      (size on 28 px: int(28 f))        26    25    23    21    18
//   elastic_transform  displacement alpha / side          0   .05   .08    .1    .1
//                      field smoothing sigma / side       0    .2   .06   .04   .03
//                      affine jitter / side             .08   .07   .06   .05   .03
//   fog                fog strength                      .2    .5   .75     1   1.5
//                      fractal roughness decay            3     3   2.5     2  1.75
//   (* 2 in the reference, where it makes severity 4 equal to 3; sizes of
//   elastic_transform scale with the side as the reference's do with 32.)
//
// Severity strengthens each corruption, but for elastic_transform (as in the
// reference) it trades a global affine jitter for a local warp: the mean
// pixel change falls with severity while the warp gets more irregular.
//
// Contract of corrupt():
//  * images: float32 CPU tensor [N, 1, H, W] (H, W >= 3; 28 for
//    Fashion-MNIST) with every value in [0, 1], i.e. before normalisation.
//    The input is never modified. The result is a new contiguous float32
//    tensor of the same shape, clipped to [0, 1].
//  * Deterministic: the result depends only on (images, name, severity, seed,
//    first_index) — not on the number of threads, nor on which other images
//    share the batch. Image i draws its randomness from its own stream, keyed
//    by (seed, name, first_index + i); so corrupting images[a:b] with
//    first_index = a gives exactly rows a..b-1 of corrupting the whole set,
//    and a data set can be corrupted batch by batch.
//  * The streams do not depend on the severity: the five severities of one
//    corruption use the same draws and differ only in their parameters, so
//    raising the severity strengthens the same noise instead of drawing new.
//  * defocus_blur, contrast, brightness and pixelate draw nothing: their
//    result does not depend on the seed.
//  * Reentrant; never touches the global torch generator.
//  * Errors: std::invalid_argument for an unknown name (listing the valid
//    ones), a severity outside 1..5, first_index < 0, or images of the wrong
//    type, shape or range (naming what was found).
#pragma once

#include <torch/types.h>

#include <cstdint>
#include <string>
#include <vector>

namespace reglab::data {

// Changes whenever corrupt() would return different values for the same
// arguments; part of every corruption cache key.
inline constexpr int kCorruptionsVersion = 2;  // 2: the seed of a corruption mixes XXH3-64 of its name

// The corruption names, in the order of the table above.
const std::vector<std::string>& corruption_names();

// Throws std::invalid_argument unless `name` is a corruption and severity is
// in 1..5 (for checking a configuration before any work is done).
void validate_corruption(const std::string& name, int severity);

torch::Tensor corrupt(const torch::Tensor& images, const std::string& name, int severity,
                      std::uint64_t seed, std::int64_t first_index = 0);

}  // namespace reglab::data
