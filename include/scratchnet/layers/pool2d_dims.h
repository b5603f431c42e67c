// pool2d_dims.h — the sizes and checks shared by the 2-D pooling layers (MaxPool2d,
// AvgPool2d).
//
//   in   (N, C, H, W)     N >= 0; C, H, W >= 1
//   out  (N, C, OH, OW)   OH = (H + 2*padding - K) / stride + 1 (floor), likewise OW
//
// A K x K window moves by `stride` over the input padded by `padding` on every side, as in
// torch.nn.MaxPool2d / AvgPool2d with dilation 1 and ceil_mode false. Every (n, c) plane is
// pooled on its own. With padding <= K/2 (PyTorch's rule, enforced here) every window holds at
// least one real input element, and no window reaches past the padded input.
#pragma once

#include <fmt/format.h>

#include <algorithm>
#include <cstdint>
#include <string>

#include "scratchnet/check.h"
#include "scratchnet/layer.h"

namespace scratchnet {

// The sizes of one pooling call, derived from options and input shape. stride >= 1.
struct Pool2dDims {
  int64_t n, c, h, w;  // input
  int64_t oh, ow;      // output
  int64_t k, stride, padding;

  // The input rows [y0, y1) and columns [x0, x1) under output (oy, ox)'s window, clipped to
  // the input (never empty: padding <= K/2).
  struct Window {
    int64_t y0, y1, x0, x1;
  };
  Window window(int64_t oy, int64_t ox) const {
    const int64_t y = oy * stride - padding, x = ox * stride - padding;
    return {std::max<int64_t>(y, 0), std::min(y + k, h), std::max<int64_t>(x, 0),
            std::min(x + k, w)};
  }
};

// Throws "<kind>: kernel must be at least 1, got 0" and the like. stride 0 is accepted (it
// stands for stride = kernel, as PyTorch's stride=None).
inline void check_pool2d_options(const std::string& kind, int64_t kernel, int64_t stride,
                                 int64_t padding) {
  SN_CHECK(kernel >= 1, "{}: kernel must be at least 1, got {}", kind, kernel);
  SN_CHECK(stride >= 0, "{}: stride must be at least 1 (or 0 for stride = kernel), got {}", kind,
           stride);
  SN_CHECK(padding >= 0, "{}: padding must be at least 0, got {}", kind, padding);
  SN_CHECK(padding <= kernel / 2, "{}: padding must be at most kernel / 2 = {}, got {}", kind,
           kernel / 2, padding);
}

// The dims for input shape `in`, or throws "<kind>: expects ..., got input of shape ...".
// kernel, stride (>= 1, already resolved) and padding must have passed check_pool2d_options.
inline Pool2dDims pool2d_dims(const std::string& kind, const Shape& in, int64_t kernel,
                              int64_t stride, int64_t padding) {
  if (in.size() != 4) fail_input_shape(kind, "a 4-D input (N, C, H, W)", in);
  const int64_t n = in[0], c = in[1], h = in[2], w = in[3];
  if (n < 0 || c < 1 || h < 1 || w < 1)
    fail_input_shape(kind, "(N, C, H, W) with C, H and W at least 1", in);
  if (h + 2 * padding < kernel || w + 2 * padding < kernel)
    fail_input_shape(kind,
                     fmt::format("H and W of at least {} (kernel {}, padding {})",
                                 kernel - 2 * padding, kernel, padding),
                     in);
  return {.n = n,
          .c = c,
          .h = h,
          .w = w,
          .oh = (h + 2 * padding - kernel) / stride + 1,
          .ow = (w + 2 * padding - kernel) / stride + 1,
          .k = kernel,
          .stride = stride,
          .padding = padding};
}

}  // namespace scratchnet
