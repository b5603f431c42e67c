#include "scratchnet/data/augment.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <nlohmann/json.hpp>
#include <utility>

#include "scratchnet/check.h"

namespace scratchnet {

using json = nlohmann::json;

namespace {

constexpr double kPi = 3.14159265358979323846;
constexpr int kEraseTries = 10;                                // as torchvision
constexpr float kEraseRatioMin = 0.3f, kEraseRatioMax = 3.3f;  // aspect ratios h / w

double radians(double degrees) { return degrees * kPi / 180.0; }

// splitmix64's finaliser: every input bit reaches every output bit.
uint64_t mix(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

// A^-1 for A = s R(a) Sh(h), row-major:
//   A^-1 = Sh(h)^-1 R(a)^-1 / s = [1, -tan h; 0, 1] [cos a, -sin a; sin a, cos a] / s
//        = [cos a - tan h sin a, -sin a - tan h cos a; sin a, cos a] / s
struct Inverse {
  double m00, m01, m10, m11;
};
Inverse inverse_of(const Affine& a) {
  const double c = std::cos(radians(a.angle)), s = std::sin(radians(a.angle));
  const double t = std::tan(radians(a.shear));
  return {(c - t * s) / a.scale, (-s - t * c) / a.scale, s / a.scale, c / a.scale};
}

// Every channel of output pixel `q` (an index into H x W) from the input at (px, py):
// bilinear between the four pixel centres around it, 0 outside the image, rounded to nearest.
void sample(uint8_t* out, const uint8_t* in, int64_t channels, int64_t height, int64_t width,
            int64_t q, double px, double py) {
  const int64_t plane = height * width;
  if (!(px > -1 && px < static_cast<double>(width) && py > -1 &&
        py < static_cast<double>(height))) {  // also NaN
    for (int64_t c = 0; c < channels; ++c) out[c * plane + q] = 0;
    return;
  }
  const double fx = std::floor(px), fy = std::floor(py);
  const double wx = px - fx, wy = py - fy;
  const auto x0 = static_cast<int64_t>(fx), y0 = static_cast<int64_t>(fy);
  for (int64_t c = 0; c < channels; ++c) {
    const uint8_t* p = in + c * plane;
    auto at = [&](int64_t y, int64_t x) -> double {
      return y >= 0 && y < height && x >= 0 && x < width ? p[y * width + x] : 0.0;
    };
    const double v = (1 - wy) * ((1 - wx) * at(y0, x0) + wx * at(y0, x0 + 1)) +
                     wy * ((1 - wx) * at(y0 + 1, x0) + wx * at(y0 + 1, x0 + 1));
    out[c * plane + q] = static_cast<uint8_t>(std::min<long>(255, std::lround(v)));
  }
}

// Steps 1-3 of augment.h for every output pixel; `elastic` holds alpha (dx, dy), or is null.
void warp(uint8_t* out, const uint8_t* in, int64_t channels, int64_t height, int64_t width,
          const Affine& affine, const AugmentScratch* elastic, int64_t ox, int64_t oy) {
  const Inverse m = inverse_of(affine);
  const double cx = (static_cast<double>(width) - 1) / 2,
               cy = (static_cast<double>(height) - 1) / 2;
  for (int64_t y = 0; y < height; ++y)
    for (int64_t x = 0; x < width; ++x) {
      const int64_t x1 = x + ox, y1 = y + oy;  // 1. crop
      double qx = static_cast<double>(x1), qy = static_cast<double>(y1);
      if (x1 < 0 || x1 >= width || y1 < 0 || y1 >= height) {
        qx = qy = NAN;                  // the padding
      } else if (elastic != nullptr) {  // 2. elastic
        qx += elastic->dx[y1 * width + x1];
        qy += elastic->dy[y1 * width + x1];
      }
      const double ux = qx - cx - affine.tx, uy = qy - cy - affine.ty;  // 3. affine
      sample(out, in, channels, height, width, y * width + x, cx + m.m00 * ux + m.m01 * uy,
             cy + m.m10 * ux + m.m11 * uy);
    }
}

// s.dx, s.dy (H, W): alpha times uniform(-1, 1) noise smoothed by a Gaussian of std sigma,
// zero outside the image (rows, then columns: the kernel is separable).
void elastic_fields(AugmentScratch& s, int64_t height, int64_t width, float alpha, float sigma,
                    Rng& rng) {
  const auto radius = static_cast<int64_t>(4.0 * sigma + 0.5);  // scipy's truncate=4
  s.kernel.resize(2 * radius + 1);
  double total = 0;
  for (int64_t i = -radius; i <= radius; ++i) {
    s.kernel[i + radius] =
        static_cast<float>(std::exp(-0.5 * static_cast<double>(i * i) / (sigma * sigma)));
    total += s.kernel[i + radius];
  }
  for (float& k : s.kernel) k = static_cast<float>(k / total);
  s.blur.resize(height * width);
  for (std::vector<float>* field : {&s.dx, &s.dy}) {
    std::vector<float>& f = *field;
    f.resize(height * width);
    for (float& v : f) v = rng.uniform(-1.0f, 1.0f);
    for (int64_t y = 0; y < height; ++y)
      for (int64_t x = 0; x < width; ++x) {
        double sum = 0;
        for (int64_t i = std::max(-radius, -x); i <= std::min(radius, width - 1 - x); ++i)
          sum += s.kernel[i + radius] * f[y * width + x + i];
        s.blur[y * width + x] = static_cast<float>(sum);
      }
    for (int64_t y = 0; y < height; ++y)
      for (int64_t x = 0; x < width; ++x) {
        double sum = 0;
        for (int64_t i = std::max(-radius, -y); i <= std::min(radius, height - 1 - y); ++i)
          sum += s.kernel[i + radius] * s.blur[(y + i) * width + x];
        f[y * width + x] = static_cast<float>(alpha * sum);
      }
  }
}

// Random erasing (augment.h): a rectangle of every channel set to 0, or nothing when no try
// fits.
void erase_rectangle(uint8_t* out, int64_t channels, int64_t height, int64_t width,
                     const AugmentOptions& o, Rng& rng) {
  const double area = static_cast<double>(height * width);
  const float log_min = std::log(kEraseRatioMin), log_max = std::log(kEraseRatioMax);
  for (int attempt = 0; attempt < kEraseTries; ++attempt) {
    const double target = area * rng.uniform(o.erase_area_min, o.erase_area_max);
    const double ratio = std::exp(rng.uniform(log_min, log_max));
    const int64_t h = std::lround(std::sqrt(target * ratio));
    const int64_t w = std::lround(std::sqrt(target / ratio));
    if (!(h < height && w < width)) continue;
    const auto y0 = static_cast<int64_t>(rng.below(static_cast<uint64_t>(height - h + 1)));
    const auto x0 = static_cast<int64_t>(rng.below(static_cast<uint64_t>(width - w + 1)));
    for (int64_t c = 0; c < channels; ++c)
      for (int64_t y = y0; y < y0 + h; ++y)
        std::fill_n(out + (c * height + y) * width + x0, w, uint8_t{0});
    return;
  }
}

// The float fields in their JSON order, with their names.
std::vector<std::pair<const char*, float*>> float_fields(AugmentOptions& o) {
  return {{"rotate", &o.rotate},
          {"shift", &o.shift},
          {"scale_min", &o.scale_min},
          {"scale_max", &o.scale_max},
          {"shear", &o.shear},
          {"elastic_alpha", &o.elastic_alpha},
          {"elastic_sigma", &o.elastic_sigma},
          {"erase", &o.erase},
          {"erase_area_min", &o.erase_area_min},
          {"erase_area_max", &o.erase_area_max}};
}

}  // namespace

void check_augment(const AugmentOptions& o) {
  // Written so that NaN fails every check.
  SN_CHECK(o.rotate >= 0 && o.rotate <= 180, "augment.rotate must be in [0, 180], got {}",
           o.rotate);
  SN_CHECK(o.shift >= 0 && o.shift < 1, "augment.shift must be in [0, 1), got {}", o.shift);
  SN_CHECK(o.scale_min > 0 && o.scale_min <= 10, "augment.scale_min must be in (0, 10], got {}",
           o.scale_min);
  SN_CHECK(o.scale_max >= o.scale_min && o.scale_max <= 10,
           "augment.scale_max must be in [scale_min ({}), 10], got {}", o.scale_min, o.scale_max);
  SN_CHECK(o.shear >= 0 && o.shear <= 60, "augment.shear must be in [0, 60], got {}", o.shear);
  SN_CHECK(o.elastic_alpha >= 0 && std::isfinite(o.elastic_alpha),
           "augment.elastic_alpha must be at least 0, got {}", o.elastic_alpha);
  SN_CHECK(o.elastic_alpha == 0 || (o.elastic_sigma > 0 && o.elastic_sigma <= 20),
           "augment.elastic_sigma must be in (0, 20] with elastic_alpha > 0, got {}",
           o.elastic_sigma);
  SN_CHECK(o.crop_padding >= 0 && o.crop_padding <= 1000,
           "augment.crop_padding must be in [0, 1000], got {}", o.crop_padding);
  SN_CHECK(o.erase >= 0 && o.erase <= 1, "augment.erase must be in [0, 1], got {}", o.erase);
  SN_CHECK(o.erase_area_min > 0 && o.erase_area_min <= 1,
           "augment.erase_area_min must be in (0, 1], got {}", o.erase_area_min);
  SN_CHECK(o.erase_area_max >= o.erase_area_min && o.erase_area_max <= 1,
           "augment.erase_area_max must be in [erase_area_min ({}), 1], got {}", o.erase_area_min,
           o.erase_area_max);
}

std::string augment_to_json(const AugmentOptions& options) {
  AugmentOptions o = options;
  json j = json::object();
  for (const auto& [name, field] : float_fields(o))  // floats as their shortest decimal
    j[name] = std::stod(fmt::format("{}", *field));
  j["crop_padding"] = o.crop_padding;
  return j.dump();
}

AugmentOptions augment_from_json(const std::string& text, const std::string& source) {
  AugmentOptions o;
  const auto fields = float_fields(o);
  try {
    json j = json::parse(text);
    SN_CHECK(j.is_object(), "{}: augment must be a JSON object", source);
    for (const auto& [key, value] : j.items()) {
      if (key == "crop_padding") {
        SN_CHECK(value.is_number_integer(), "{}: augment.crop_padding must be an integer, got {}",
                 source, value.dump());
        o.crop_padding = value.get<int64_t>();
        continue;
      }
      auto it = std::find_if(fields.begin(), fields.end(),
                             [&](const auto& field) { return key == field.first; });
      if (it == fields.end()) fail("{}: unknown field 'augment.{}'", source, key);
      SN_CHECK(value.is_number(), "{}: augment.{} must be a number, got {}", source, key,
               value.dump());
      *it->second = value.get<float>();
    }
  } catch (const json::exception& e) {
    fail("{}: augment is not valid JSON: {}", source, e.what());
  }
  try {
    check_augment(o);
  } catch (const Error& e) {
    fail("{}: {}", source, e.what());
  }
  return o;
}

std::string describe_augment(const AugmentOptions& o) {
  std::vector<std::string> parts;
  if (o.rotate > 0) parts.push_back(fmt::format("rotate {} deg", o.rotate));
  if (o.shift > 0) parts.push_back(fmt::format("shift {}", o.shift));
  if (o.scale_min != 1 || o.scale_max != 1)
    parts.push_back(fmt::format("scale {}-{}", o.scale_min, o.scale_max));
  if (o.shear > 0) parts.push_back(fmt::format("shear {} deg", o.shear));
  if (o.elastic_alpha > 0)
    parts.push_back(fmt::format("elastic alpha {} sigma {}", o.elastic_alpha, o.elastic_sigma));
  if (o.crop_padding > 0) parts.push_back(fmt::format("crop padding {}", o.crop_padding));
  if (o.erase > 0)
    parts.push_back(
        fmt::format("erase {} (area {}-{})", o.erase, o.erase_area_min, o.erase_area_max));
  return parts.empty() ? "none" : fmt::format("{}", fmt::join(parts, ", "));
}

uint64_t augment_seed(uint64_t seed, int64_t epoch, int64_t position) {
  // A salt keeps these streams apart from the loader's shuffling stream of the same seed.
  uint64_t h = mix(seed ^ 0x6175676d656e74ULL);  // "augment"
  h = mix(h ^ static_cast<uint64_t>(epoch));
  return mix(h ^ static_cast<uint64_t>(position));
}

void augment_image(uint8_t* out, const uint8_t* in, int64_t channels, int64_t height, int64_t width,
                   const AugmentOptions& o, Rng& rng, AugmentScratch& scratch) {
  if (!o.active()) {
    std::copy(in, in + channels * height * width, out);
    return;
  }
  Affine affine;
  if (o.rotate > 0) affine.angle = rng.uniform(-o.rotate, o.rotate);
  if (o.scale_min != 1 || o.scale_max != 1) affine.scale = rng.uniform(o.scale_min, o.scale_max);
  if (o.shear > 0) affine.shear = rng.uniform(-o.shear, o.shear);
  if (o.shift > 0) {
    const float max_x = o.shift * static_cast<float>(width);
    const float max_y = o.shift * static_cast<float>(height);
    affine.tx = std::round(rng.uniform(-max_x, max_x));
    affine.ty = std::round(rng.uniform(-max_y, max_y));
  }
  const bool elastic = o.elastic_alpha > 0;
  if (elastic) elastic_fields(scratch, height, width, o.elastic_alpha, o.elastic_sigma, rng);
  int64_t ox = 0, oy = 0;
  if (o.crop_padding > 0) {
    const auto choices = static_cast<uint64_t>(2 * o.crop_padding + 1);
    ox = static_cast<int64_t>(rng.below(choices)) - o.crop_padding;
    oy = static_cast<int64_t>(rng.below(choices)) - o.crop_padding;
  }
  warp(out, in, channels, height, width, affine, elastic ? &scratch : nullptr, ox, oy);
  if (o.erase > 0 && rng.uniform() < o.erase) erase_rectangle(out, channels, height, width, o, rng);
}

void affine_image(uint8_t* out, const uint8_t* in, int64_t channels, int64_t height, int64_t width,
                  const Affine& affine) {
  SN_CHECK(affine.scale > 0 && std::isfinite(affine.scale),
           "affine_image: scale must be positive, got {}", affine.scale);
  warp(out, in, channels, height, width, affine, nullptr, 0, 0);
}

}  // namespace scratchnet
