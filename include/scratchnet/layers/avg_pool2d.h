// avg_pool2d.h — 2-D average pooling, as torch.nn.AvgPool2d with its defaults
// (count_include_pad true, ceil_mode false, no divisor_override).
//
//   in   (N, C, H, W)     any C
//   out  (N, C, OH, OW)   OH = (H + 2*padding - K) / stride + 1, likewise OW
//
// out[n, c, y, x] = (1 / (K*K)) * sum_{i, j < K} in[n, c, y*stride + i - padding,
//                                                        x*stride + j - padding]
// with zeros outside the input: the divisor is always K*K, padded positions included.
// Backward spreads each d_out value, divided by K*K, over the real input elements of its
// window; where windows overlap (stride < K) the contributions add.
// stride 0 means stride = kernel (PyTorch's stride=None); padding is at most K/2.
// No parameters.
#pragma once

#include <cstdint>

#include "scratchnet/layer.h"
#include "scratchnet/layers/pool2d_dims.h"

namespace scratchnet {

struct AvgPool2dOptions {
  int64_t kernel = 0;   // required, >= 1 (square K x K)
  int64_t stride = 0;   // >= 1, or 0 for stride = kernel
  int64_t padding = 0;  // 0 <= padding <= kernel / 2, zeros on every side
};

// Reference kernels, instantiated for float and double (the gradient check runs in double).
// out (N, C, OH, OW) is overwritten.
template <typename T>
void avg_pool2d_forward(T* out, const T* in, const Pool2dDims& d);
// d_in (N, C, H, W) is overwritten from d_out (N, C, OH, OW).
template <typename T>
void avg_pool2d_backward(T* d_in, const T* d_out, const Pool2dDims& d);

class AvgPool2d : public Layer {
 public:
  explicit AvgPool2d(const AvgPool2dOptions& options);  // throws on invalid options

  std::string kind() const override { return "AvgPool2d"; }
  Shape output_shape(const Shape& in) const override;
  void forward(Tensor& out, const Tensor& in, Mode mode) override;
  void backward(Tensor& d_in, const Tensor& d_out, const Tensor& in, const Tensor& out) override;
  std::string describe() const override;          // "AvgPool2d(kernel=2, stride=2, padding=0)"
  int64_t flops(const Shape& in) const override;  // N*C*OH*OW*K*K

  // The options with stride resolved (never 0).
  const AvgPool2dOptions& options() const { return options_; }

 private:
  Pool2dDims dims(const Shape& in) const;
  AvgPool2dOptions options_;
};

}  // namespace scratchnet
