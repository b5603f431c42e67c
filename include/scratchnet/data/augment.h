// augment.h — seeded data augmentation of uint8 images: random affine, elastic distortion,
// random crop with zero padding, random erasing.
//
//   AugmentOptions a{.rotate = 10, .shift = 0.1f, .scale_min = 0.9f, .scale_max = 1.1f};
//   Rng rng(augment_seed(seed, epoch, position));
//   augment_image(out, set.image(i), set.channels, set.height, set.width, a, rng, scratch);
//
// An image is (C, H, W) uint8, 0 the background; the output has the same shape. Every channel
// goes through the same transformation. Coordinates are those of pixel centres: x = 0..W-1 to
// the right, y = 0..H-1 downwards, c = ((W - 1) / 2, (H - 1) / 2) the centre.
//
// The random draws, in this order, each only when its option is on:
//   angle  a  uniform in [-rotate, rotate] degrees (counter-clockwise as seen)
//   scale  s  uniform in [scale_min, scale_max]
//   shear  h  uniform in [-shear, shear] degrees (along x)
//   shift  t  (tx, ty) = (round(U(-shift W, shift W)), round(U(-shift H, shift H))): whole pixels
//   elastic   per-pixel displacements, see below
//   crop      (ox, oy), each uniform in {0, ..., 2 crop_padding}
//   erase     with probability `erase`, a rectangle, see below
// The geometric steps are one inverse mapping and one bilinear sample: for each output pixel
// q = (x, y)
//   1. crop:     q1 = q + (ox - P, oy - P)        (P = crop_padding; zero if q1 is outside)
//   2. elastic:  q2 = q1 + alpha (dx(q1), dy(q1))
//   3. affine:   p  = c + A^-1 (q2 - c - t),  A = s R(a) Sh(h),
//                R(a) = [cos a, sin a; -sin a, cos a],  Sh(h) = [1, tan h; 0, 1]
//   out(q) = bilinear sample of the input at p (0 outside the image), rounded to nearest.
// That is: the image is sheared, rotated and scaled about its centre and shifted (forward map
// q = c + t + A (p - c)), then elastically distorted, then padded by P zeros on every side and
// cropped back to H x W at (ox, oy). Elastic distortion is Simard, Steinkraus and Platt (2003):
// dx, dy are fields of uniform(-1, 1) values per pixel, each convolved with a Gaussian of
// standard deviation sigma (zero outside the image, radius round(4 sigma): scipy's
// gaussian_filter with mode "constant"), then scaled by alpha (pixels).
// Random erasing (Zhong et al. 2017, torchvision RandomErasing with value 0): up to 10 tries
// draw an area fraction U(erase_area_min, erase_area_max) of H W and an aspect ratio
// exp(U(log 0.3, log 3.3)); the first rectangle (h = round(sqrt(area ratio)),
// w = round(sqrt(area / ratio))) that fits inside the image, placed uniformly, is set to 0.
//
// PyTorch equivalent: torchvision.transforms.RandomAffine(degrees=rotate, translate=(shift,
// shift), scale=(scale_min, scale_max), shear=shear) with bilinear interpolation, then an
// elastic transform, RandomCrop(H, padding=P) and RandomErasing. No flips: they change digits.
//
// Determinism: the draws come only from the Rng given. The loader (loader.h) seeds it with
// augment_seed(seed, epoch, position) for the item at `position` in epoch `epoch`, so what an
// item becomes does not depend on threads, timing or on where a run was resumed.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "scratchnet/rng.h"

namespace scratchnet {

struct AugmentOptions {
  float rotate = 0;              // degrees, in [0, 180]
  float shift = 0;               // fraction of the width and height, in [0, 1)
  float scale_min = 1;           // in (0, 10]
  float scale_max = 1;           // in [scale_min, 10]
  float shear = 0;               // degrees, in [0, 60]
  float elastic_alpha = 0;       // pixels, finite and >= 0; 0: no elastic distortion
  float elastic_sigma = 0;       // pixels, in (0, 20] when elastic_alpha > 0
  int64_t crop_padding = 0;      // pixels, in [0, 1000]
  float erase = 0;               // probability, in [0, 1]
  float erase_area_min = 0.02f;  // fraction of the image, in (0, 1]
  float erase_area_max = 0.33f;  // in [erase_area_min, 1]

  bool active() const {
    return rotate > 0 || shift > 0 || scale_min != 1 || scale_max != 1 || shear > 0 ||
           elastic_alpha > 0 || crop_padding > 0 || erase > 0;
  }
};

// The `scratchnet train --augment` preset for handwritten digits (MNIST, EMNIST, KMNIST):
// RandomAffine(degrees=10, translate=(0.1, 0.1), scale=(0.9, 1.1)); no shear, elastic
// distortion, cropping or erasing.
inline constexpr AugmentOptions kDigitAugment{
    .rotate = 10, .shift = 0.1f, .scale_min = 0.9f, .scale_max = 1.1f};

// Throws a one-line message naming the field ("augment.rotate must be in [0, 180], got 200").
void check_augment(const AugmentOptions& options);
// {"rotate": 10, "shift": 0.1, ...}: every field; reading checks types and values like
// recipe_from_json, naming `source`, and rejects unknown fields.
std::string augment_to_json(const AugmentOptions& options);
AugmentOptions augment_from_json(const std::string& json_text, const std::string& source);
// One line: "rotate 10 deg, shift 0.1, scale 0.9-1.1", or "none".
std::string describe_augment(const AugmentOptions& options);

// The seed of the Rng for the item at `position` (0-based, in the epoch's order) of epoch
// `epoch` (0-based) of a run seeded with `seed`.
uint64_t augment_seed(uint64_t seed, int64_t epoch, int64_t position);

// Buffers augment_image reuses (the elastic displacement fields); they grow to the largest
// image seen and are never shrunk, so a loop over same-sized images allocates once.
struct AugmentScratch {
  std::vector<float> dx, dy, blur, kernel;
};

// out (C, H, W) from in (C, H, W), both uint8 and not overlapping: the steps above with draws
// from `rng`. With inactive options it is an exact copy and draws nothing.
void augment_image(uint8_t* out, const uint8_t* in, int64_t channels, int64_t height, int64_t width,
                   const AugmentOptions& options, Rng& rng, AugmentScratch& scratch);

// A fixed affine transformation (torchvision.transforms.functional.affine): step 3 above.
struct Affine {
  double angle = 0;       // degrees, counter-clockwise as seen
  double scale = 1;       // > 0
  double shear = 0;       // degrees, along x
  double tx = 0, ty = 0;  // pixels, right and down
};
// out (C, H, W) from in (C, H, W): out(q) = bilinear(in, c + A^-1 (q - c - t)), 0 outside.
void affine_image(uint8_t* out, const uint8_t* in, int64_t channels, int64_t height, int64_t width,
                  const Affine& affine);

}  // namespace scratchnet
