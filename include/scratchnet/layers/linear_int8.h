// linear_int8.h — a Linear run in int8 (post-training quantisation, quantize.h).
//
//   in     (N, F_in) float
//   out    (N, F_out) float
//   weight (F_out, F_in) and the other tensors of int8_weights.h, by those state_dict names
//
// out[n, o] = bias[o] + input_scale * weight_scale[o] * sum_i (in_q[n, i] - zero_point) * weight[o,
// i]
//
// Rows are quantised, multiplied in int8 (int8_gemm.h) in blocks of rows split over threads;
// the result does not depend on the thread count. Inference only: backward throws.
// describe() gives "LinearInt8(1600, 128)".
#pragma once

#include <cstdint>
#include <vector>

#include "scratchnet/layers/int8_weights.h"
#include "scratchnet/layers/linear.h"

namespace scratchnet {

class LinearInt8 : public Layer {
 public:
  // The options of the Linear it replaces; `bias` is ignored (there is always one).
  explicit LinearInt8(const LinearOptions& options);

  std::string kind() const override { return "LinearInt8"; }
  Shape output_shape(const Shape& in) const override;
  void forward(Tensor& out, const Tensor& in, Mode mode) override;
  void backward(Tensor& d_in, const Tensor& d_out, const Tensor& in, const Tensor& out) override;
  std::string describe() const override;
  int64_t flops(const Shape& in) const override;  // as Linear's
  std::vector<NamedBuffer> buffers() override { return q_.buffers(); }
  void prepare() override { q_.prepare(); }

  const LinearOptions& options() const { return options_; }
  Int8Weights& weights() { return q_; }

 private:
  LinearOptions options_;
  Int8Weights q_;
  std::vector<uint8_t> in_q_;  // (N, kp) quantised rows, zero past F_in
  std::vector<int32_t> acc_;   // (N, F_out) the integer sums
};

}  // namespace scratchnet
