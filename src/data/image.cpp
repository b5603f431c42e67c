#include "scratchnet/data/image.h"

#include <stb_image.h>
#include <stb_image_write.h>

#include <algorithm>
#include <cctype>
#include <climits>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>

#include "scratchnet/check.h"
#include "scratchnet/io/atomic_file.h"

namespace scratchnet {

namespace {

constexpr uint8_t kPngSignature[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};

void append_bytes(void* context, void* data, int size) {
  auto* out = static_cast<std::vector<uint8_t>*>(context);
  const auto* p = static_cast<const uint8_t*>(data);
  out->insert(out->end(), p, p + size);
}

// stb_image's JPEG decoder reads past the end of a truncated file as zeros and reports
// success, so the marker structure is walked here: segments up to each start-of-scan, the
// entropy-coded data after it, until the end-of-image marker. Bytes between segments that are
// not a marker are skipped (as libjpeg does, with a warning); only a missing end is an error.
bool jpeg_is_complete(std::span<const uint8_t> b) {
  size_t i = 2;  // after the start-of-image marker FF D8
  const size_t n = b.size();
  while (i < n) {
    if (b[i] != 0xFF) {
      ++i;
      continue;
    }
    while (i < n && b[i] == 0xFF) ++i;  // fill bytes
    if (i >= n) return false;
    const uint8_t marker = b[i++];
    if (marker == 0xD9) return true;  // end of image
    if (marker == 0x00 || marker == 0x01 || (marker >= 0xD0 && marker <= 0xD8)) continue;
    if (i + 2 > n) return false;
    const size_t length = (static_cast<size_t>(b[i]) << 8) | b[i + 1];
    if (length < 2) return false;
    i += length;
    if (marker != 0xDA) continue;
    // Entropy-coded data: FF is followed by 00 (a stuffed byte) or a restart marker inside
    // it; anything else is the next marker.
    while (i + 1 < n && !(b[i] == 0xFF && b[i + 1] != 0x00 && (b[i + 1] < 0xD0 || b[i + 1] > 0xD7)))
      ++i;
    if (i + 1 >= n) return false;
  }
  return false;
}

// Width and height from a PNG's IHDR or a JPEG's start-of-frame segment, read here so that
// absurd sizes get their own message (stb_image refuses them as an unknown image type).
bool header_dimensions(int64_t& w, int64_t& h, std::span<const uint8_t> b,
                       const std::string& format) {
  auto be = [&](size_t i, int bytes) {
    int64_t v = 0;
    for (int k = 0; k < bytes; ++k) v = (v << 8) | b[i + k];
    return v;
  };
  if (format == "png") {
    if (b.size() < 24 || std::memcmp(b.data() + 12, "IHDR", 4) != 0) return false;
    w = be(16, 4), h = be(20, 4);
    return true;
  }
  size_t i = 2;
  while (i + 4 <= b.size()) {
    if (b[i] != 0xFF) return false;
    const uint8_t marker = b[i + 1];
    if (marker == 0xFF) {
      ++i;
      continue;
    }
    const bool frame =
        marker >= 0xC0 && marker <= 0xCF && marker != 0xC4 && marker != 0xC8 && marker != 0xCC;
    if (frame) {
      if (i + 9 > b.size()) return false;
      h = be(i + 5, 2), w = be(i + 7, 2);
      return true;
    }
    if (marker == 0xDA || marker == 0xD9) return false;
    if (marker == 0x01 || (marker >= 0xD0 && marker <= 0xD8)) {  // no length
      i += 2;
      continue;
    }
    i += 2 + static_cast<size_t>(be(i + 2, 2));
  }
  return false;
}

struct StbFree {
  void operator()(unsigned char* p) const { stbi_image_free(p); }
};

const char* stb_reason() {
  const char* r = stbi_failure_reason();
  return r ? r : "unknown error";
}

// Per output index j of an axis of length `out_n` read from `in_n`: the first input index and
// the weights of the inputs it reads, in order.
struct AxisTaps {
  std::vector<int64_t> first;   // (out_n)
  std::vector<int64_t> offset;  // (out_n + 1) into weights
  std::vector<float> weights;   // the taps, concatenated
};

AxisTaps axis_taps(int64_t in_n, int64_t out_n) {
  AxisTaps t;
  t.offset.push_back(0);
  if (out_n <= in_n) {
    // Area: output j covers input [j * s, (j + 1) * s); each input pixel weighs its overlap.
    const double s = static_cast<double>(in_n) / static_cast<double>(out_n);
    for (int64_t j = 0; j < out_n; ++j) {
      const double lo = j * s, hi = (j + 1) * s;
      const int64_t a = static_cast<int64_t>(std::floor(lo));
      const int64_t z = std::min<int64_t>(in_n, static_cast<int64_t>(std::ceil(hi)));
      t.first.push_back(a);
      for (int64_t k = a; k < z; ++k) {
        const double overlap = std::min<double>(hi, k + 1) - std::max<double>(lo, k);
        t.weights.push_back(static_cast<float>(std::max(0.0, overlap) / s));
      }
      t.offset.push_back(static_cast<int64_t>(t.weights.size()));
    }
    return t;
  }
  // Bilinear: output centre j + 0.5 maps to input coordinate (j + 0.5) * in / out - 0.5.
  const double s = static_cast<double>(in_n) / static_cast<double>(out_n);
  for (int64_t j = 0; j < out_n; ++j) {
    const double x = std::clamp((j + 0.5) * s - 0.5, 0.0, static_cast<double>(in_n - 1));
    const int64_t x0 = static_cast<int64_t>(std::floor(x));
    const int64_t x1 = std::min(x0 + 1, in_n - 1);
    const float f = static_cast<float>(x - x0);
    t.first.push_back(x0);
    t.weights.push_back(1.0f - f);
    if (x1 != x0) t.weights.push_back(f);
    t.offset.push_back(static_cast<int64_t>(t.weights.size()));
  }
  return t;
}

uint8_t to_byte(float v) { return static_cast<uint8_t>(std::lround(std::clamp(v, 0.0f, 255.0f))); }

}  // namespace

std::string image_format(std::span<const uint8_t> bytes) {
  if (bytes.size() >= 8 && std::memcmp(bytes.data(), kPngSignature, 8) == 0) return "png";
  if (bytes.size() >= 3 && bytes[0] == 0xFF && bytes[1] == 0xD8 && bytes[2] == 0xFF) return "jpeg";
  return "";
}

bool has_image_extension(const std::string& path) {
  std::string ext = std::filesystem::path(path).extension().string();
  for (char& c : ext) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return ext == ".png" || ext == ".jpg" || ext == ".jpeg";
}

Image decode_image(std::span<const uint8_t> bytes, const std::string& source,
                   const ImageLimits& limits) {
  SN_CHECK(!bytes.empty(), "{}: empty file, expected a PNG or JPEG image", source);
  const std::string format = image_format(bytes);
  SN_CHECK(!format.empty(), "{}: not a PNG or JPEG image (it starts with {:02x})", source,
           fmt::join(bytes.subspan(0, std::min<size_t>(bytes.size(), 4)), ""));
  SN_CHECK(bytes.size() <= static_cast<size_t>(INT_MAX), "{}: {} bytes is too large a file", source,
           bytes.size());
  auto check_size = [&](int64_t w, int64_t h) {
    SN_CHECK(w <= limits.max_side && h <= limits.max_side && w * h <= limits.max_pixels,
             "{}: image of {}x{} pixels is too large (at most {} pixels a side and {} "
             "megapixels)",
             source, w, h, limits.max_side, limits.max_pixels / 1'000'000);
  };
  int64_t header_w = 0, header_h = 0;
  if (header_dimensions(header_w, header_h, bytes, format)) check_size(header_w, header_h);
  const auto* data = reinterpret_cast<const stbi_uc*>(bytes.data());
  const int size = static_cast<int>(bytes.size());
  int w = 0, h = 0, comp = 0;
  if (!stbi_info_from_memory(data, size, &w, &h, &comp))
    fail("{}: corrupt {} header (stb_image: {})", source, format, stb_reason());
  SN_CHECK(w > 0 && h > 0, "{}: image of {}x{} pixels is empty", source, w, h);
  check_size(w, h);
  SN_CHECK(comp >= 1 && comp <= 4, "{}: {} channels, expected 1 to 4", source, comp);
  if (format == "jpeg")
    SN_CHECK(jpeg_is_complete(bytes), "{}: truncated JPEG (no end-of-image marker)", source);
  int w2 = 0, h2 = 0, c2 = 0;
  std::unique_ptr<unsigned char, StbFree> pixels(
      stbi_load_from_memory(data, size, &w2, &h2, &c2, comp));
  if (!pixels) fail("{}: corrupt or truncated {} (stb_image: {})", source, format, stb_reason());
  SN_CHECK(w2 == w && h2 == h, "{}: {} header says {}x{} but the data is {}x{}", source, format, w,
           h, w2, h2);
  Image image{.source = source, .height = h, .width = w, .channels = comp};
  image.pixels.assign(pixels.get(), pixels.get() + static_cast<size_t>(w) * h * comp);
  return image;
}

std::vector<uint8_t> read_file_bytes(const std::string& path, int64_t max_bytes) {
  std::error_code ec;
  SN_CHECK(std::filesystem::exists(path, ec), "{}: no such file", path);
  SN_CHECK(!std::filesystem::is_directory(path, ec), "{}: is a directory, expected a file", path);
  std::ifstream in(path, std::ios::binary | std::ios::ate);
  SN_CHECK(in.good(), "{}: cannot open for reading", path);
  const std::streamoff size = in.tellg();
  SN_CHECK(size >= 0, "{}: cannot tell the size", path);
  SN_CHECK(size <= max_bytes, "{}: file of {} bytes is too large (at most {})", path, size,
           max_bytes);
  std::vector<uint8_t> bytes(static_cast<size_t>(size));
  in.seekg(0);
  in.read(reinterpret_cast<char*>(bytes.data()), size);
  SN_CHECK(in.good() || size == 0, "{}: read error", path);
  return bytes;
}

Image read_image(const std::string& path, const ImageLimits& limits) {
  std::vector<uint8_t> bytes = read_file_bytes(path, limits.max_bytes);
  return decode_image(bytes, path, limits);
}

std::vector<uint8_t> encode_png(const uint8_t* pixels, int64_t height, int64_t width,
                                int64_t channels) {
  const ImageLimits limits;
  SN_CHECK(height > 0 && width > 0 && height <= limits.max_side && width <= limits.max_side &&
               (channels == 1 || channels == 3),
           "encode_png: cannot encode {}x{} pixels of {} channels", height, width, channels);
  std::vector<uint8_t> png;
  const int w = static_cast<int>(width), h = static_cast<int>(height);
  const int c = static_cast<int>(channels);
  SN_CHECK(stbi_write_png_to_func(append_bytes, &png, w, h, c, pixels, w * c) != 0,
           "encode_png: cannot encode a {}x{} PNG", height, width);
  return png;
}

void write_png(const std::string& path, const uint8_t* pixels, int64_t height, int64_t width,
               int64_t channels) {
  const std::vector<uint8_t> png = encode_png(pixels, height, width, channels);
  write_file_atomic(path, [&](std::FILE* f) { std::fwrite(png.data(), 1, png.size(), f); });
}

void image_to_gray(std::vector<float>& out, const Image& image) {
  const int64_t n = image.height * image.width;
  const int64_t c = image.channels;
  SN_CHECK(c >= 1 && c <= 4 && static_cast<int64_t>(image.pixels.size()) == n * c,
           "{}: {} bytes do not hold {}x{} pixels of {} channels", image.source,
           image.pixels.size(), image.height, image.width, c);
  out.resize(n);  // (height, width)
  const uint8_t* p = image.pixels.data();
  for (int64_t i = 0; i < n; ++i, p += c) {
    float y = c <= 2 ? p[0] : 0.299f * p[0] + 0.587f * p[1] + 0.114f * p[2];
    if (c == 2 || c == 4) {
      const float a = p[c - 1] / 255.0f;
      y = y * a + 255.0f * (1.0f - a);
    }
    out[i] = y;
  }
}

void resize_gray(std::vector<float>& out, const std::vector<float>& in, int64_t in_h, int64_t in_w,
                 int64_t out_h, int64_t out_w) {
  SN_CHECK(in_h >= 1 && in_w >= 1 && out_h >= 1 && out_w >= 1 &&
               static_cast<int64_t>(in.size()) == in_h * in_w,
           "resize_gray: cannot resize {} values as {}x{} to {}x{}", in.size(), in_h, in_w, out_h,
           out_w);
  const AxisTaps tx = axis_taps(in_w, out_w), ty = axis_taps(in_h, out_h);
  std::vector<float> rows(in_h * out_w);  // (in_h, out_w): each row resized
  for (int64_t y = 0; y < in_h; ++y)
    for (int64_t j = 0; j < out_w; ++j) {
      float s = 0;
      for (int64_t k = tx.offset[j]; k < tx.offset[j + 1]; ++k)
        s += tx.weights[k] * in[y * in_w + tx.first[j] + (k - tx.offset[j])];
      rows[y * out_w + j] = s;
    }
  out.assign(out_h * out_w, 0.0f);  // (out_h, out_w)
  for (int64_t i = 0; i < out_h; ++i)
    for (int64_t k = ty.offset[i]; k < ty.offset[i + 1]; ++k) {
      const float wgt = ty.weights[k];
      const float* src = rows.data() + (ty.first[i] + (k - ty.offset[i])) * out_w;
      float* dst = out.data() + i * out_w;
      for (int64_t j = 0; j < out_w; ++j) dst[j] += wgt * src[j];
    }
}

void gray_to_mnist_style(std::vector<uint8_t>& out, const std::vector<float>& gray, int64_t height,
                         int64_t width, const std::string& source, const MnistStyle& style) {
  SN_CHECK(style.box >= 1 && style.box <= style.size,
           "MnistStyle: box {} must be between 1 and size {}", style.box, style.size);
  SN_CHECK(height >= 1 && width >= 1 && static_cast<int64_t>(gray.size()) == height * width,
           "{}: {} gray values for a {}x{} image", source, gray.size(), height, width);
  // 2. The background is the median of the border; light backgrounds are inverted.
  std::vector<float> border;
  for (int64_t x = 0; x < width; ++x) {
    border.push_back(gray[x]);
    if (height > 1) border.push_back(gray[(height - 1) * width + x]);
  }
  for (int64_t y = 1; y + 1 < height; ++y) {
    border.push_back(gray[y * width]);
    if (width > 1) border.push_back(gray[y * width + width - 1]);
  }
  auto mid = border.begin() + static_cast<std::ptrdiff_t>(border.size() / 2);
  std::nth_element(border.begin(), mid, border.end());
  const bool invert = *mid > 127.5f;
  const float background = invert ? 255.0f - *mid : *mid;
  std::vector<float> ink(gray.size());  // (height, width), bright ink on black
  float strongest = 0;
  for (size_t i = 0; i < gray.size(); ++i) {
    ink[i] = invert ? 255.0f - gray[i] : gray[i];
    strongest = std::max(strongest, ink[i]);
  }
  const float contrast = strongest - background;
  SN_CHECK(contrast > 0 && contrast >= style.min_contrast * 255.0f,
           "{}: no ink found: the image is blank (its strongest pixel differs from the "
           "background by {:.0f} of 255 levels, at least {:.0f} needed)",
           source, std::max(0.0f, contrast), style.min_contrast * 255.0f);
  // Full ink is the median of the pixels past half the contrast (the cores of the strokes),
  // not the single strongest pixel, which may be noise or a JPEG overshoot.
  std::vector<float> inked;
  for (float v : ink)
    if (v > background + contrast / 2) inked.push_back(v);
  auto core = inked.begin() + static_cast<std::ptrdiff_t>(inked.size() / 2);
  std::nth_element(inked.begin(), core, inked.end());
  const float full = *core - background;
  // 3. Levels: background 0, full ink 255. 4. Bounding box of the ink.
  const float threshold = style.ink_threshold * 255.0f;
  int64_t top = height, bottom = -1, left = width, right = -1;
  for (int64_t y = 0; y < height; ++y)
    for (int64_t x = 0; x < width; ++x) {
      float& v = ink[y * width + x];
      v = std::clamp((v - background) / full, 0.0f, 1.0f) * 255.0f;
      if (v > threshold) {
        top = std::min(top, y), bottom = std::max(bottom, y);
        left = std::min(left, x), right = std::max(right, x);
      }
    }
  if (bottom < 0) top = 0, bottom = height - 1, left = 0, right = width - 1;  // threshold >= 1
  const int64_t crop_h = bottom - top + 1, crop_w = right - left + 1;
  std::vector<float> crop(crop_h * crop_w);  // (crop_h, crop_w)
  for (int64_t y = 0; y < crop_h; ++y)
    std::copy_n(ink.begin() + (top + y) * width + left, crop_w, crop.begin() + y * crop_w);
  // 5. The longer side becomes `box` pixels.
  const double scale =
      static_cast<double>(style.box) / static_cast<double>(std::max(crop_h, crop_w));
  const int64_t h = std::clamp<int64_t>(std::lround(crop_h * scale), 1, style.box);
  const int64_t w = std::clamp<int64_t>(std::lround(crop_w * scale), 1, style.box);
  std::vector<float> scaled;  // (h, w)
  resize_gray(scaled, crop, crop_h, crop_w, h, w);
  // 6. Whole-pixel shift putting the centre of mass (of the bytes written) at size / 2.
  std::vector<uint8_t> boxed(h * w);  // (h, w)
  double mass = 0, my = 0, mx = 0;
  for (int64_t y = 0; y < h; ++y)
    for (int64_t x = 0; x < w; ++x) {
      const uint8_t v = to_byte(scaled[y * w + x]);
      boxed[y * w + x] = v;
      mass += v, my += static_cast<double>(v) * y, mx += static_cast<double>(v) * x;
    }
  const double centre = static_cast<double>(style.size) / 2.0;
  int64_t oy = (style.size - h) / 2, ox = (style.size - w) / 2;
  if (mass > 0) {
    oy = std::clamp<int64_t>(std::lround(centre - my / mass), 0, style.size - h);
    ox = std::clamp<int64_t>(std::lround(centre - mx / mass), 0, style.size - w);
  }
  out.assign(style.size * style.size, 0);  // (size, size)
  for (int64_t y = 0; y < h; ++y)
    std::copy_n(boxed.begin() + y * w, w, out.begin() + (oy + y) * style.size + ox);
}

void to_mnist_style(std::vector<uint8_t>& out, const Image& image, const MnistStyle& style) {
  std::vector<float> gray;
  image_to_gray(gray, image);
  gray_to_mnist_style(out, gray, image.height, image.width, image.source, style);
}

}  // namespace scratchnet
