// image.h — PNG and JPEG images in, MNIST-style digits out.
//
// decode_image / read_image turn PNG or JPEG bytes (through stb_image) into 8-bit pixels,
// (H, W, channels) interleaved; encode_png / write_png (stb_image_write) go the other way. The
// header is read first: an image larger than ImageLimits (8192 pixels a side, 50 megapixels) is
// refused before anything is allocated, and a truncated or corrupt file fails with one line naming
// it. Other formats stb knows (BMP, GIF,
// ...) are refused too: only PNG and JPEG are read.
//
// to_mnist_style makes a picture of a digit look like an MNIST image, the way LeCun, Cortes
// and Burges made MNIST from NIST's scans:
//   1. gray: luma 0.299 R + 0.587 G + 0.114 B (ITU-R BT.601, as PIL's "L"), alpha
//      composited onto white;
//   2. polarity: the median of the border pixels is the background; a light background is
//      inverted, so ink is bright on black as in MNIST;
//   3. levels: the background becomes 0 and full ink 255, full ink being the median of the
//      pixels past half the contrast (the cores of the strokes, not one noisy pixel), so a
//      photo of pencil on gray paper looks like MNIST's pen on white;
//   4. crop to the ink: the bounding box of the pixels above ink_threshold;
//   5. scale preserving the aspect ratio so the longer side is `box` (20) pixels: area
//      averaging (a box filter, as PIL's reduce / cv2.INTER_AREA) when shrinking, bilinear
//      when enlarging;
//   6. place in a size x size (28 x 28) field, shifted by whole pixels so the centre of mass
//      (in pixel indices) is within half a pixel of (size / 2, size / 2) = (14, 14), unless
//      that would push the box out of the field (then it touches the edge).
// The result is uint8 (size, size), 0 background and 255 full ink, like the IDX files: the
// model's recorded Preprocess then applies exactly as for MNIST. An image without ink (a
// blank page: less than min_contrast between the background and the strongest pixel) is an
// error naming the image.
//
// There is no single PyTorch equivalent; torchvision users do steps 1-6 by hand with PIL.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

namespace scratchnet {

struct Image {
  std::string source;  // the file (or what the bytes were), for messages
  int64_t height = 0, width = 0;
  int64_t channels = 0;         // 1 gray, 2 gray + alpha, 3 RGB, 4 RGBA
  std::vector<uint8_t> pixels;  // (height, width, channels), interleaved
};

struct ImageLimits {
  int64_t max_side = 8192;          // pixels, width and height each
  int64_t max_pixels = 50'000'000;  // width * height
  int64_t max_bytes = 256ll << 20;  // size of the file read_image accepts
};

// "png", "jpeg", or "" when the bytes start like neither.
std::string image_format(std::span<const uint8_t> bytes);

// Whether a file name ends in .png, .jpg or .jpeg, in any case: the files image folders use.
bool has_image_extension(const std::string& path);

// PNG or JPEG bytes (from a file, an upload) -> pixels with the channels the file stores
// (16-bit PNGs become 8-bit). `source` names the bytes in errors.
Image decode_image(std::span<const uint8_t> bytes, const std::string& source,
                   const ImageLimits& limits = {});
Image read_image(const std::string& path, const ImageLimits& limits = {});

// The whole file, refused above max_bytes; the error names the path.
std::vector<uint8_t> read_file_bytes(const std::string& path, int64_t max_bytes);

// PNG bytes of pixels (height, width, channels) interleaved, 1 channel (gray) or 3 (RGB), each
// side at most ImageLimits::max_side.
std::vector<uint8_t> encode_png(const uint8_t* pixels, int64_t height, int64_t width,
                                int64_t channels);
// The same written to `path` whole or not at all (atomic_file.h); errors name the path.
void write_png(const std::string& path, const uint8_t* pixels, int64_t height, int64_t width,
               int64_t channels);

// out (height, width): luma in [0, 255], alpha composited onto white (step 1 above).
void image_to_gray(std::vector<float>& out, const Image& image);

// out (out_h, out_w) from in (in_h, in_w), each axis on its own: area averaging when it
// shrinks (every output pixel the mean of the input it covers, fractions weighted), bilinear
// with half-pixel centres (align_corners=False) and clamped edges when it grows, a copy when
// it keeps its size.
void resize_gray(std::vector<float>& out, const std::vector<float>& in, int64_t in_h, int64_t in_w,
                 int64_t out_h, int64_t out_w);

struct MnistStyle {
  int64_t size = 28;           // side of the output field
  int64_t box = 20;            // the ink's longer side is scaled to this; <= size
  float ink_threshold = 0.3f;  // after levelling, pixels above this fraction of full ink count
                               // for the bounding box
  float min_contrast = 0.1f;   // fraction of 255 the ink must differ from the background
};

// out (style.size, style.size) from a picture of a digit, steps 1-6 above.
void to_mnist_style(std::vector<uint8_t>& out, const Image& image, const MnistStyle& style = {});
// The same from gray levels (height, width) in [0, 255] (steps 2-6): for drawings that never
// were files. `source` names them in errors.
void gray_to_mnist_style(std::vector<uint8_t>& out, const std::vector<float>& gray, int64_t height,
                         int64_t width, const std::string& source, const MnistStyle& style = {});

}  // namespace scratchnet
