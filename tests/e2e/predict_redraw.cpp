// predict_redraw — MNIST test digits redrawn as a person would hand them to `scratchnet
// predict`: dark ink on light paper, 200 x 200 pixels, the digit 3.5 to 6 times larger and
// anywhere on the page, some slightly blurred, some noisy, as gray, RGB or RGBA PNGs and
// gray JPEGs. For the end-to-end accuracy test (predict_mnist.sh).
//   predict_redraw MNIST_DIR OUT_DIR FIRST COUNT SEED
// writes test images FIRST .. FIRST + COUNT - 1 as OUT_DIR/<label>/<index>.png|jpg.
#include <fmt/format.h>
#include <stb_image_write.h>

#include <algorithm>
#include <cmath>
#include <exception>
#include <filesystem>
#include <string>
#include <vector>

#include "scratchnet/check.h"
#include "scratchnet/data/idx.h"
#include "scratchnet/data/image.h"
#include "scratchnet/rng.h"

namespace {

using namespace scratchnet;

constexpr int64_t kCanvas = 200;

uint8_t byte(float v) { return static_cast<uint8_t>(std::lround(std::clamp(v, 0.0f, 255.0f))); }

void redraw(const uint8_t* digit, int32_t label, int64_t index, const std::string& out_dir,
            Rng& rng) {
  // Ink coverage m in [0, 1] of the digit, enlarged (bilinear) and placed off-centre.
  const int64_t side = std::lround(28 * rng.uniform(3.5f, 6.0f));
  std::vector<float> small(digit, digit + 28 * 28), big;  // (28, 28) -> (side, side)
  resize_gray(big, small, 28, 28, side, side);
  const int64_t top = static_cast<int64_t>(rng.below(kCanvas - side + 1));
  const int64_t left = static_cast<int64_t>(rng.below(kCanvas - side + 1));
  std::vector<float> m(kCanvas * kCanvas, 0.0f);  // (kCanvas, kCanvas)
  for (int64_t y = 0; y < side; ++y)
    for (int64_t x = 0; x < side; ++x) m[(top + y) * kCanvas + left + x] = big[y * side + x] / 255;
  if (rng.uniform() < 0.5f) {  // a slight blur: 3 x 3 box
    std::vector<float> b(m.size(), 0.0f);
    for (int64_t y = 1; y + 1 < kCanvas; ++y)
      for (int64_t x = 1; x + 1 < kCanvas; ++x) {
        float s = 0;
        for (int64_t dy = -1; dy <= 1; ++dy)
          for (int64_t dx = -1; dx <= 1; ++dx) s += m[(y + dy) * kCanvas + x + dx];
        b[y * kCanvas + x] = s / 9;
      }
    m.swap(b);
  }
  const float paper = rng.uniform(200.0f, 255.0f), ink = rng.uniform(0.0f, 60.0f);
  const float noise = rng.uniform() < 0.5f ? rng.uniform(0.0f, 4.0f) : 0.0f;
  const std::string dir = fmt::format("{}/{}", out_dir, label);
  std::filesystem::create_directories(dir);
  const int kind = static_cast<int>(index % 4);
  const std::string path = fmt::format("{}/{:05}.{}", dir, index, kind == 0 ? "jpg" : "png");
  const int64_t n = kCanvas * kCanvas;
  std::vector<uint8_t> px;
  int channels = 1;
  if (kind == 3) {  // black ink on a transparent background, as drawing programs save it
    channels = 4;
    px.resize(n * 4);
    for (int64_t i = 0; i < n; ++i)
      px[i * 4] = px[i * 4 + 1] = px[i * 4 + 2] = byte(ink), px[i * 4 + 3] = byte(255 * m[i]);
  } else if (kind == 1) {  // blue ballpoint on white
    channels = 3;
    px.resize(n * 3);
    const float pen[3] = {20, 40, 150};
    for (int64_t i = 0; i < n; ++i)
      for (int k = 0; k < 3; ++k)
        px[i * 3 + k] = byte(paper + m[i] * (pen[k] - paper) + noise * rng.normal());
  } else {
    px.resize(n);
    for (int64_t i = 0; i < n; ++i)
      px[i] = byte(paper + m[i] * (ink - paper) + noise * rng.normal());
  }
  const int w = static_cast<int>(kCanvas);
  const bool ok = kind == 0 ? stbi_write_jpg(path.c_str(), w, w, channels, px.data(), 90)
                            : stbi_write_png(path.c_str(), w, w, channels, px.data(), w * channels);
  SN_CHECK(ok, "{}: cannot write", path);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 6) {
    fmt::print(stderr, "usage: predict_redraw MNIST_DIR OUT_DIR FIRST COUNT SEED\n");
    return 2;
  }
  try {
    const std::string mnist = argv[1], out = argv[2];
    const int64_t first = std::stoll(argv[3]), count = std::stoll(argv[4]);
    Rng rng(std::stoull(argv[5]));
    IdxArray images = read_idx(mnist + "/t10k-images-idx3-ubyte");
    IdxArray labels = read_idx(mnist + "/t10k-labels-idx1-ubyte");
    SN_CHECK(first >= 0 && count >= 1 && first + count <= images.dims[0],
             "images {} to {} are not in {} (it has {})", first, first + count - 1, mnist,
             images.dims[0]);
    for (int64_t i = first; i < first + count; ++i)
      redraw(images.data.data() + i * 784, labels.data[i], i, out, rng);
  } catch (const std::exception& e) {
    fmt::print(stderr, "predict_redraw: error: {}\n", e.what());
    return 1;
  }
  return 0;
}
