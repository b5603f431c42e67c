// conv2d_int8.h — a Conv2d run in int8 (post-training quantisation, quantize.h).
//
//   in     (N, C, H, W) float
//   out    (N, OC, OH, OW) float, shaped as Conv2d with the same options
//   weight (OC, C, K, K) and the other tensors of int8_weights.h, by those state_dict names
//
// out[n, oc, y, x] = bias[oc] + input_scale * weight_scale[oc] *
//     sum_{c, i, j} (in_q[n, c, y*stride + i - padding, x*stride + j - padding] - zero_point)
//                   * weight[oc, c, i, j]
// where in_q is the quantised input and the zero point stands in outside the input (a zero).
// The input is quantised once per batch into (N, H, W, C) bytes, so that each tap of the
// kernel copies C contiguous bytes, unfolded a block of output pixels at a time and
// multiplied in int8 (int8_gemm.h); blocks are split over threads, and the result does not
// depend on the thread count. Inference only: backward throws. describe() gives
// "Conv2dInt8(1, 32, kernel=3, stride=1, padding=0)".
#pragma once

#include <cstdint>
#include <vector>

#include "scratchnet/layers/conv2d.h"
#include "scratchnet/layers/int8_weights.h"

namespace scratchnet {

class Conv2dInt8 : public Layer {
 public:
  // The options of the convolution it replaces; `bias` is ignored (there is always one).
  explicit Conv2dInt8(const Conv2dOptions& options);

  std::string kind() const override { return "Conv2dInt8"; }
  Shape output_shape(const Shape& in) const override;
  void forward(Tensor& out, const Tensor& in, Mode mode) override;
  void backward(Tensor& d_in, const Tensor& d_out, const Tensor& in, const Tensor& out) override;
  std::string describe() const override;
  int64_t flops(const Shape& in) const override;  // as Conv2d's
  std::vector<NamedBuffer> buffers() override { return q_.buffers(); }
  void prepare() override;

  const Conv2dOptions& options() const { return options_; }
  Int8Weights& weights() { return q_; }

 private:
  Conv2dOptions options_;
  Int8Weights q_;
  std::vector<uint8_t> in_q_;  // (N, H, W, C) the quantised input
};

}  // namespace scratchnet
