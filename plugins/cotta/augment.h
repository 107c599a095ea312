// CoTTA's test-time augmentations as image transforms on [B, C, H, W]
// tensors, in the spirit of the official `cifar/cotta.py::get_tta_transforms`
// (qinenergy/cotta @ c212a20). Header-only so that the golden tests can check
// the transforms themselves.
//
// One augmentation draws one set of geometric parameters for the whole batch,
// as the torchvision transforms of the official code do on a batched tensor;
// the noise is drawn per element. Order, as in the official pipeline:
//   clip → affine (rotation, scale, translation; edge pixels replicated) →
//   horizontal flip → + N(0, σ²) → clip
// Inputs of any other rank (feature vectors) get the pointwise part only:
//   clip → + N(0, σ²) → clip
#pragma once

#include <ATen/CPUGeneratorImpl.h>
#include <torch/nn/functional/vision.h>
#include <torch/types.h>

#include <cmath>
#include <cstdint>
#include <numbers>
#include <stdexcept>

namespace reglab::cotta {

struct AugmentOptions {
  double max_rotation_deg = 15.0;  // angle ~ U[-max, max] degrees
  // Translation ~ U[-t, t] of the side, per axis, rounded to whole pixels as
  // torchvision's RandomAffine does. The official pipeline pads the image to
  // twice its side and translates by up to 1/16 of that, i.e. 1/8 of the image.
  double max_translate = 0.125;
  double min_scale = 0.9;
  double max_scale = 1.1;
  double flip_probability = 0.5;
  double noise_std = 0.005;
  bool clip = true;  // clip to [0, 1] before and after, as the official Clip transforms
};

struct AffineDraw {
  double angle_deg = 0;  // counter-clockwise as displayed (y pointing down)
  double tx = 0;         // pixels, positive = right
  double ty = 0;         // pixels, positive = down
  double scale = 1;
  bool flip = false;
};

inline at::Generator make_generator(std::uint64_t seed) { return at::detail::createCPUGenerator(seed); }

// The sampling grid maps each output pixel q back to p = (sR)⁻¹(q − c − t) + c;
// affine_grid works in coordinates normalised to [-1, 1] per axis, hence the
// conversions by half the width and height.
inline torch::Tensor affine_image(const torch::Tensor& x, const AffineDraw& d) {
  if (x.dim() != 4) throw std::invalid_argument("cotta: affine augmentation needs [B, C, H, W] inputs");
  const double w = static_cast<double>(x.size(3)), h = static_cast<double>(x.size(2));
  const double a = d.angle_deg * std::numbers::pi / 180.0;
  const double c = std::cos(a), s = std::sin(a);
  // Inverse of s·[[c, s], [−s, c]] in pixel units.
  const double i00 = c / d.scale, i01 = -s / d.scale, i10 = s / d.scale, i11 = c / d.scale;
  const double sx = w / 2.0, sy = h / 2.0;
  const double a00 = i00, a01 = i01 * sy / sx, a10 = i10 * sx / sy, a11 = i11;
  const double b0 = -(i00 * d.tx + i01 * d.ty) / sx;
  const double b1 = -(i10 * d.tx + i11 * d.ty) / sy;
  torch::Tensor out = x;
  const bool identity = d.angle_deg == 0 && d.tx == 0 && d.ty == 0 && d.scale == 1;
  if (!identity) {
    const torch::Tensor theta =
        torch::tensor({a00, a01, b0, a10, a11, b1}, torch::kDouble).view({1, 2, 3}).to(x.options())
            .expand({x.size(0), 2, 3});
    const torch::Tensor grid = torch::nn::functional::affine_grid(theta, x.sizes(), /*align_corners=*/false);
    out = torch::nn::functional::grid_sample(x, grid,
                                             torch::nn::functional::GridSampleFuncOptions()
                                                 .mode(torch::kBilinear)
                                                 .padding_mode(torch::kBorder)
                                                 .align_corners(false));
  }
  if (d.flip) out = out.flip({3});
  return out;
}

// Draw order: angle, tx, ty, scale, flip (one uniform each), then the noise.
inline AffineDraw draw_affine(const torch::Tensor& x, const AugmentOptions& o, at::Generator& gen) {
  const torch::Tensor u = torch::rand({5}, gen, torch::kDouble);
  const auto uniform = [&](std::int64_t i, double lo, double hi) { return lo + (hi - lo) * u[i].item<double>(); };
  const double max_dx = o.max_translate * static_cast<double>(x.size(3));
  const double max_dy = o.max_translate * static_cast<double>(x.size(2));
  AffineDraw d;
  d.angle_deg = uniform(0, -o.max_rotation_deg, o.max_rotation_deg);
  d.tx = std::round(uniform(1, -max_dx, max_dx));
  d.ty = std::round(uniform(2, -max_dy, max_dy));
  d.scale = uniform(3, o.min_scale, o.max_scale);
  d.flip = u[4].item<double>() < o.flip_probability;
  return d;
}

inline torch::Tensor augment(const torch::Tensor& x, const AugmentOptions& o, at::Generator& gen) {
  torch::Tensor out = o.clip ? x.clamp(0.0, 1.0) : x;
  if (x.dim() == 4) out = affine_image(out, draw_affine(x, o, gen));
  if (o.noise_std > 0) {
    const torch::Tensor noise = torch::randn(out.sizes(), gen, torch::TensorOptions().dtype(out.scalar_type()));
    out = out + noise.to(out.device()) * o.noise_std;
  }
  return o.clip ? out.clamp(0.0, 1.0) : out;
}

}  // namespace reglab::cotta
