// int8_weights.h — what Conv2dInt8 and LinearInt8 share: int8 weights with one scale per
// output, a float bias, and the scale and zero point of the input.
//
//   weight            (OUT, ...) integers in [-127, 127] (I8 in model files); the float
//                     weight it stands for is weight[o, ...] * weight_scale[o]
//   weight_scale      (OUT) > 0
//   bias              (OUT)
//   input_scale       (1) > 0
//   input_zero_point  (1) an integer in [0, 255]
//
// An input value x becomes x_q = round_half_even(clamp(x * (1 / input_scale) +
// input_zero_point, 0, 255)) (quantize_u8 in int8_gemm.h), which stands for
// input_scale * (x_q - input_zero_point), and
//   out[o] = bias[o] + input_scale * weight_scale[o] * sum_k (x_q[k] - zero_point) * weight[o, k]
// with the sum exact in int32 (kernels/int8_gemm.h) and the rest in float.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "scratchnet/kernels/int8_gemm.h"
#include "scratchnet/layer.h"

namespace scratchnet {

struct Int8Weights {
  Tensor weight, weight_scale, bias, input_scale, input_zero_point;

  explicit Int8Weights(const Shape& weight_shape);  // zeros, scales 1

  // Under the names above; the weights are packed again on the next prepare() or use.
  std::vector<NamedBuffer> buffers();
  // Checks every tensor (the error names it and the bad value) and packs the weight as
  // (OUT, K), K = the weight's size per output; packed column j is weight column order[j]
  // (the identity when order is empty).
  void prepare(const std::vector<int64_t>& order = {});
  bool prepared() const { return prepared_; }

  // q (n) from x (n), as x_q above.
  void quantize(uint8_t* q, const float* x, int64_t n) const;
  // From integer sums acc = sum_k x_q[k] * weight[o, k] to the outputs: for one output o and
  // `count` sums acc[i * stride] into out (count); for every output o of one row, out (OUT).
  void output_column(float* out, const int32_t* acc, int64_t stride, int64_t count,
                     int64_t o) const;
  void output_row(float* out, const int32_t* acc) const;
  const Int8Packed& packed() const { return packed_; }
  int32_t zero_point() const { return zero_point_; }

 private:
  Int8Packed packed_;
  std::vector<int32_t> zero_sums_;  // (OUT) zero_point * sum_k weight[o, k]
  std::vector<float> out_scale_;    // (OUT) input_scale * weight_scale[o]
  int32_t zero_point_ = 0;
  float input_scale_ = 1;
  bool prepared_ = false;
};

}  // namespace scratchnet
