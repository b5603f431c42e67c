#include <fmt/format.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <stb_image_write.h>

#include <cmath>
#include <filesystem>
#include <fstream>

#include "scratchnet/data/idx.h"
#include "scratchnet/data/image.h"
#include "scratchnet/rng.h"
#include "support/error.h"
#include "support/temp_dir.h"

namespace scratchnet {
namespace {

using testing::error_of;
using ::testing::HasSubstr;
using testing::TempDir;

// A canvas (h, w) of `paper` with thick strokes of `ink` along the segments (y0, x0, y1, x1),
// edges anti-aliased over one pixel.
std::vector<float> draw(int64_t h, int64_t w, const std::vector<std::array<float, 4>>& segments,
                        float radius, float paper, float ink) {
  std::vector<float> c(h * w, paper);  // (h, w)
  for (int64_t y = 0; y < h; ++y)
    for (int64_t x = 0; x < w; ++x) {
      float d = 1e9f;
      for (const auto& s : segments) {
        const float dy = s[2] - s[0], dx = s[3] - s[1];
        const float t = std::clamp(
            ((y - s[0]) * dy + (x - s[1]) * dx) / (dy * dy + dx * dx + 1e-9f), 0.0f, 1.0f);
        d = std::min(d, std::hypot(y - (s[0] + t * dy), x - (s[1] + t * dx)));
      }
      const float cover = std::clamp(radius + 0.5f - d, 0.0f, 1.0f);
      c[y * w + x] = paper + cover * (ink - paper);
    }
  return c;
}

// A "7" drawn off-centre on a 200 x 200 canvas: top bar and a long diagonal.
std::vector<float> seven(float paper, float ink) {
  return draw(200, 200, {{{30, 100, 30, 170}}, {{30, 170, 150, 120}}}, 6.0f, paper, ink);
}

std::vector<uint8_t> bytes_of(const std::vector<float>& v) {
  std::vector<uint8_t> b(v.size());
  for (size_t i = 0; i < v.size(); ++i) b[i] = static_cast<uint8_t>(std::lround(v[i]));
  return b;
}

Image gray_image(const std::vector<float>& g, int64_t h, int64_t w) {
  return Image{.source = "canvas", .height = h, .width = w, .channels = 1, .pixels = bytes_of(g)};
}

struct Stats {
  double com_y = 0, com_x = 0;
  int64_t top = 99, bottom = -1, left = 99, right = -1;
  int max = 0;
};
Stats stats(const std::vector<uint8_t>& d, int64_t side = 28) {
  Stats s;
  double mass = 0;
  for (int64_t y = 0; y < side; ++y)
    for (int64_t x = 0; x < side; ++x) {
      const uint8_t v = d[y * side + x];
      mass += v, s.com_y += v * y, s.com_x += v * x;
      s.max = std::max<int>(s.max, v);
      if (v > 0)
        s.top = std::min(s.top, y), s.bottom = std::max(s.bottom, y), s.left = std::min(s.left, x),
        s.right = std::max(s.right, x);
    }
  s.com_y /= mass, s.com_x /= mass;
  return s;
}

double mean_abs_diff(const std::vector<uint8_t>& a, const std::vector<uint8_t>& b) {
  double s = 0;
  for (size_t i = 0; i < a.size(); ++i) s += std::abs(int(a[i]) - int(b[i]));
  return s / static_cast<double>(a.size());
}

std::vector<uint8_t> file_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}
void write_bytes(const std::string& path, const std::vector<uint8_t>& b) {
  std::ofstream(path, std::ios::binary)
      .write(reinterpret_cast<const char*>(b.data()), static_cast<std::streamsize>(b.size()));
}

// ---- decoding ----

TEST(Image, DecodesPngOfEveryChannelCountExactly) {
  TempDir dir;
  for (int c = 1; c <= 4; ++c) {
    std::vector<uint8_t> px(5 * 3 * c);  // (5, 3, c)
    for (size_t i = 0; i < px.size(); ++i) px[i] = static_cast<uint8_t>(i * 37 % 256);
    const std::string path = dir / fmt::format("p{}.png", c);
    ASSERT_TRUE(stbi_write_png(path.c_str(), 3, 5, c, px.data(), 3 * c));
    Image im = read_image(path);
    EXPECT_EQ(im.height, 5);
    EXPECT_EQ(im.width, 3);
    EXPECT_EQ(im.channels, c);
    EXPECT_EQ(im.pixels, px) << c << " channels";
    EXPECT_EQ(im.source, path);
  }
}

TEST(Image, DecodesJpegAndFromMemory) {
  TempDir dir;
  std::vector<uint8_t> px(16 * 24 * 3);  // (16, 24, 3): a smooth gradient
  for (int y = 0; y < 16; ++y)
    for (int x = 0; x < 24; ++x)
      for (int k = 0; k < 3; ++k)
        px[(y * 24 + x) * 3 + k] = static_cast<uint8_t>(40 + 8 * x + k * 10);
  const std::string path = dir / "g.jpg";
  ASSERT_TRUE(stbi_write_jpg(path.c_str(), 24, 16, 3, px.data(), 95));
  Image im = read_image(path);
  EXPECT_EQ(im.height, 16);
  EXPECT_EQ(im.width, 24);
  EXPECT_EQ(im.channels, 3);
  double err = 0;
  for (size_t i = 0; i < px.size(); ++i)
    err = std::max(err, std::abs(double(im.pixels[i]) - px[i]));
  EXPECT_LT(err, 12) << "JPEG at quality 95 should be close";
  Image mem = decode_image(file_bytes(path), "upload");
  EXPECT_EQ(mem.pixels, im.pixels);
  EXPECT_EQ(mem.source, "upload");
  EXPECT_EQ(image_format(file_bytes(path)), "jpeg");
}

TEST(Image, ExtensionsThatCountAsImages) {
  EXPECT_TRUE(has_image_extension("a/b.png"));
  EXPECT_TRUE(has_image_extension("B.JPG"));
  EXPECT_TRUE(has_image_extension("c.Jpeg"));
  EXPECT_FALSE(has_image_extension("notes.txt"));
  EXPECT_FALSE(has_image_extension("png"));
  EXPECT_FALSE(has_image_extension("x.gif"));
}

TEST(Image, MissingEmptyAndForeignFilesAreNamed) {
  TempDir dir;
  EXPECT_THAT(error_of([&] { read_image(dir / "nope.png"); }), HasSubstr("nope.png: no such file"));
  write_bytes(dir / "empty.png", {});
  EXPECT_THAT(error_of([&] { read_image(dir / "empty.png"); }),
              HasSubstr("empty.png: empty file, expected a PNG or JPEG image"));
  write_bytes(dir / "notes.png", {'h', 'e', 'l', 'l', 'o'});
  EXPECT_THAT(error_of([&] { read_image(dir / "notes.png"); }),
              HasSubstr("notes.png: not a PNG or JPEG image (it starts with 68656c6c)"));
  write_bytes(dir / "pic.gif", {'G', 'I', 'F', '8', '9', 'a', 1, 0, 1, 0});
  EXPECT_THAT(error_of([&] { read_image(dir / "pic.gif"); }), HasSubstr("not a PNG or JPEG"));
}

TEST(Image, TruncatedPngIsAnError) {
  TempDir dir;
  std::vector<uint8_t> px = bytes_of(seven(255, 0));
  const std::string path = dir / "t.png";
  ASSERT_TRUE(stbi_write_png(path.c_str(), 200, 200, 1, px.data(), 200));
  std::vector<uint8_t> b = file_bytes(path);
  b.resize(b.size() / 2);
  write_bytes(path, b);
  EXPECT_THAT(error_of([&] { read_image(path); }), HasSubstr("t.png: corrupt or truncated png"));
  b.resize(20);  // inside the header
  EXPECT_THAT(error_of([&] { decode_image(b, "short.png"); }),
              HasSubstr("short.png: corrupt png header"));
}

TEST(Image, TruncatedJpegIsAnError) {
  TempDir dir;
  std::vector<uint8_t> px = bytes_of(seven(255, 0));
  const std::string path = dir / "t.jpg";
  ASSERT_TRUE(stbi_write_jpg(path.c_str(), 200, 200, 1, px.data(), 90));
  std::vector<uint8_t> b = file_bytes(path);
  EXPECT_NO_THROW(decode_image(b, "whole.jpg"));
  b.resize(b.size() * 2 / 3);
  EXPECT_THAT(error_of([&] { decode_image(b, "t.jpg"); }),
              HasSubstr("t.jpg: truncated JPEG (no end-of-image marker)"));
}

TEST(Image, CorruptPngDataIsAnError) {
  TempDir dir;
  std::vector<uint8_t> px = bytes_of(seven(255, 0));
  const std::string path = dir / "c.png";
  ASSERT_TRUE(stbi_write_png(path.c_str(), 200, 200, 1, px.data(), 200));
  std::vector<uint8_t> b = file_bytes(path);
  for (size_t i = 45; i < 60; ++i) b[i] ^= 0x5a;  // the zlib stream of the first IDAT
  EXPECT_THAT(error_of([&] { decode_image(b, "c.png"); }), HasSubstr("c.png: corrupt"));
}

TEST(Image, AbsurdDimensionsAreRefusedFromTheHeader) {
  TempDir dir;
  std::vector<uint8_t> px(4 * 4, 128);
  const std::string path = dir / "big.png";
  ASSERT_TRUE(stbi_write_png(path.c_str(), 4, 4, 1, px.data(), 4));
  std::vector<uint8_t> b = file_bytes(path);
  // IHDR width and height (big-endian, bytes 16-23) claim 100000 x 100000.
  for (int k : {16, 20}) b[k] = 0, b[k + 1] = 0x01, b[k + 2] = 0x86, b[k + 3] = 0xa0;
  EXPECT_THAT(error_of([&] { decode_image(b, "big.png"); }),
              HasSubstr("big.png: image of 100000x100000 pixels is too large (at most 8192 pixels "
                        "a side and 50 megapixels)"));
  EXPECT_THAT(error_of([&] { read_image(path, {.max_side = 3}); }), HasSubstr("too large"));
  // A JPEG's start-of-frame segment (FF C0: length, precision, height, width) claiming
  // 60000 x 9000.
  std::vector<uint8_t> px8(8 * 8, 100);
  const std::string jpg = dir / "big.jpg";
  ASSERT_TRUE(stbi_write_jpg(jpg.c_str(), 8, 8, 1, px8.data(), 90));
  std::vector<uint8_t> j = file_bytes(jpg);
  size_t sof = 2;
  while (sof + 1 < j.size() && !(j[sof] == 0xFF && j[sof + 1] == 0xC0)) ++sof;
  ASSERT_LT(sof + 9, j.size());
  j[sof + 5] = 60000 >> 8, j[sof + 6] = 60000 & 255, j[sof + 7] = 9000 >> 8,
          j[sof + 8] = 9000 & 255;
  EXPECT_THAT(error_of([&] { decode_image(j, "big.jpg"); }),
              HasSubstr("big.jpg: image of 9000x60000 pixels is too large"));
  EXPECT_THAT(error_of([&] { read_image(path, {.max_bytes = 10}); }),
              HasSubstr("big.png: file of"));
}

// Every truncation and a few hundred random byte changes of a PNG and a JPEG: each either
// decodes or throws scratchnet::Error (the sanitizer build checks for bad reads).
TEST(Image, DamagedFilesNeverCrash) {
  TempDir dir;
  std::vector<uint8_t> px = bytes_of(draw(24, 24, {{{4, 4, 20, 18}}}, 2.0f, 255, 0));
  ASSERT_TRUE(stbi_write_png((dir / "d.png").c_str(), 24, 24, 1, px.data(), 24));
  ASSERT_TRUE(stbi_write_jpg((dir / "d.jpg").c_str(), 24, 24, 1, px.data(), 80));
  Rng rng(3);
  int decoded = 0, refused = 0;
  auto attempt = [&](const std::vector<uint8_t>& b) {
    try {
      Image im = decode_image(b, "damaged");
      EXPECT_EQ(im.pixels.size(), static_cast<size_t>(im.height * im.width * im.channels));
      ++decoded;
    } catch (const Error&) {
      ++refused;
    }
  };
  for (const char* name : {"d.png", "d.jpg"}) {
    const std::vector<uint8_t> whole = file_bytes(dir / name);
    for (size_t n = 0; n < whole.size(); ++n)
      attempt(std::vector<uint8_t>(whole.begin(), whole.begin() + static_cast<ptrdiff_t>(n)));
    for (int k = 0; k < 300; ++k) {
      std::vector<uint8_t> b = whole;
      for (int flips = 1 + static_cast<int>(rng.below(3)); flips > 0; --flips)
        b[rng.below(b.size())] = static_cast<uint8_t>(rng.below(256));
      attempt(b);
    }
  }
  EXPECT_GT(refused, 0);
  EXPECT_GT(decoded, 0);
}

// ---- gray levels and resizing ----

TEST(Image, GrayIsLumaWithAlphaOnWhite) {
  Image rgb{
      .source = "x", .height = 1, .width = 2, .channels = 3, .pixels = {255, 0, 0, 10, 20, 30}};
  std::vector<float> g;
  image_to_gray(g, rgb);
  EXPECT_NEAR(g[0], 0.299f * 255, 1e-3);
  EXPECT_NEAR(g[1], 0.299f * 10 + 0.587f * 20 + 0.114f * 30, 1e-3);
  Image rgba{.source = "x",
             .height = 1,
             .width = 2,
             .channels = 4,
             .pixels = {0, 0, 0, 0, 0, 0, 0, 255}};  // transparent black, opaque black
  image_to_gray(g, rgba);
  EXPECT_FLOAT_EQ(g[0], 255.0f);
  EXPECT_FLOAT_EQ(g[1], 0.0f);
  Image ga{.source = "x", .height = 1, .width = 1, .channels = 2, .pixels = {0, 51}};
  image_to_gray(g, ga);
  EXPECT_NEAR(g[0], 255.0f * (1 - 51 / 255.0f), 1e-3);
}

TEST(Image, ResizeShrinksByAreaAndGrowsBilinearly) {
  std::vector<float> in = {1, 3, 5, 7, 2, 4, 6, 8};  // (2, 4)
  std::vector<float> out;
  resize_gray(out, in, 2, 4, 1, 2);  // each output the mean of a 2x2 block
  EXPECT_THAT(out, ::testing::ElementsAre(2.5f, 6.5f));
  resize_gray(out, in, 2, 4, 1, 3);  // 4 -> 3: thirds of pixels weighted
  EXPECT_NEAR(out[0], (1.5f + 3.5f / 3) * 0.75f, 1e-5);
  EXPECT_NEAR(out[1], 0.5f * (3.5f + 5.5f), 1e-5);
  std::vector<float> row = {0, 10};  // (1, 2) -> (1, 4): centres at -0.25, 0.25, 0.75, 1.25
  resize_gray(out, row, 1, 2, 1, 4);
  EXPECT_THAT(out, ::testing::ElementsAre(0.0f, 2.5f, 7.5f, 10.0f));
  std::vector<float> flat(30 * 17, 42.0f);
  resize_gray(out, flat, 30, 17, 11, 40);
  for (float v : out) EXPECT_NEAR(v, 42.0f, 1e-4);
  EXPECT_THAT(error_of([&] { resize_gray(out, row, 1, 3, 1, 4); }),
              HasSubstr("resize_gray: cannot resize 2 values as 1x3"));
}

// ---- MNIST style ----

void expect_mnist_like(const std::vector<uint8_t>& d) {
  ASSERT_EQ(d.size(), 28u * 28);
  Stats s = stats(d);
  EXPECT_EQ(s.max, 255);
  EXPECT_EQ(d[0], 0) << "background must be black";
  EXPECT_LE(s.bottom - s.top + 1, 20);
  EXPECT_LE(s.right - s.left + 1, 20);
  EXPECT_EQ(std::max(s.bottom - s.top, s.right - s.left) + 1, 20) << "longer side fills the box";
  EXPECT_LE(std::abs(s.com_y - 14), 0.5);
  EXPECT_LE(std::abs(s.com_x - 14), 0.5);
}

TEST(MnistStyle, DarkInkOnLightPaperIsInvertedCroppedScaledAndCentred) {
  std::vector<uint8_t> d;
  to_mnist_style(d, gray_image(seven(250, 20), 200, 200));
  expect_mnist_like(d);
  // The 7's top bar is at the top of the box: ink in the top rows of the box.
  Stats s = stats(d);
  int row_sum = 0;
  for (int64_t x = 0; x < 28; ++x) row_sum += d[(s.top + 1) * 28 + x];
  EXPECT_GT(row_sum, 255 * 8) << "the bar of the 7";
}

TEST(MnistStyle, LightOnDarkIsTheSameDigitAsItsNegative) {
  Image dark = gray_image(seven(255, 0), 200, 200), light = dark;
  for (uint8_t& p : light.pixels) p = static_cast<uint8_t>(255 - p);
  std::vector<uint8_t> dark_on_light, light_on_dark;
  to_mnist_style(dark_on_light, dark);
  to_mnist_style(light_on_dark, light);
  expect_mnist_like(light_on_dark);
  EXPECT_EQ(light_on_dark, dark_on_light);
}

TEST(MnistStyle, GrayPaperAndFaintInkAreLevelled) {
  std::vector<uint8_t> clean, faint;
  to_mnist_style(clean, gray_image(seven(255, 0), 200, 200));
  to_mnist_style(faint, gray_image(seven(180, 110), 200, 200));  // pencil on gray paper
  expect_mnist_like(faint);
  EXPECT_LT(mean_abs_diff(clean, faint), 2.0);
}

TEST(MnistStyle, RgbRgbaPngAndJpegGiveTheSameDigit) {
  TempDir dir;
  std::vector<float> g = seven(255, 0);  // (200, 200)
  std::vector<uint8_t> reference;
  to_mnist_style(reference, gray_image(g, 200, 200));
  std::vector<uint8_t> rgb(200 * 200 * 3), rgba(200 * 200 * 4);
  for (int64_t i = 0; i < 200 * 200; ++i) {
    const float ink = 1.0f - g[i] / 255.0f;  // 0 paper .. 1 ink
    // Dark blue ink on white paper; and black ink on a transparent background.
    rgb[i * 3 + 0] = static_cast<uint8_t>(std::lround(255 - ink * 235));
    rgb[i * 3 + 1] = static_cast<uint8_t>(std::lround(255 - ink * 225));
    rgb[i * 3 + 2] = static_cast<uint8_t>(std::lround(255 - ink * 115));
    rgba[i * 4 + 0] = rgba[i * 4 + 1] = rgba[i * 4 + 2] = 0;
    rgba[i * 4 + 3] = static_cast<uint8_t>(std::lround(ink * 255));
  }
  ASSERT_TRUE(stbi_write_png((dir / "rgb.png").c_str(), 200, 200, 3, rgb.data(), 600));
  ASSERT_TRUE(stbi_write_png((dir / "rgba.png").c_str(), 200, 200, 4, rgba.data(), 800));
  ASSERT_TRUE(stbi_write_jpg((dir / "rgb.jpg").c_str(), 200, 200, 3, rgb.data(), 90));
  ASSERT_TRUE(stbi_write_jpg((dir / "gray.jpeg").c_str(), 200, 200, 1, bytes_of(g).data(), 90));
  for (const char* name : {"rgb.png", "rgba.png", "rgb.jpg", "gray.jpeg"}) {
    SCOPED_TRACE(name);
    Image im = read_image(dir / name);
    std::vector<uint8_t> d;
    to_mnist_style(d, im);
    expect_mnist_like(d);
    EXPECT_LT(mean_abs_diff(d, reference), std::string(name).ends_with(".png") ? 1.0 : 4.0);
  }
}

// MNIST test digits (or, without data/mnist, a toy digit) drawn as dark ink 5x larger on a
// big light canvas, off-centre, come back close to the originals.
TEST(MnistStyle, UpscaledMnistDigitsConvertBackToThemselves) {
  const std::string path = std::string(SN_GOLDEN_DIR) + "/../../data/mnist/t10k-images-idx3-ubyte";
  std::vector<std::vector<uint8_t>> digits;
  if (std::filesystem::exists(path)) {
    IdxArray a = read_idx(path);
    for (int64_t i = 0; i < 50; ++i)
      digits.emplace_back(a.data.begin() + i * 784, a.data.begin() + (i + 1) * 784);
  } else {
    // A toy "0": a ring, made MNIST-like by the conversion itself.
    std::vector<float> ring = draw(
        60, 60, {{{10, 18, 10, 40}}, {{10, 40, 50, 40}}, {{50, 40, 50, 18}}, {{50, 18, 10, 18}}},
        2.5f, 0, 255);
    digits.emplace_back();
    gray_to_mnist_style(digits.back(), ring, 60, 60, "ring");
  }
  double total = 0;
  for (const std::vector<uint8_t>& original : digits) {
    std::vector<float> small(original.begin(), original.end()), big;  // (28, 28) -> (140, 140)
    resize_gray(big, small, 28, 28, 140, 140);
    std::vector<float> canvas(300 * 300, 240.0f);  // light paper, digit at (31, 127)
    for (int64_t y = 0; y < 140; ++y)
      for (int64_t x = 0; x < 140; ++x)
        canvas[(31 + y) * 300 + 127 + x] = 240.0f - big[y * 140 + x] * (225.0f / 255.0f);
    std::vector<uint8_t> back;
    gray_to_mnist_style(back, canvas, 300, 300, "redrawn");
    const double diff = mean_abs_diff(back, original);
    EXPECT_LT(diff, 25.0);
    total += diff;
  }
  EXPECT_LT(total / static_cast<double>(digits.size()), 12.0) << "mean over the digits";
}

TEST(MnistStyle, BlankImageIsAnErrorNamingIt) {
  std::vector<float> paper(50 * 40, 230.0f);
  paper[7 * 40 + 9] = 220;  // a speck well below the contrast needed
  std::vector<uint8_t> d;
  EXPECT_THAT(error_of([&] { gray_to_mnist_style(d, paper, 50, 40, "blank.png"); }),
              HasSubstr("blank.png: no ink found: the image is blank"));
  Image one{.source = "dot.png", .height = 1, .width = 1, .channels = 1, .pixels = {0}};
  EXPECT_THAT(error_of([&] { to_mnist_style(d, one); }), HasSubstr("dot.png: no ink found"));
  std::vector<float> flat(9, 100.0f);
  EXPECT_THAT(error_of([&] { gray_to_mnist_style(d, flat, 3, 3, "flat", {.min_contrast = 0}); }),
              HasSubstr("flat: no ink found"));
}

TEST(MnistStyle, OtherSizesAndBadOptions) {
  std::vector<uint8_t> d;
  to_mnist_style(d, gray_image(seven(255, 0), 200, 200), {.size = 14, .box = 10});
  ASSERT_EQ(d.size(), 14u * 14);
  Stats s = stats(d, 14);
  EXPECT_EQ(s.bottom - s.top + 1, 10);
  EXPECT_LE(std::abs(s.com_y - 7), 0.5);
  EXPECT_LE(std::abs(s.com_x - 7), 0.5);
  EXPECT_THAT(error_of([&] {
                to_mnist_style(d, gray_image(seven(255, 0), 200, 200), {.size = 8, .box = 9});
              }),
              HasSubstr("MnistStyle: box 9 must be between 1 and size 8"));
}

}  // namespace
}  // namespace scratchnet
