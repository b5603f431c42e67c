// tanh.h — hyperbolic tangent, as torch.nn.Tanh.
//
//   in   any shape, e.g. (N, C, H, W) or (N, F)
//   out  same shape as in, values in [-1, 1]
//
// out = tanh(in); its derivative is 1 - out^2, so backward needs only the forward output.
// No parameters.
// flops: kTanhFlopsPerElement (4) per element, the convention shared with Sigmoid: an
// exponential counts as one operation, plus the three arithmetic operations around it
// (tanh(x) = 2 sigmoid(2x) - 1 with the scalings folded in).
#pragma once

#include <cstdint>

#include "scratchnet/layer.h"

namespace scratchnet {

inline constexpr int64_t kTanhFlopsPerElement = 4;

// Reference kernels, instantiated for float and double (the gradient check runs in double).
// out (n) = tanh(in (n)), overwritten.
template <typename T>
void tanh_forward(T* out, const T* in, int64_t n);
// d_in (n) = d_out * (1 - out^2), overwritten; `out` is the forward output.
template <typename T>
void tanh_backward(T* d_in, const T* d_out, const T* out, int64_t n);

class Tanh : public Layer {
 public:
  Tanh() = default;

  std::string kind() const override { return "Tanh"; }
  Shape output_shape(const Shape& in) const override { return in; }
  void forward(Tensor& out, const Tensor& in, Mode mode) override;
  void backward(Tensor& d_in, const Tensor& d_out, const Tensor& in, const Tensor& out) override;
  std::string describe() const override { return "Tanh"; }
  int64_t flops(const Shape& in) const override;
};

}  // namespace scratchnet
