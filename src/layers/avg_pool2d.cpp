#include "scratchnet/layers/avg_pool2d.h"

#include <fmt/format.h>

#include <algorithm>

#include "scratchnet/check.h"
#include "scratchnet/parallel.h"

namespace scratchnet {

// Each (n, c) plane is independent, so planes are split across threads. The window is clipped
// to the real input (the padding adds zeros to the sum) and the sum is divided by K*K, the
// full window size, as PyTorch's count_include_pad=True does.
template <typename T>
void avg_pool2d_forward(T* out, const T* in, const Pool2dDims& d) {
  const int64_t plane_in = d.h * d.w, plane_out = d.oh * d.ow;
  const T divisor = static_cast<T>(d.k * d.k);
  parallel_for(d.n * d.c, parallel_grain(plane_in), [&](int64_t begin, int64_t end) {
    for (int64_t p = begin; p < end; ++p) {
      const T* src = in + p * plane_in;  // (H, W)
      T* dst = out + p * plane_out;      // (OH, OW)
      for (int64_t oy = 0; oy < d.oh; ++oy) {
        for (int64_t ox = 0; ox < d.ow; ++ox) {
          const Pool2dDims::Window win = d.window(oy, ox);
          T sum = 0;
          for (int64_t y = win.y0; y < win.y1; ++y) {
            const T* row = src + y * d.w;
            for (int64_t x = win.x0; x < win.x1; ++x) sum += row[x];
          }
          dst[oy * d.ow + ox] = sum / divisor;
        }
      }
    }
  });
}

// d_in[y, x] = sum over the windows that cover (y, x) of d_out[oy, ox] / (K*K). Each output
// adds its share along contiguous input rows; within a plane the additions run in output
// order, so the sums are the same for any thread count.
template <typename T>
void avg_pool2d_backward(T* d_in, const T* d_out, const Pool2dDims& d) {
  const int64_t plane_in = d.h * d.w, plane_out = d.oh * d.ow;
  const T divisor = static_cast<T>(d.k * d.k);
  parallel_for(d.n * d.c, parallel_grain(plane_in), [&](int64_t begin, int64_t end) {
    for (int64_t p = begin; p < end; ++p) {
      T* dst = d_in + p * plane_in;          // (H, W)
      const T* src = d_out + p * plane_out;  // (OH, OW)
      std::fill(dst, dst + plane_in, T(0));
      for (int64_t oy = 0; oy < d.oh; ++oy) {
        for (int64_t ox = 0; ox < d.ow; ++ox) {
          const Pool2dDims::Window win = d.window(oy, ox);
          const T share = src[oy * d.ow + ox] / divisor;
          for (int64_t y = win.y0; y < win.y1; ++y) {
            T* row = dst + y * d.w;
            for (int64_t x = win.x0; x < win.x1; ++x) row[x] += share;
          }
        }
      }
    }
  });
}

template void avg_pool2d_forward<float>(float*, const float*, const Pool2dDims&);
template void avg_pool2d_forward<double>(double*, const double*, const Pool2dDims&);
template void avg_pool2d_backward<float>(float*, const float*, const Pool2dDims&);
template void avg_pool2d_backward<double>(double*, const double*, const Pool2dDims&);

AvgPool2d::AvgPool2d(const AvgPool2dOptions& options) : options_(options) {
  check_pool2d_options(kind(), options.kernel, options.stride, options.padding);
  if (options_.stride == 0) options_.stride = options_.kernel;
}

Pool2dDims AvgPool2d::dims(const Shape& in) const {
  return pool2d_dims(kind(), in, options_.kernel, options_.stride, options_.padding);
}

Shape AvgPool2d::output_shape(const Shape& in) const {
  Pool2dDims d = dims(in);
  return {d.n, d.c, d.oh, d.ow};
}

void AvgPool2d::forward(Tensor& out, const Tensor& in, Mode /*mode*/) {
  Pool2dDims d = dims(in.shape());
  check_shape(out, {d.n, d.c, d.oh, d.ow}, "AvgPool2d output");
  avg_pool2d_forward(out.data(), in.data(), d);
}

void AvgPool2d::backward(Tensor& d_in, const Tensor& d_out, const Tensor& in,
                         const Tensor& /*out*/) {
  Pool2dDims d = dims(in.shape());
  check_shape(d_out, {d.n, d.c, d.oh, d.ow}, "AvgPool2d d_out");
  check_shape(d_in, in.shape(), "AvgPool2d d_in");
  avg_pool2d_backward(d_in.data(), d_out.data(), d);
}

std::string AvgPool2d::describe() const {
  return fmt::format("AvgPool2d(kernel={}, stride={}, padding={})", options_.kernel,
                     options_.stride, options_.padding);
}

int64_t AvgPool2d::flops(const Shape& in) const {
  Pool2dDims d = dims(in);
  return d.n * d.c * d.oh * d.ow * d.k * d.k;
}

}  // namespace scratchnet
