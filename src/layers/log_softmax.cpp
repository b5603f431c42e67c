#include "scratchnet/layers/log_softmax.h"

#include <algorithm>
#include <cmath>

#include "scratchnet/check.h"
#include "scratchnet/parallel.h"

namespace scratchnet {

template <typename T>
void log_softmax_forward(T* out, const T* in, int64_t n, int64_t f) {
  for (int64_t i = 0; i < n; ++i) {
    const T* x = in + i * f;  // (F)
    T* y = out + i * f;       // (F)
    T m = x[0];
    for (int64_t j = 1; j < f; ++j) m = std::max(m, x[j]);
    // log sum_j exp(x_j) = m + log sum_j exp(x_j - m); the sum is in [1, F].
    T sum = 0;
    for (int64_t j = 0; j < f; ++j) sum += std::exp(x[j] - m);
    const T log_sum = std::log(sum);
    for (int64_t j = 0; j < f; ++j) y[j] = (x[j] - m) - log_sum;
  }
}

template <typename T>
void log_softmax_backward(T* d_in, const T* d_out, const T* out, int64_t n, int64_t f) {
  // dy_j/dx_k = delta_jk - softmax_k, so d_in_k = d_out_k - exp(y_k) sum_j d_out_j.
  for (int64_t i = 0; i < n; ++i) {
    const T* dy = d_out + i * f;  // (F)
    const T* y = out + i * f;     // (F)
    T* dx = d_in + i * f;         // (F)
    T sum = 0;
    for (int64_t j = 0; j < f; ++j) sum += dy[j];
    for (int64_t j = 0; j < f; ++j) dx[j] = dy[j] - std::exp(y[j]) * sum;
  }
}

template void log_softmax_forward<float>(float*, const float*, int64_t, int64_t);
template void log_softmax_forward<double>(double*, const double*, int64_t, int64_t);
template void log_softmax_backward<float>(float*, const float*, const float*, int64_t, int64_t);
template void log_softmax_backward<double>(double*, const double*, const double*, int64_t, int64_t);

Shape LogSoftmax::output_shape(const Shape& in) const {
  if (in.size() != 2 || in[1] < 1)
    fail_input_shape(kind(), "a 2-D input (N, F) with F >= 1, taken over dim 1", in);
  return in;
}

void LogSoftmax::forward(Tensor& out, const Tensor& in, Mode /*mode*/) {
  out.resize(output_shape(in.shape()));
  const int64_t f = in.dim(1);
  parallel_for(in.dim(0), parallel_grain(f), [&](int64_t begin, int64_t end) {
    log_softmax_forward(out.data() + begin * f, in.data() + begin * f, end - begin, f);
  });
}

void LogSoftmax::backward(Tensor& d_in, const Tensor& d_out, const Tensor& in, const Tensor& out) {
  Shape shape = output_shape(in.shape());
  check_shape(d_out, shape, "LogSoftmax: gradient of the output");
  check_shape(out, shape, "LogSoftmax: forward output");
  d_in.resize(shape);
  const int64_t f = in.dim(1);
  parallel_for(in.dim(0), parallel_grain(f), [&](int64_t begin, int64_t end) {
    log_softmax_backward(d_in.data() + begin * f, d_out.data() + begin * f, out.data() + begin * f,
                         end - begin, f);
  });
}

int64_t LogSoftmax::flops(const Shape& in) const {
  return kLogSoftmaxFlopsPerElement * shape_numel(in);
}

}  // namespace scratchnet
