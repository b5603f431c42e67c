#include "scratchnet/layers/tanh.h"

#include <cmath>

#include "scratchnet/check.h"
#include "scratchnet/parallel.h"

namespace scratchnet {

template <typename T>
void tanh_forward(T* out, const T* in, int64_t n) {
  for (int64_t i = 0; i < n; ++i) out[i] = std::tanh(in[i]);
}

template <typename T>
void tanh_backward(T* d_in, const T* d_out, const T* out, int64_t n) {
  // d tanh(x) / dx = 1 - tanh(x)^2
  for (int64_t i = 0; i < n; ++i) d_in[i] = d_out[i] * (T(1) - out[i] * out[i]);
}

template void tanh_forward<float>(float*, const float*, int64_t);
template void tanh_forward<double>(double*, const double*, int64_t);
template void tanh_backward<float>(float*, const float*, const float*, int64_t);
template void tanh_backward<double>(double*, const double*, const double*, int64_t);

// Element-wise: split over elements (any split gives the same bits).
void Tanh::forward(Tensor& out, const Tensor& in, Mode /*mode*/) {
  out.resize(in.shape());
  parallel_for(in.numel(), parallel_grain(1), [&](int64_t begin, int64_t end) {
    tanh_forward(out.data() + begin, in.data() + begin, end - begin);
  });
}

void Tanh::backward(Tensor& d_in, const Tensor& d_out, const Tensor& in, const Tensor& out) {
  check_shape(d_out, in.shape(), "Tanh: gradient of the output");
  check_shape(out, in.shape(), "Tanh: forward output");
  d_in.resize(in.shape());
  parallel_for(in.numel(), parallel_grain(1), [&](int64_t begin, int64_t end) {
    tanh_backward(d_in.data() + begin, d_out.data() + begin, out.data() + begin, end - begin);
  });
}

int64_t Tanh::flops(const Shape& in) const { return kTanhFlopsPerElement * shape_numel(in); }

}  // namespace scratchnet
