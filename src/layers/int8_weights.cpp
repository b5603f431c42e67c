#include "scratchnet/layers/int8_weights.h"

#include <algorithm>
#include <cmath>

#include "scratchnet/check.h"

namespace scratchnet {

Int8Weights::Int8Weights(const Shape& weight_shape)
    : weight(weight_shape),
      weight_scale({weight_shape.at(0)}),
      bias({weight_shape.at(0)}),
      input_scale({1}),
      input_zero_point({1}) {
  weight_scale.fill(1);
  input_scale.fill(1);
}

std::vector<NamedBuffer> Int8Weights::buffers() {
  prepared_ = false;
  return {{"weight", &weight, true},
          {"weight_scale", &weight_scale},
          {"bias", &bias},
          {"input_scale", &input_scale},
          {"input_zero_point", &input_zero_point}};
}

void Int8Weights::prepare(const std::vector<int64_t>& order) {
  const int64_t outs = weight.dim(0), k = weight.numel() / outs;
  for (float w : weight)
    SN_CHECK(w == std::nearbyint(w) && w >= -127 && w <= 127,
             "weight holds {}, expected integers in [-127, 127]", w);
  for (float s : weight_scale)
    SN_CHECK(std::isfinite(s) && s > 0, "weight_scale holds {}, expected positive scales", s);
  for (float b : bias) SN_CHECK(std::isfinite(b), "bias holds {}, expected finite values", b);
  input_scale_ = input_scale.data()[0];
  SN_CHECK(std::isfinite(input_scale_) && input_scale_ > 0,
           "input_scale is {}, expected a positive scale", input_scale_);
  const float z = input_zero_point.data()[0];
  SN_CHECK(z == std::nearbyint(z) && z >= 0 && z <= 255,
           "input_zero_point is {}, expected an integer in [0, 255]", z);
  zero_point_ = static_cast<int32_t>(z);

  SN_CHECK(order.empty() || static_cast<int64_t>(order.size()) == k,
           "a column order of {} for weights of {} columns", order.size(), k);
  std::vector<int8_t> w(weight.begin(), weight.end());
  if (!order.empty())
    for (int64_t o = 0; o < outs; ++o)
      for (int64_t j = 0; j < k; ++j)
        w[o * k + j] = static_cast<int8_t>(weight.data()[o * k + order[j]]);
  packed_ = pack_int8(w.data(), outs, k);
  zero_sums_.resize(outs);
  out_scale_.resize(outs);
  for (int64_t o = 0; o < outs; ++o) {
    zero_sums_[o] = zero_point_ * packed_.row_sums[o];
    out_scale_[o] = input_scale_ * weight_scale.data()[o];
  }
  prepared_ = true;
}

void Int8Weights::output_column(float* out, const int32_t* acc, int64_t stride, int64_t count,
                                int64_t o) const {
  const int32_t zero_sum = zero_sums_[o];
  const float scale = out_scale_[o], b = bias.data()[o];
  for (int64_t i = 0; i < count; ++i)
    out[i] = static_cast<float>(acc[i * stride] - zero_sum) * scale + b;
}

void Int8Weights::output_row(float* out, const int32_t* acc) const {
  const float* b = bias.data();
  for (size_t o = 0; o < zero_sums_.size(); ++o)
    out[o] = static_cast<float>(acc[o] - zero_sums_[o]) * out_scale_[o] + b[o];
}

void Int8Weights::quantize(uint8_t* q, const float* x, int64_t n) const {
  quantize_u8(q, x, n, 1 / input_scale_, static_cast<float>(zero_point_));
}

}  // namespace scratchnet
