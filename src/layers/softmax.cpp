#include "scratchnet/layers/softmax.h"

#include <algorithm>
#include <cmath>

#include "scratchnet/check.h"
#include "scratchnet/parallel.h"

namespace scratchnet {

template <typename T>
void softmax_forward(T* out, const T* in, int64_t n, int64_t f) {
  for (int64_t i = 0; i < n; ++i) {
    const T* x = in + i * f;  // (F)
    T* y = out + i * f;       // (F)
    T m = x[0];
    for (int64_t j = 1; j < f; ++j) m = std::max(m, x[j]);
    // Every exponent is <= 0 and the largest is exactly 0, so 1 <= sum <= F.
    T sum = 0;
    for (int64_t j = 0; j < f; ++j) {
      y[j] = std::exp(x[j] - m);
      sum += y[j];
    }
    for (int64_t j = 0; j < f; ++j) y[j] /= sum;
  }
}

template <typename T>
void softmax_backward(T* d_in, const T* d_out, const T* out, int64_t n, int64_t f) {
  // dy_j/dx_k = y_j (delta_jk - y_k), so d_in_k = y_k (d_out_k - sum_j d_out_j y_j).
  for (int64_t i = 0; i < n; ++i) {
    const T* dy = d_out + i * f;  // (F)
    const T* y = out + i * f;     // (F)
    T* dx = d_in + i * f;         // (F)
    T dot = 0;
    for (int64_t j = 0; j < f; ++j) dot += dy[j] * y[j];
    for (int64_t j = 0; j < f; ++j) dx[j] = y[j] * (dy[j] - dot);
  }
}

template void softmax_forward<float>(float*, const float*, int64_t, int64_t);
template void softmax_forward<double>(double*, const double*, int64_t, int64_t);
template void softmax_backward<float>(float*, const float*, const float*, int64_t, int64_t);
template void softmax_backward<double>(double*, const double*, const double*, int64_t, int64_t);

Shape Softmax::output_shape(const Shape& in) const {
  if (in.size() != 2 || in[1] < 1)
    fail_input_shape(kind(), "a 2-D input (N, F) with F >= 1, taken over dim 1", in);
  return in;
}

void Softmax::forward(Tensor& out, const Tensor& in, Mode /*mode*/) {
  out.resize(output_shape(in.shape()));
  const int64_t f = in.dim(1);
  parallel_for(in.dim(0), parallel_grain(f), [&](int64_t begin, int64_t end) {
    softmax_forward(out.data() + begin * f, in.data() + begin * f, end - begin, f);
  });
}

void Softmax::backward(Tensor& d_in, const Tensor& d_out, const Tensor& in, const Tensor& out) {
  Shape shape = output_shape(in.shape());
  check_shape(d_out, shape, "Softmax: gradient of the output");
  check_shape(out, shape, "Softmax: forward output");
  d_in.resize(shape);
  const int64_t f = in.dim(1);
  parallel_for(in.dim(0), parallel_grain(f), [&](int64_t begin, int64_t end) {
    softmax_backward(d_in.data() + begin * f, d_out.data() + begin * f, out.data() + begin * f,
                     end - begin, f);
  });
}

int64_t Softmax::flops(const Shape& in) const { return kSoftmaxFlopsPerElement * shape_numel(in); }

}  // namespace scratchnet
