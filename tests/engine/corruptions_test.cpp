// Fashion-MNIST-C corruptions (data/corruptions.h) and their disk cache
// (data/corruption_cache.h).
//
// Expected values come from the definitions in corruptions.cpp, never from
// running it:
//  * brightness and contrast: the formulas by hand on constant and two-level
//    images;
//  * pixelate: the BOX footprints of a 28 -> 18 -> 28 resize worked out by
//    hand (the table in PixelateRampThroughEighteenPixels), cross-checked by
//    re-running Pillow's coefficient rule (libImaging/Resample.c,
//    precompute_coeffs, BOX filter) transcribed to Python under
//    /usr/bin/python3 for the same sizes;
//  * defocus_blur: the impulse response in closed form from the disk and the
//    3x3 Gaussian, and the reflect-101 border (the corner sees the pixel at
//    (1, 1) four times);
//  * motion_blur: k_0 = 1 / sum_i exp(-i^2 / 2 sigma^2) and the one-sided
//    streak inside the +-45 degree cone;
//  * the noises: sampling theory, within 5 standard errors;
//  * elastic_transform and fog: invariants of the definitions (bilinear
//    resampling stays inside the input's range and keeps constants; fog
//    keeps black black and lays a [0, 1] fractal over white);
//  * severity: on real Fashion-MNIST test images, the mean absolute change
//    grows with every step of severity, for every corruption but
//    elastic_transform, whose severities trade a shrinking affine jitter for
//    a growing local warp (by definition, as in the reference); for it the
//    local part is measured on its own on a linear ramp.
#include "data/corruption_cache.h"
#include "data/corruptions.h"
#include "data/dataset.h"
#include "util/hash.h"
#include "util/util.h"
#include "store/temp_db.h"

#include <ATen/CPUGeneratorImpl.h>
#include <ATen/Parallel.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <torch/torch.h>

#include <array>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <set>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace {

namespace fs = std::filesystem;
using reglab::data::cached_corruption;
using reglab::data::corrupt;
using reglab::data::corruption_cache_file;
using reglab::data::corruption_names;

const std::string kRoot = "/usr/share/datasets/fashion-mnist";
const std::set<std::string> kSeedFree = {"defocus_blur", "contrast", "brightness", "pixelate"};

// The 10,000 test images, float32 [N, 1, 28, 28] in [0, 1].
const torch::Tensor& test_images() {
  static const torch::Tensor images = reglab::data::read_idx_gz(kRoot + "/t10k-images-idx3-ubyte.gz")
                                          .to(torch::kFloat32)
                                          .div(255.0)
                                          .unsqueeze(1)
                                          .contiguous();
  return images;
}

torch::Tensor constant(std::int64_t n, double value) {
  return torch::full({n, 1, 28, 28}, value, torch::kFloat32);
}

std::string error_of(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const std::invalid_argument& e) {
    return e.what();
  }
  return "(no std::invalid_argument thrown)";
}

using reglab::testing_support::TempDir;

// ------------------------------------------------------------------ contract

TEST(Corruptions, NamesAreTheTenOfTheTable) {
  EXPECT_EQ(corruption_names(),
            (std::vector<std::string>{"gaussian_noise", "shot_noise", "impulse_noise", "defocus_blur",
                                      "motion_blur", "contrast", "brightness", "pixelate",
                                      "elastic_transform", "fog"}));
}

TEST(Corruptions, UnknownNameIsNamedWithTheValidOnes) {
  const std::string msg = error_of([] { corrupt(constant(1, 0.5), "gausian_noise", 1, 0); });
  EXPECT_NE(msg.find("'gausian_noise'"), std::string::npos) << msg;
  EXPECT_NE(msg.find("did you mean 'gaussian_noise'"), std::string::npos) << msg;
  for (const std::string& name : corruption_names()) EXPECT_NE(msg.find(name), std::string::npos) << msg;
  EXPECT_NE(error_of([] { corrupt(constant(1, 0.5), "", 1, 0); }).find("unknown corruption ''"),
            std::string::npos);
}

TEST(Corruptions, SeverityOutsideOneToFiveIsNamed) {
  for (const int severity : {0, 6, -3}) {
    const std::string msg = error_of([&] { corrupt(constant(1, 0.5), "fog", severity, 0); });
    EXPECT_NE(msg.find("got " + std::to_string(severity)), std::string::npos) << msg;
    EXPECT_NE(msg.find("1..5"), std::string::npos) << msg;
  }
  EXPECT_NO_THROW(reglab::data::validate_corruption("fog", 5));
  EXPECT_THROW(reglab::data::validate_corruption("fog", 0), std::invalid_argument);
}

TEST(Corruptions, BadImagesAreRejectedSayingWhatWasFound) {
  EXPECT_NE(error_of([] { corrupt(torch::zeros({2, 28, 28}), "fog", 1, 0); }).find("[2, 28, 28]"),
            std::string::npos);
  EXPECT_NE(error_of([] { corrupt(torch::zeros({2, 3, 28, 28}), "fog", 1, 0); }).find("[2, 3, 28, 28]"),
            std::string::npos);
  EXPECT_NE(error_of([] { corrupt(torch::zeros({2, 1, 28, 28}, torch::kFloat64), "fog", 1, 0); })
                .find("Double"),
            std::string::npos);
  const std::string normalised = error_of([] { corrupt(constant(2, -0.8), "fog", 1, 0); });
  EXPECT_NE(normalised.find("[0, 1]"), std::string::npos) << normalised;
  EXPECT_NE(normalised.find("-0.8"), std::string::npos) << normalised;
  EXPECT_NE(error_of([] { corrupt(constant(2, 0.5), "fog", 1, 0, -1); }).find("first_index"),
            std::string::npos);
}

TEST(Corruptions, EmptyBatchGivesEmptyResult) {
  const torch::Tensor out = corrupt(torch::zeros({0, 1, 28, 28}), "elastic_transform", 3, 1);
  EXPECT_EQ(out.sizes(), (std::vector<std::int64_t>{0, 1, 28, 28}));
}

TEST(Corruptions, SameSeedSameBytesOtherSeedOtherNoise) {
  const torch::Tensor x = test_images().narrow(0, 0, 64);
  const torch::Tensor before = x.clone();
  for (const std::string& name : corruption_names()) {
    SCOPED_TRACE(name);
    const torch::Tensor a = corrupt(x, name, 3, 11);
    const torch::Tensor b = corrupt(x, name, 3, 11);
    const torch::Tensor c = corrupt(x, name, 3, 12);
    EXPECT_TRUE(torch::equal(a, b));
    EXPECT_FALSE(torch::equal(a, x)) << "the corruption changed nothing";
    if (kSeedFree.count(name) != 0) {
      EXPECT_TRUE(torch::equal(a, c)) << "draws nothing, so the seed cannot matter";
    } else {
      EXPECT_FALSE(torch::equal(a, c));
    }
  }
  EXPECT_TRUE(torch::equal(x, before)) << "the input was modified";
}

TEST(Corruptions, IndependentOfThreadCount) {
  const torch::Tensor x = test_images().narrow(0, 100, 256);
  const int saved = at::get_num_threads();
  for (const std::string& name : corruption_names()) {
    SCOPED_TRACE(name);
    at::set_num_threads(1);
    const torch::Tensor one = corrupt(x, name, 5, 3);
    at::set_num_threads(3);
    const torch::Tensor three = corrupt(x, name, 5, 3);
    EXPECT_TRUE(torch::equal(one, three));
  }
  at::set_num_threads(saved);
}

TEST(Corruptions, SubsetsCorruptLikeTheFullSet) {
  const torch::Tensor x = test_images().narrow(0, 0, 96);
  for (const std::string& name : corruption_names()) {
    SCOPED_TRACE(name);
    const torch::Tensor full = corrupt(x, name, 4, 5);
    EXPECT_TRUE(torch::equal(corrupt(x.narrow(0, 0, 40), name, 4, 5), full.narrow(0, 0, 40)));
    EXPECT_TRUE(torch::equal(corrupt(x.narrow(0, 40, 56), name, 4, 5, 40), full.narrow(0, 40, 56)));
    const torch::Tensor picked = torch::tensor({7, 70, 3}, torch::kInt64);
    const torch::Tensor one_by_one =
        torch::cat({corrupt(x.narrow(0, 7, 1), name, 4, 5, 7), corrupt(x.narrow(0, 70, 1), name, 4, 5, 70),
                    corrupt(x.narrow(0, 3, 1), name, 4, 5, 3)});
    EXPECT_TRUE(torch::equal(one_by_one, full.index_select(0, picked)));
    if (kSeedFree.count(name) == 0) {
      EXPECT_FALSE(torch::equal(corrupt(x.narrow(0, 40, 56), name, 4, 5), full.narrow(0, 40, 56)))
          << "the stream must follow the sample index";
    }
  }
}

TEST(Corruptions, FloatInUnitRangeForEverySeverity) {
  const torch::Tensor x = torch::cat({test_images().narrow(0, 0, 100), constant(1, 0.0), constant(1, 1.0)});
  for (const std::string& name : corruption_names()) {
    for (int severity = 1; severity <= 5; ++severity) {
      SCOPED_TRACE(name + " severity " + std::to_string(severity));
      const torch::Tensor y = corrupt(x, name, severity, 9);
      ASSERT_EQ(y.scalar_type(), torch::kFloat32);
      ASSERT_EQ(y.sizes(), x.sizes());
      EXPECT_TRUE(y.is_contiguous());
      EXPECT_TRUE(torch::isfinite(y).all().item<bool>());
      EXPECT_GE(y.min().item<float>(), 0.0f);
      EXPECT_LE(y.max().item<float>(), 1.0f);
    }
  }
}

TEST(Corruptions, DeviationGrowsWithSeverityOnFashionMnist) {
  const torch::Tensor x = test_images().narrow(0, 0, 1000);
  for (const std::string& name : corruption_names()) {
    std::array<double, 5> mad{};
    for (int severity = 1; severity <= 5; ++severity) {
      mad[severity - 1] = (corrupt(x, name, severity, 1) - x).abs().mean().item<double>();
    }
    std::cout << "[ info ] " << name << " mean |corrupted - clean| by severity:";
    for (const double m : mad) std::cout << " " << m;
    std::cout << "\n";
    if (name == "elastic_transform") continue;  // see LocalWarpGrowsWithSeverity
    for (int s = 1; s < 5; ++s) {
      EXPECT_LT(mad[s - 1], mad[s]) << name << ": severity " << s << " vs " << s + 1;
    }
  }
}

// ------------------------------------------------------------- exact values

TEST(CorruptBrightness, AddsTheShiftAndClips) {
  const std::array<double, 5> shift = {0.05, 0.1, 0.15, 0.2, 0.3};
  const torch::Tensor x = torch::cat({constant(1, 0.5), constant(1, 0.9)});
  for (int s = 1; s <= 5; ++s) {
    const torch::Tensor y = corrupt(x, "brightness", s, 0);
    EXPECT_NEAR(y[0].min().item<float>(), 0.5 + shift[s - 1], 1e-6);
    EXPECT_NEAR(y[0].max().item<float>(), 0.5 + shift[s - 1], 1e-6);
    EXPECT_NEAR(y[1].min().item<float>(), std::min(1.0, 0.9 + shift[s - 1]), 1e-6);
    EXPECT_NEAR(y[1].max().item<float>(), std::min(1.0, 0.9 + shift[s - 1]), 1e-6);
  }
}

TEST(CorruptContrast, ScalesAboutEachImagesOwnMean) {
  // Image 0: columns 0..13 at 0.2, 14..27 at 0.6, mean 0.4. Image 1: flat 0.8.
  torch::Tensor x = torch::cat({constant(1, 0.2), constant(1, 0.8)});
  x.index_put_({0, 0, torch::indexing::Slice(), torch::indexing::Slice(14, 28)}, 0.6);
  const std::array<double, 5> factor = {0.75, 0.5, 0.4, 0.3, 0.15};
  for (int s = 1; s <= 5; ++s) {
    const torch::Tensor y = corrupt(x, "contrast", s, 0);
    EXPECT_NEAR(y[0][0][5][3].item<float>(), 0.4 - 0.2 * factor[s - 1], 1e-6);
    EXPECT_NEAR(y[0][0][20][27].item<float>(), 0.4 + 0.2 * factor[s - 1], 1e-6);
    EXPECT_NEAR(y[1].min().item<float>(), 0.8, 1e-6);
    EXPECT_NEAR(y[1].max().item<float>(), 0.8, 1e-6);
  }
}

TEST(CorruptPixelate, RampThroughEighteenPixels) {
  // Severity 5 shrinks 28 -> int(28 * 0.65) = 18. Shrinking, small pixel j
  // averages the columns x with j*28/18 < x + 1/2 <= (j+1)*28/18:
  //   {0,1} {2} {3,4} {5} {6,7} {8} {9,10} {11} {12,13} {14,15} {16} {17,18}
  //   {19} {20,21} {22} {23,24} {25} {26,27}
  // Enlarging, column i takes small pixel floor((i + 1/2) * 18/28):
  //   0 0 1 2 2 3 4 4 5 6 6 7 8 8 9 9 10 11 11 12 13 13 14 15 15 16 17 17
  // So a ramp over the column index becomes, per column:
  const std::array<double, 28> ramp = {0.5,  0.5,  2.0,  3.5,  3.5,  5.0,  6.5,  6.5,  8.0,  9.5,
                                       9.5,  11.0, 12.5, 12.5, 14.5, 14.5, 16.0, 17.5, 17.5, 19.0,
                                       20.5, 20.5, 22.0, 23.5, 23.5, 25.0, 26.5, 26.5};
  // x(r, c) = (c + 28 r) / 783 is linear, and each axis is resampled on its
  // own, so y(r, c) = (ramp[c] + 28 ramp[r]) / 783.
  const torch::Tensor x = torch::arange(784, torch::kFloat32).div(783.0).view({1, 1, 28, 28});
  const torch::Tensor y = corrupt(x, "pixelate", 5, 0);
  for (int r = 0; r < 28; ++r) {
    for (int c = 0; c < 28; ++c) {
      EXPECT_NEAR(y[0][0][r][c].item<float>(), (ramp[c] + 28.0 * ramp[r]) / 783.0, 1e-6) << r << "," << c;
    }
  }
}

TEST(CorruptPixelate, EverySeverityKeepsOneValuePerSmallPixel) {
  // Columns of a ramp differ, so each small pixel is one distinct value, and
  // enlarging by nearest neighbour shows every small pixel at least once.
  const std::array<std::int64_t, 5> small = {26, 25, 23, 21, 18};
  const torch::Tensor x = torch::arange(28, torch::kFloat32).div(27.0).view({1, 1, 1, 28}).expand({1, 1, 28, 28});
  for (int s = 1; s <= 5; ++s) {
    const torch::Tensor row = corrupt(x.contiguous(), "pixelate", s, 0)[0][0][13];
    EXPECT_EQ(std::get<0>(torch::_unique(row)).numel(), small[s - 1]) << "severity " << s;
  }
}

TEST(CorruptDefocusBlur, ImpulseResponseIsTheKernel) {
  torch::Tensor x = constant(1, 0.0);
  x.index_put_({0, 0, 14, 14}, 1.0);
  // Severity 3: radius .5 keeps only the centre of the disk, so the kernel is
  // the 3x3 Gaussian g(t) g(u), g(0) = 1/(1+2e), g(+-1) = e/(1+2e),
  // e = exp(-1 / (2 * .6^2)).
  {
    const double e = std::exp(-1.0 / (2.0 * 0.36));
    const std::array<double, 2> g = {1.0 / (1.0 + 2.0 * e), e / (1.0 + 2.0 * e)};
    const torch::Tensor y = corrupt(x, "defocus_blur", 3, 0);
    for (int dr = -2; dr <= 2; ++dr) {
      for (int dc = -2; dc <= 2; ++dc) {
        const double expected = (std::abs(dr) <= 1 && std::abs(dc) <= 1) ? g[std::abs(dr)] * g[std::abs(dc)] : 0.0;
        EXPECT_NEAR(y[0][0][14 + dr][14 + dc].item<float>(), expected, 1e-7) << dr << "," << dc;
      }
    }
    EXPECT_NEAR(y.sum().item<double>(), 1.0, 1e-6);
  }
  // Severity 4: radius 1 gives the 5-pixel cross, 1/5 each; the centre gets
  // 1/5 (g0^2 + 4 g0 g1) with e = exp(-1 / (2 * .2^2)).
  {
    const double e = std::exp(-1.0 / (2.0 * 0.04));
    const double g0 = 1.0 / (1.0 + 2.0 * e);
    const double g1 = e / (1.0 + 2.0 * e);
    const torch::Tensor y = corrupt(x, "defocus_blur", 4, 0);
    EXPECT_NEAR(y[0][0][14][14].item<float>(), 0.2 * (g0 * g0 + 4.0 * g0 * g1), 1e-7);
    EXPECT_NEAR(y[0][0][13][14].item<float>(), 0.2, 1e-5);
    EXPECT_NEAR(y[0][0][13][13].item<float>(), 0.0, 1e-5);
    EXPECT_NEAR(y.sum().item<double>(), 1.0, 1e-6);
  }
  // Severity 5: radius 1.5 gives the 3x3 block; sigma .1 leaves it a box.
  {
    const torch::Tensor y = corrupt(x, "defocus_blur", 5, 0);
    for (int dr = -2; dr <= 2; ++dr) {
      for (int dc = -2; dc <= 2; ++dc) {
        const double expected = (std::abs(dr) <= 1 && std::abs(dc) <= 1) ? 1.0 / 9.0 : 0.0;
        EXPECT_NEAR(y[0][0][14 + dr][14 + dc].item<float>(), expected, 1e-7) << dr << "," << dc;
      }
    }
  }
}

TEST(CorruptDefocusBlur, BorderMirrorsAboutTheEdgePixels) {
  // Reflect-101: row/column -1 reads 1. With the 3x3 box (severity 5), pixel
  // (0, 0) reads rows {1, 0, 1} x columns {1, 0, 1}: the impulse at (1, 1)
  // four times; pixel (0, 1) reads rows {1, 0, 1} x columns {0, 1, 2}: twice.
  torch::Tensor x = constant(1, 0.0);
  x.index_put_({0, 0, 1, 1}, 1.0);
  const torch::Tensor y = corrupt(x, "defocus_blur", 5, 0);
  EXPECT_NEAR(y[0][0][0][0].item<float>(), 4.0 / 9.0, 1e-6);
  EXPECT_NEAR(y[0][0][0][1].item<float>(), 2.0 / 9.0, 1e-6);
  EXPECT_NEAR(y[0][0][1][1].item<float>(), 1.0 / 9.0, 1e-6);
}

TEST(CorruptMotionBlur, ImpulseBecomesAOneSidedStreak) {
  // y(p) = sum_i k_i x(p + o_i) with o_0 = 0 and o_i pointing right (|angle|
  // <= 45 degrees), so an impulse at q lights p = q - o_i: q itself with k_0,
  // the rest to its left inside the 45-degree cone. At column 20 the whole
  // streak (at most 18 px) fits, so the weights sum to 1.
  const std::int64_t n = 16;
  torch::Tensor x = constant(n, 0.0);
  x.index_put_({torch::indexing::Slice(), 0, 14, 20}, 1.0);
  struct Case {
    int severity;
    int width;
    double sigma;
  };
  for (const Case& c : {Case{1, 13, 1.0}, Case{5, 19, 2.5}}) {
    double total = 0.0;
    for (int i = 0; i < c.width; ++i) total += std::exp(-i * i / (2.0 * c.sigma * c.sigma));
    const torch::Tensor y = corrupt(x, "motion_blur", c.severity, 4);
    std::set<std::vector<std::int64_t>> patterns;
    for (std::int64_t b = 0; b < n; ++b) {
      const torch::Tensor img = y[b][0];
      EXPECT_NEAR(img[14][20].item<float>(), 1.0 / total, 1e-6);
      EXPECT_NEAR(img.sum().item<double>(), 1.0, 1e-5);
      const torch::Tensor lit = torch::nonzero(img > 1e-12f);
      std::vector<std::int64_t> pattern;
      for (std::int64_t k = 0; k < lit.size(0); ++k) {
        const std::int64_t r = lit[k][0].item<std::int64_t>();
        const std::int64_t col = lit[k][1].item<std::int64_t>();
        EXPECT_LE(col, 20);
        EXPECT_LE(std::abs(r - 14), 20 - col + 1) << "outside the cone at " << r << "," << col;
        pattern.push_back(r * 28 + col);
      }
      patterns.insert(pattern);
    }
    EXPECT_GE(patterns.size(), 4u) << "each image should draw its own angle";
  }
  const torch::Tensor flat = constant(3, 0.37);
  EXPECT_LT((corrupt(flat, "motion_blur", 5, 1) - flat).abs().max().item<float>(), 1e-6);
}

// ------------------------------------------------------------ noise statistics

TEST(CorruptImpulseNoise, HitsTheFractionSplitEvenlyIntoSaltAndPepper) {
  const std::array<double, 5> fraction = {0.01, 0.02, 0.03, 0.05, 0.07};
  const torch::Tensor x = constant(100, 0.5);
  const double pixels = static_cast<double>(x.numel());
  for (int s = 1; s <= 5; ++s) {
    const torch::Tensor y = corrupt(x, "impulse_noise", s, 21);
    const double salt = (y == 1.0f).sum().item<double>();
    const double pepper = (y == 0.0f).sum().item<double>();
    const double kept = (y == 0.5f).sum().item<double>();
    EXPECT_EQ(salt + pepper + kept, pixels) << "only 0, 1 or the clean value";
    const double p = fraction[s - 1];
    const double hit = (salt + pepper) / pixels;
    EXPECT_NEAR(hit, p, 5.0 * std::sqrt(p * (1.0 - p) / pixels)) << "severity " << s;
    EXPECT_NEAR(salt / (salt + pepper), 0.5, 5.0 * std::sqrt(0.25 / (salt + pepper))) << "severity " << s;
  }
}

TEST(CorruptGaussianNoise, StdIsTheSeverityParameter) {
  const std::array<double, 5> sd = {0.04, 0.06, 0.08, 0.09, 0.10};
  const torch::Tensor x = constant(100, 0.5);  // 5 std from either bound: no clipping
  const double n = static_cast<double>(x.numel());
  for (int s = 1; s <= 5; ++s) {
    const torch::Tensor d = (corrupt(x, "gaussian_noise", s, 2) - x).to(torch::kFloat64);
    EXPECT_NEAR(d.mean().item<double>(), 0.0, 5.0 * sd[s - 1] / std::sqrt(n)) << "severity " << s;
    EXPECT_NEAR(d.std().item<double>(), sd[s - 1], 5.0 * sd[s - 1] / std::sqrt(2.0 * n)) << "severity " << s;
  }
}

TEST(CorruptShotNoise, PoissonCountsOverC) {
  // y = K / c with K ~ Poisson(c x): mean x, variance x / c, and the sample
  // variance has standard error sqrt((lambda + 2 lambda^2) / n) / c^2.
  const std::array<double, 5> rate = {500, 250, 100, 75, 50};
  const torch::Tensor x = constant(100, 0.5);
  const double n = static_cast<double>(x.numel());
  for (int s = 1; s <= 5; ++s) {
    const double c = rate[s - 1];
    const double lambda = 0.5 * c;
    const torch::Tensor y = corrupt(x, "shot_noise", s, 8).to(torch::kFloat64);
    const torch::Tensor counts = y * c;
    EXPECT_LT((counts - counts.round()).abs().max().item<double>(), 1e-3) << "not a count / c";
    EXPECT_NEAR(y.mean().item<double>(), 0.5, 5.0 * std::sqrt(0.5 / c / n)) << "severity " << s;
    EXPECT_NEAR(y.var().item<double>(), 0.5 / c, 5.0 * std::sqrt((lambda + 2 * lambda * lambda) / n) / (c * c))
        << "severity " << s;
  }
}

// ------------------------------------------------------- resampling invariants

TEST(CorruptElastic, ResamplesInsideTheInputRangeAndKeepsConstants) {
  auto gen = at::make_generator<at::CPUGeneratorImpl>(77);
  const torch::Tensor x = (torch::rand({8, 1, 28, 28}, gen, torch::kFloat32) * 0.5 + 0.2).contiguous();
  const torch::Tensor flat = constant(2, 0.4);
  for (int s = 1; s <= 5; ++s) {
    const torch::Tensor y = corrupt(x, "elastic_transform", s, 6);
    EXPECT_GE(y.min().item<float>(), x.min().item<float>() - 1e-6f) << "severity " << s;
    EXPECT_LE(y.max().item<float>(), x.max().item<float>() + 1e-6f) << "severity " << s;
    EXPECT_GT((y - x).abs().mean().item<float>(), 0.01f) << "severity " << s << " moved nothing";
    EXPECT_LT((corrupt(flat, "elastic_transform", s, 6) - flat).abs().max().item<float>(), 1e-6f);
  }
}

TEST(CorruptElastic, SeverityOneIsAffineAndTheLocalWarpGrowsWithSeverity) {
  // On a linear ramp, bilinear resampling at a point returns the ramp at that
  // point, so the result is the ramp of the sampling positions: an affine warp
  // keeps it linear (second differences 0), and what the second differences
  // show is the local displacement field alone. Rows and columns 8..19 (and
  // their neighbours) sample well inside the image at every severity, away
  // from the mirrored border.
  const torch::Tensor rc = torch::arange(28, torch::kFloat32);
  const torch::Tensor ramp = (rc.view({28, 1}) + 2.0 * rc.view({1, 28})) / 100.0 + 0.05;
  const torch::Tensor x = ramp.view({1, 1, 28, 28}).expand({64, 1, 28, 28}).contiguous();
  std::array<double, 5> curvature{};
  for (int s = 1; s <= 5; ++s) {
    const torch::Tensor y = corrupt(x, "elastic_transform", s, 13).to(torch::kFloat64).squeeze(1);
    const torch::Tensor mid = y.narrow(1, 8, 12).narrow(2, 8, 12);
    const torch::Tensor up = y.narrow(1, 7, 12).narrow(2, 8, 12);
    const torch::Tensor down = y.narrow(1, 9, 12).narrow(2, 8, 12);
    const torch::Tensor left = y.narrow(1, 8, 12).narrow(2, 7, 12);
    const torch::Tensor right = y.narrow(1, 8, 12).narrow(2, 9, 12);
    curvature[s - 1] = ((up - 2.0 * mid + down).abs() + (left - 2.0 * mid + right).abs()).mean().item<double>();
    EXPECT_GT((y - x.squeeze(1).to(torch::kFloat64)).abs().mean().item<double>(), 1e-3)
        << "severity " << s << " moved nothing";
  }
  std::cout << "[ info ] elastic_transform mean |second difference| of a warped ramp by severity:";
  for (const double c : curvature) std::cout << " " << c;
  std::cout << "\n";
  EXPECT_LT(curvature[0], 1e-5) << "severity 1 must be a pure affine warp";
  for (int s = 1; s < 5; ++s) EXPECT_LT(curvature[s - 1], curvature[s]) << "severity " << s << " vs " << s + 1;
}

TEST(CorruptFog, BlackStaysBlackAndWhiteShowsTheFractal) {
  const std::array<double, 5> strength = {0.2, 0.5, 0.75, 1.0, 1.5};
  EXPECT_TRUE(torch::equal(corrupt(constant(4, 0.0), "fog", 5, 1), constant(4, 0.0)));
  for (int s = 1; s <= 5; ++s) {
    // On white, y = (1 + c p) / (1 + c), so p = (y (1 + c) - 1) / c.
    const double c = strength[s - 1];
    const torch::Tensor y = corrupt(constant(4, 1.0), "fog", s, 1).to(torch::kFloat64);
    const torch::Tensor p = (y * (1.0 + c) - 1.0) / c;
    EXPECT_GE(p.min().item<double>(), -1e-5) << "severity " << s;
    EXPECT_LE(p.max().item<double>(), 1.0 + 1e-5) << "severity " << s;
    EXPECT_GT((p[0].max() - p[0].min()).item<double>(), 0.3) << "severity " << s;
    EXPECT_FALSE(torch::allclose(p[0], p[1])) << "each image draws its own fog";
    // Coarse levels dominate (jitter falls by decay^2 per level), so
    // neighbours are close; independent uniforms would differ by 1/3.
    const double step = (p.narrow(3, 1, 27) - p.narrow(3, 0, 27)).abs().mean().item<double>();
    EXPECT_LT(step, 0.1) << "severity " << s;
  }
}

// ------------------------------------------------------------------- cache

std::string read_bytes(const fs::path& p) { return reglab::util::read_file(p); }

void write_bytes(const fs::path& p, const std::string& data) {
  std::ofstream out(p, std::ios::binary | std::ios::trunc);
  out.write(data.data(), static_cast<std::streamsize>(data.size()));
}

struct FileId {
  ino_t inode;
  std::int64_t mtime_ns;
  bool operator==(const FileId& o) const { return inode == o.inode && mtime_ns == o.mtime_ns; }
};

FileId file_id(const fs::path& p) {
  struct stat st {};
  if (::stat(p.c_str(), &st) != 0) throw std::runtime_error("stat failed: " + p.string());
  return {st.st_ino, static_cast<std::int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec};
}

fs::path sidecar_of(const fs::path& archive) {
  fs::path s = archive;
  s += ".xxh3";
  return s;
}

TEST(CorruptionCache, StoresThenReusesTheFile) {
  TempDir dir;
  const torch::Tensor x = test_images().narrow(0, 0, 32);
  const torch::Tensor expected = corrupt(x, "shot_noise", 2, 4);
  const torch::Tensor first = cached_corruption(dir.path() / "c", "fmnist-test", x, "shot_noise", 2, 4);
  EXPECT_TRUE(torch::equal(first, expected));
  const fs::path archive = corruption_cache_file(dir.path() / "c", "fmnist-test", x, "shot_noise", 2, 4);
  ASSERT_TRUE(fs::exists(archive));
  ASSERT_TRUE(fs::exists(sidecar_of(archive)));
  EXPECT_EQ(archive.extension(), ".pt");
  const FileId before = file_id(archive);
  const FileId sidecar_before = file_id(sidecar_of(archive));
  const torch::Tensor second = cached_corruption(dir.path() / "c", "fmnist-test", x, "shot_noise", 2, 4);
  EXPECT_TRUE(torch::equal(second, expected));
  EXPECT_TRUE(file_id(archive) == before) << "a valid entry was rewritten";
  EXPECT_TRUE(file_id(sidecar_of(archive)) == sidecar_before);
  // Only the entry's two files: the temporary files were renamed away.
  EXPECT_EQ(std::distance(fs::directory_iterator(dir.path() / "c"), fs::directory_iterator()), 2);
}

TEST(CorruptionCache, AValidEntryIsReadNotRecomputed) {
  // Plant a different tensor with a sidecar that vouches for it (the sidecar
  // format is the header's: key, byte count, XXH3-128): the cache must
  // return the planted tensor, which proves it reads the file.
  TempDir dir;
  const torch::Tensor x = test_images().narrow(0, 0, 8);
  cached_corruption(dir.path(), "fmnist-test", x, "fog", 1, 0);
  const fs::path archive = corruption_cache_file(dir.path(), "fmnist-test", x, "fog", 1, 0);
  const torch::Tensor planted = torch::full({8, 1, 28, 28}, 0.25f);
  std::ostringstream out;
  torch::save(planted, out);
  const std::string bytes = out.str();
  write_bytes(archive, bytes);
  std::istringstream old_sidecar(read_bytes(sidecar_of(archive)));
  std::string header;
  std::string key;
  std::getline(old_sidecar, header);
  std::getline(old_sidecar, key);
  write_bytes(sidecar_of(archive), header + "\n" + key + "\nbytes " + std::to_string(bytes.size()) + "\nxxh3-128 " +
                                       reglab::util::hash_hex(bytes) + "\n");
  EXPECT_TRUE(torch::equal(cached_corruption(dir.path(), "fmnist-test", x, "fog", 1, 0), planted));
}

TEST(CorruptionCache, DamagedOrIncompleteEntriesAreRecomputed) {
  const torch::Tensor x = test_images().narrow(0, 0, 16);
  const torch::Tensor expected = corrupt(x, "elastic_transform", 5, 2);
  const auto check = [&](const std::string& what, const std::function<void(const fs::path&)>& damage) {
    SCOPED_TRACE(what);
    TempDir dir;
    cached_corruption(dir.path(), "fmnist-test", x, "elastic_transform", 5, 2);
    const fs::path archive = corruption_cache_file(dir.path(), "fmnist-test", x, "elastic_transform", 5, 2);
    damage(archive);
    EXPECT_TRUE(torch::equal(cached_corruption(dir.path(), "fmnist-test", x, "elastic_transform", 5, 2), expected));
    // Rewritten whole: the sidecar vouches for the archive again.
    const std::string bytes = read_bytes(archive);
    const std::string side = read_bytes(sidecar_of(archive));
    EXPECT_NE(side.find("xxh3-128 " + reglab::util::hash_hex(bytes)), std::string::npos);
    EXPECT_NE(side.find("bytes " + std::to_string(bytes.size())), std::string::npos);
  };
  check("one byte flipped in the tensor data", [](const fs::path& a) {
    std::string bytes = read_bytes(a);
    bytes[bytes.size() / 2] = static_cast<char>(bytes[bytes.size() / 2] ^ 0x5A);
    write_bytes(a, bytes);
  });
  check("truncated archive", [](const fs::path& a) { fs::resize_file(a, fs::file_size(a) / 2); });
  check("archive missing", [](const fs::path& a) { fs::remove(a); });
  check("sidecar missing", [](const fs::path& a) { fs::remove(sidecar_of(a)); });
  check("sidecar for another key", [](const fs::path& a) {
    std::string side = read_bytes(sidecar_of(a));
    side.replace(side.find("seed=2"), 6, "seed=3");
    write_bytes(sidecar_of(a), side);
  });
  check("archive replaced by text", [](const fs::path& a) { write_bytes(a, "not an archive"); });
}

TEST(CorruptionCache, KeyCoversEveryArgumentAndThePixels) {
  const fs::path d = "/nonexistent-cache";
  const torch::Tensor x = test_images().narrow(0, 0, 4);
  torch::Tensor other = x.clone();
  other.index_put_({3, 0, 27, 27}, 0.5f);
  const fs::path base = corruption_cache_file(d, "a", x, "fog", 2, 1);
  EXPECT_EQ(base, corruption_cache_file(d, "a", x.clone(), "fog", 2, 1));
  EXPECT_EQ(base.parent_path(), d);
  const std::set<fs::path> paths = {base,
                                    corruption_cache_file(d, "b", x, "fog", 2, 1),
                                    corruption_cache_file(d, "a", x, "pixelate", 2, 1),
                                    corruption_cache_file(d, "a", x, "fog", 3, 1),
                                    corruption_cache_file(d, "a", x, "fog", 2, 2),
                                    corruption_cache_file(d, "a", x.narrow(0, 0, 3), "fog", 2, 1),
                                    corruption_cache_file(d, "a", other, "fog", 2, 1)};
  EXPECT_EQ(paths.size(), 7u);
  EXPECT_FALSE(fs::exists(d)) << "computing a path must not touch the disk";
}

TEST(CorruptionCache, RejectsBadArgumentsBeforeTouchingTheDisk) {
  TempDir dir;
  const torch::Tensor x = constant(2, 0.5);
  EXPECT_NE(error_of([&] { cached_corruption(dir.path() / "c", "a", x, "fogg", 2, 1); }).find("'fogg'"),
            std::string::npos);
  EXPECT_NE(error_of([&] { cached_corruption(dir.path() / "c", "a", x, "fog", 9, 1); }).find("got 9"),
            std::string::npos);
  EXPECT_NE(error_of([&] { cached_corruption(dir.path() / "c", "", x, "fog", 2, 1); }).find("dataset_id"),
            std::string::npos);
  EXPECT_NE(error_of([&] { cached_corruption(dir.path() / "c", "a", x.to(torch::kFloat64), "fog", 2, 1); })
                .find("float32"),
            std::string::npos);
  EXPECT_FALSE(fs::exists(dir.path() / "c"));
}

TEST(CorruptionCache, ConcurrentCallersAgree) {
  TempDir dir;
  const torch::Tensor x = test_images().narrow(0, 0, 64);
  const torch::Tensor expected = corrupt(x, "motion_blur", 3, 7);
  std::vector<torch::Tensor> results(4);
  std::vector<std::thread> threads;
  for (std::size_t t = 0; t < results.size(); ++t) {
    threads.emplace_back([&, t] { results[t] = cached_corruption(dir.path(), "fmnist-test", x, "motion_blur", 3, 7); });
  }
  for (std::thread& t : threads) t.join();
  for (const torch::Tensor& r : results) EXPECT_TRUE(torch::equal(r, expected));
  EXPECT_EQ(std::distance(fs::directory_iterator(dir.path()), fs::directory_iterator()), 2)
      << "one archive and one sidecar, no temporary leftovers";
  const fs::path archive = corruption_cache_file(dir.path(), "fmnist-test", x, "motion_blur", 3, 7);
  const FileId id = file_id(archive);
  EXPECT_TRUE(torch::equal(cached_corruption(dir.path(), "fmnist-test", x, "motion_blur", 3, 7), expected));
  EXPECT_TRUE(file_id(archive) == id) << "the entry the racers left must verify";
}

// ------------------------------------------------------------------ timing

TEST(CorruptionsTiming, AllTestImagesAtSeverityFive) {
  // Whole test set, severity 5, on the threads the run allows
  // (OMP_NUM_THREADS=1 for single-thread numbers). Also checks at full scale
  // that 1000 images corrupt the same alone as within the 10,000, also when
  // they start off the 256-image chunks corrupt() works in.
  const torch::Tensor& x = test_images();
  ASSERT_EQ(x.size(0), 10000);
  for (const std::string& name : corruption_names()) {
    const auto start = std::chrono::steady_clock::now();
    const torch::Tensor y = corrupt(x, name, 5, 1);
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    std::cout << "[ info ] " << name << " severity 5, 10000 images, " << at::get_num_threads()
              << " thread(s): " << seconds << " s\n";
    EXPECT_GE(y.min().item<float>(), 0.0f);
    EXPECT_LE(y.max().item<float>(), 1.0f);
    EXPECT_TRUE(torch::equal(y.narrow(0, 0, 1000), corrupt(x.narrow(0, 0, 1000), name, 5, 1))) << name;
    EXPECT_TRUE(torch::equal(y.narrow(0, 300, 1000), corrupt(x.narrow(0, 300, 1000), name, 5, 1, 300))) << name;
  }
}

}  // namespace
