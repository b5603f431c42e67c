#include "scratchnet/layers/flatten.h"

#include <algorithm>

#include "scratchnet/check.h"
#include "scratchnet/parallel.h"

namespace scratchnet {

template <typename T>
void flatten_forward(T* out, const T* in, int64_t n) {
  std::copy(in, in + n, out);
}

template <typename T>
void flatten_backward(T* d_in, const T* d_out, int64_t n) {
  std::copy(d_out, d_out + n, d_in);
}

template void flatten_forward<float>(float*, const float*, int64_t);
template void flatten_forward<double>(double*, const double*, int64_t);
template void flatten_backward<float>(float*, const float*, int64_t);
template void flatten_backward<double>(double*, const double*, int64_t);

Shape Flatten::output_shape(const Shape& in) const {
  if (in.size() < 2) fail_input_shape(kind(), "at least 2 dimensions (N, ...)", in);
  return {in[0], shape_numel(Shape(in.begin() + 1, in.end()))};
}

// A copy: split over elements (any split gives the same bits).
void Flatten::forward(Tensor& out, const Tensor& in, Mode /*mode*/) {
  out.resize(output_shape(in.shape()));
  parallel_for(in.numel(), parallel_grain(1), [&](int64_t begin, int64_t end) {
    flatten_forward(out.data() + begin, in.data() + begin, end - begin);
  });
}

void Flatten::backward(Tensor& d_in, const Tensor& d_out, const Tensor& in, const Tensor& /*out*/) {
  check_shape(d_out, output_shape(in.shape()), "Flatten: gradient of the output");
  d_in.resize(in.shape());
  parallel_for(in.numel(), parallel_grain(1), [&](int64_t begin, int64_t end) {
    flatten_backward(d_in.data() + begin, d_out.data() + begin, end - begin);
  });
}

int64_t Flatten::flops(const Shape& /*in*/) const { return 0; }

}  // namespace scratchnet
