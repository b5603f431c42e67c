#include "scratchnet/layers/sigmoid.h"

#include <cmath>

#include "scratchnet/check.h"
#include "scratchnet/parallel.h"

namespace scratchnet {

template <typename T>
void sigmoid_forward(T* out, const T* in, int64_t n) {
  // For very negative x, exp(-x) overflows to inf and the result is exactly 0.
  for (int64_t i = 0; i < n; ++i) out[i] = T(1) / (T(1) + std::exp(-in[i]));
}

template <typename T>
void sigmoid_backward(T* d_in, const T* d_out, const T* out, int64_t n) {
  // d sigmoid(x) / dx = sigmoid(x) * (1 - sigmoid(x))
  for (int64_t i = 0; i < n; ++i) d_in[i] = d_out[i] * out[i] * (T(1) - out[i]);
}

template void sigmoid_forward<float>(float*, const float*, int64_t);
template void sigmoid_forward<double>(double*, const double*, int64_t);
template void sigmoid_backward<float>(float*, const float*, const float*, int64_t);
template void sigmoid_backward<double>(double*, const double*, const double*, int64_t);

// Element-wise: split over elements (any split gives the same bits).
void Sigmoid::forward(Tensor& out, const Tensor& in, Mode /*mode*/) {
  out.resize(in.shape());
  parallel_for(in.numel(), parallel_grain(1), [&](int64_t begin, int64_t end) {
    sigmoid_forward(out.data() + begin, in.data() + begin, end - begin);
  });
}

void Sigmoid::backward(Tensor& d_in, const Tensor& d_out, const Tensor& in, const Tensor& out) {
  check_shape(d_out, in.shape(), "Sigmoid: gradient of the output");
  check_shape(out, in.shape(), "Sigmoid: forward output");
  d_in.resize(in.shape());
  parallel_for(in.numel(), parallel_grain(1), [&](int64_t begin, int64_t end) {
    sigmoid_backward(d_in.data() + begin, d_out.data() + begin, out.data() + begin, end - begin);
  });
}

int64_t Sigmoid::flops(const Shape& in) const { return kSigmoidFlopsPerElement * shape_numel(in); }

}  // namespace scratchnet
