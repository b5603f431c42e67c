#include "scratchnet/layers/conv2d_int8.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstring>

#include "scratchnet/check.h"
#include "scratchnet/parallel.h"

namespace scratchnet {

namespace {

constexpr int64_t kPixels = 96;  // output pixels per block: a multiple of the 6-row tile

// a (rows, kp): the unfolded rows of output pixels p0 .. p0 + rows of one quantised image
// laid out (H, W, C), columns in (i, j, c) order; taps outside the image get the zero point,
// columns past K*K*C get 0.
void unfold(uint8_t* a, int64_t kp, const uint8_t* image, const Conv2dDims& d, int64_t p0,
            int64_t rows, uint8_t zero_point) {
  // Locals: stores through uint8_t* may alias anything, so fields of d would be reloaded.
  const int64_t k = d.k, c = d.c, h = d.h, w = d.w, ow = d.ow, stride = d.stride, pad = d.padding,
                taps = k * k * c;
  for (int64_t r = 0; r < rows; ++r) {
    const int64_t oy = (p0 + r) / ow, ox = (p0 + r) % ow;
    const int64_t x0 = ox * stride - pad, y0 = oy * stride - pad;
    uint8_t* dst = a + r * kp;
    for (int64_t y = y0; y < y0 + k; ++y)
      for (int64_t x = x0; x < x0 + k; ++x, dst += c) {
        if (y < 0 || y >= h || x < 0 || x >= w)
          std::memset(dst, zero_point, c);
        else if (c == 1)
          *dst = image[y * w + x];
        else
          std::memcpy(dst, image + (y * w + x) * c, c);
      }
    std::memset(a + r * kp + taps, 0, kp - taps);
  }
}

}  // namespace

void Conv2dInt8::prepare() {
  // Columns in (i, j, c) order, as unfold writes them; the weight is (OC, C, K, K).
  const int64_t c_in = options_.in_channels, k = options_.kernel;
  std::vector<int64_t> order;
  for (int64_t i = 0; i < k; ++i)
    for (int64_t j = 0; j < k; ++j)
      for (int64_t c = 0; c < c_in; ++c) order.push_back((c * k + i) * k + j);
  q_.prepare(order);
}

Conv2dInt8::Conv2dInt8(const Conv2dOptions& options)
    : options_(options), q_(Conv2d(options).weight().value.shape()) {  // Conv2d checks options
  options_.bias = true;
}

Shape Conv2dInt8::output_shape(const Shape& in) const {
  Conv2dDims d = conv2d_dims(options_, in);
  return {d.n, d.oc, d.oh, d.ow};
}

void Conv2dInt8::forward(Tensor& out, const Tensor& in, Mode /*mode*/) {
  const Conv2dDims d = conv2d_dims(options_, in.shape());
  check_shape(out, {d.n, d.oc, d.oh, d.ow}, "Conv2dInt8 forward: output");
  if (!q_.prepared()) prepare();
  in_q_.resize(in.numel());
  const int64_t image = d.c * d.h * d.w, plane = d.h * d.w;
  parallel_for(d.n, [&](int64_t begin, int64_t end) {  // (N, C, H, W) float -> (N, H, W, C) u8
    thread_local std::vector<uint8_t> row;
    row.resize(plane);
    for (int64_t n = begin; n < end; ++n)
      for (int64_t c = 0; c < d.c; ++c) {
        uint8_t* q = in_q_.data() + n * image + c;
        q_.quantize(d.c == 1 ? q : row.data(), in.data() + n * image + c * plane, plane);
        if (d.c > 1)
          for (int64_t p = 0; p < plane; ++p) q[p * d.c] = row[p];
      }
  });

  const Int8Packed& w = q_.packed();
  const int64_t pixels = d.oh * d.ow, blocks = (pixels + kPixels - 1) / kPixels;
  const auto zero_point = static_cast<uint8_t>(q_.zero_point());
  parallel_for(d.n * blocks, [&](int64_t begin, int64_t end) {
    thread_local std::vector<uint8_t> a;
    thread_local std::vector<int32_t> acc;
    a.resize(kPixels * w.kp);
    acc.resize(kPixels * d.oc);
    for (int64_t item = begin; item < end; ++item) {
      const int64_t n = item / blocks, p0 = (item % blocks) * kPixels;
      const int64_t rows = std::min(kPixels, pixels - p0);
      unfold(a.data(), w.kp, in_q_.data() + n * image, d, p0, rows, zero_point);
      int8_gemm(acc.data(), d.oc, a.data(), w.kp, rows, w);  // (rows, OC)
      for (int64_t oc = 0; oc < d.oc; ++oc)                  // (rows, OC) -> out[n, oc, p0 ..]
        q_.output_column(out.data() + (n * d.oc + oc) * pixels + p0, acc.data() + oc, d.oc, rows,
                         oc);
    }
  });
}

void Conv2dInt8::backward(Tensor&, const Tensor&, const Tensor&, const Tensor&) {
  fail("Conv2dInt8: an int8 model runs inference only; train or fine-tune the float model");
}

std::string Conv2dInt8::describe() const {
  const auto& o = options_;
  return fmt::format("Conv2dInt8({}, {}, kernel={}, stride={}, padding={})", o.in_channels,
                     o.out_channels, o.kernel, o.stride, o.padding);
}

int64_t Conv2dInt8::flops(const Shape& in) const { return Conv2d(options_).flops(in); }

}  // namespace scratchnet
