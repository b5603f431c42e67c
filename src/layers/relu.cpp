#include "scratchnet/layers/relu.h"

#include "scratchnet/check.h"
#include "scratchnet/parallel.h"

namespace scratchnet {

template <typename T>
void relu_forward(T* out, const T* in, int64_t n) {
  // `in < 0 ? 0 : in` rather than `in > 0 ? in : 0` so a NaN passes through.
  for (int64_t i = 0; i < n; ++i) out[i] = in[i] < T(0) ? T(0) : in[i];
}

// d_out[i] is read unconditionally so the select vectorises (a conditional load does not).
template <typename T>
void relu_backward(T* d_in, const T* d_out, const T* in, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    const T g = d_out[i];
    d_in[i] = in[i] > T(0) ? g : T(0);
  }
}

template void relu_forward<float>(float*, const float*, int64_t);
template void relu_forward<double>(double*, const double*, int64_t);
template void relu_backward<float>(float*, const float*, const float*, int64_t);
template void relu_backward<double>(double*, const double*, const double*, int64_t);

// Element-wise, so any split of the elements gives the same bits: the work is divided over
// elements rather than the batch, which also balances a batch of one.
void ReLU::forward(Tensor& out, const Tensor& in, Mode /*mode*/) {
  out.resize(in.shape());
  parallel_for(in.numel(), parallel_grain(1), [&](int64_t begin, int64_t end) {
    relu_forward(out.data() + begin, in.data() + begin, end - begin);
  });
}

void ReLU::backward(Tensor& d_in, const Tensor& d_out, const Tensor& in, const Tensor& /*out*/) {
  check_shape(d_out, in.shape(), "ReLU: gradient of the output");
  d_in.resize(in.shape());
  parallel_for(in.numel(), parallel_grain(1), [&](int64_t begin, int64_t end) {
    relu_backward(d_in.data() + begin, d_out.data() + begin, in.data() + begin, end - begin);
  });
}

int64_t ReLU::flops(const Shape& in) const { return shape_numel(in); }

}  // namespace scratchnet
