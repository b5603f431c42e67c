// flatten.h — flattens every dimension after the batch, as torch.nn.Flatten() (start_dim 1,
// end_dim -1).
//
//   in   (N, d1, d2, ...), at least 2 dimensions
//   out  (N, d1 * d2 * ...)
//
// Row-major storage makes this a copy: element i of the input is element i of the output.
// Backward copies the gradient back into the input's shape. No parameters; flops: 0.
#pragma once

#include <cstdint>

#include "scratchnet/layer.h"

namespace scratchnet {

// Reference kernels, instantiated for float and double (the gradient check runs in double).
// out (n) = in (n), overwritten.
template <typename T>
void flatten_forward(T* out, const T* in, int64_t n);
// d_in (n) = d_out (n), overwritten.
template <typename T>
void flatten_backward(T* d_in, const T* d_out, int64_t n);

class Flatten : public Layer {
 public:
  Flatten() = default;

  std::string kind() const override { return "Flatten"; }
  Shape output_shape(const Shape& in) const override;  // throws for fewer than 2 dimensions
  void forward(Tensor& out, const Tensor& in, Mode mode) override;
  void backward(Tensor& d_in, const Tensor& d_out, const Tensor& in, const Tensor& out) override;
  std::string describe() const override { return "Flatten"; }
  int64_t flops(const Shape& in) const override;
  bool reshapes(Mode /*mode*/) const override { return true; }
};

}  // namespace scratchnet
