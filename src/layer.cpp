#include "scratchnet/layer.h"

#include <cmath>

#include "scratchnet/check.h"

namespace scratchnet {

void init_weight_and_bias(Tensor& weight, Tensor* bias, int64_t fan_in, int64_t fan_out,
                          Init scheme, Rng& rng) {
  SN_CHECK(fan_in > 0 && fan_out > 0, "cannot initialise a weight with fan_in {} and fan_out {}",
           fan_in, fan_out);
  if (scheme == Init::kPyTorch) {
    // kaiming_uniform_(a=sqrt(5)): gain = sqrt(2 / (1 + 5)), bound = gain * sqrt(3 / fan_in)
    // = 1 / sqrt(fan_in).
    float bound = 1.0f / std::sqrt(static_cast<float>(fan_in));
    for (float& v : weight) v = rng.uniform(-bound, bound);
    if (bias)
      for (float& v : *bias) v = rng.uniform(-bound, bound);
  } else {
    float bound = std::sqrt(6.0f / static_cast<float>(fan_in + fan_out));
    for (float& v : weight) v = rng.uniform(-bound, bound);
    if (bias) bias->zero();
  }
}

void fail_input_shape(const std::string& kind, const std::string& what, const Shape& in) {
  fail("{}: expects {}, got input of shape {}", kind, what, shape_str(in));
}

}  // namespace scratchnet
