#include "scratchnet/layers/max_pool2d.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <limits>

#include "scratchnet/check.h"
#include "scratchnet/parallel.h"

namespace scratchnet {

// Each (n, c) plane is independent, so planes are split across threads. For one output the
// window rows [ya, yb) and columns [xa, xb) are clipped to the input: the -inf padding can
// never win, and with padding <= K/2 the clipped window is never empty. The scan starts at
// -inf with the first real element as the provisional winner and takes strictly greater
// values (or NaN), which keeps the first maximum in row-major order, as PyTorch does.
template <typename T>
void max_pool2d_forward(T* out, int32_t* argmax, const T* in, const Pool2dDims& d) {
  const int64_t plane_in = d.h * d.w, plane_out = d.oh * d.ow;
  parallel_for(d.n * d.c, [&](int64_t begin, int64_t end) {
    for (int64_t p = begin; p < end; ++p) {
      const T* src = in + p * plane_in;                          // (H, W)
      T* dst = out + p * plane_out;                              // (OH, OW)
      int32_t* win = argmax ? argmax + p * plane_out : nullptr;  // (OH, OW)
      for (int64_t oy = 0; oy < d.oh; ++oy) {
        const int64_t y0 = oy * d.stride - d.padding;
        const int64_t ya = std::max<int64_t>(y0, 0), yb = std::min(y0 + d.k, d.h);
        for (int64_t ox = 0; ox < d.ow; ++ox) {
          const int64_t x0 = ox * d.stride - d.padding;
          const int64_t xa = std::max<int64_t>(x0, 0), xb = std::min(x0 + d.k, d.w);
          T best = -std::numeric_limits<T>::infinity();
          int64_t best_at = ya * d.w + xa;
          for (int64_t y = ya; y < yb; ++y) {
            const T* row = src + y * d.w;
            for (int64_t x = xa; x < xb; ++x) {
              if (row[x] > best || std::isnan(row[x])) {
                best = row[x];
                best_at = y * d.w + x;
              }
            }
          }
          dst[oy * d.ow + ox] = best;
          if (win) win[oy * d.ow + ox] = static_cast<int32_t>(best_at);
        }
      }
    }
  });
}

// d_in = 0, then each d_out value is added at the position that won its window. Within a
// plane the additions run in output order, so the sums are the same for any thread count.
template <typename T>
void max_pool2d_backward(T* d_in, const T* d_out, const int32_t* argmax, const Pool2dDims& d) {
  const int64_t plane_in = d.h * d.w, plane_out = d.oh * d.ow;
  parallel_for(d.n * d.c, [&](int64_t begin, int64_t end) {
    for (int64_t p = begin; p < end; ++p) {
      T* dst = d_in + p * plane_in;                 // (H, W)
      const T* src = d_out + p * plane_out;         // (OH, OW)
      const int32_t* win = argmax + p * plane_out;  // (OH, OW)
      std::fill(dst, dst + plane_in, T(0));
      for (int64_t o = 0; o < plane_out; ++o) dst[win[o]] += src[o];
    }
  });
}

template void max_pool2d_forward<float>(float*, int32_t*, const float*, const Pool2dDims&);
template void max_pool2d_forward<double>(double*, int32_t*, const double*, const Pool2dDims&);
template void max_pool2d_backward<float>(float*, const float*, const int32_t*, const Pool2dDims&);
template void max_pool2d_backward<double>(double*, const double*, const int32_t*,
                                          const Pool2dDims&);

MaxPool2d::MaxPool2d(const MaxPool2dOptions& options) : options_(options) {
  check_pool2d_options(kind(), options.kernel, options.stride, options.padding);
  if (options_.stride == 0) options_.stride = options_.kernel;
}

Pool2dDims MaxPool2d::dims(const Shape& in) const {
  Pool2dDims d = pool2d_dims(kind(), in, options_.kernel, options_.stride, options_.padding);
  if (d.h * d.w > std::numeric_limits<int32_t>::max())
    fail_input_shape(kind(),
                     fmt::format("H * W at most {} (argmax positions are 32-bit)",
                                 std::numeric_limits<int32_t>::max()),
                     in);
  return d;
}

Shape MaxPool2d::output_shape(const Shape& in) const {
  Pool2dDims d = dims(in);
  return {d.n, d.c, d.oh, d.ow};
}

void MaxPool2d::forward(Tensor& out, const Tensor& in, Mode /*mode*/) {
  Pool2dDims d = dims(in.shape());
  check_shape(out, {d.n, d.c, d.oh, d.ow}, "MaxPool2d output");
  argmax_.resize(static_cast<size_t>(out.numel()));  // keeps its storage once planned
  argmax_input_shape_ = in.shape();
  max_pool2d_forward(out.data(), argmax_.data(), in.data(), d);
}

void MaxPool2d::backward(Tensor& d_in, const Tensor& d_out, const Tensor& in,
                         const Tensor& /*out*/) {
  SN_CHECK(argmax_input_shape_ == in.shape(),
           "MaxPool2d: backward needs a forward on an input of shape {} first, the last forward "
           "saw {}",
           shape_str(in.shape()),
           argmax_input_shape_.empty() ? "none" : shape_str(argmax_input_shape_));
  Pool2dDims d = dims(in.shape());
  check_shape(d_out, {d.n, d.c, d.oh, d.ow}, "MaxPool2d d_out");
  check_shape(d_in, in.shape(), "MaxPool2d d_in");
  max_pool2d_backward(d_in.data(), d_out.data(), argmax_.data(), d);
}

std::string MaxPool2d::describe() const {
  return fmt::format("MaxPool2d(kernel={}, stride={}, padding={})", options_.kernel,
                     options_.stride, options_.padding);
}

int64_t MaxPool2d::flops(const Shape& in) const {
  Pool2dDims d = dims(in);
  return d.n * d.c * d.oh * d.ow * (d.k * d.k - 1);
}

}  // namespace scratchnet
