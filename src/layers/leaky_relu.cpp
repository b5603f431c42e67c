#include "scratchnet/layers/leaky_relu.h"

#include <fmt/format.h>

#include <cmath>

#include "scratchnet/check.h"
#include "scratchnet/parallel.h"

namespace scratchnet {

template <typename T>
void leaky_relu_forward(T* out, const T* in, int64_t n, float negative_slope) {
  const T slope = static_cast<T>(negative_slope);
  for (int64_t i = 0; i < n; ++i) out[i] = in[i] > T(0) ? in[i] : in[i] * slope;
}

template <typename T>
void leaky_relu_backward(T* d_in, const T* d_out, const T* in, int64_t n, float negative_slope) {
  const T slope = static_cast<T>(negative_slope);
  for (int64_t i = 0; i < n; ++i) d_in[i] = in[i] > T(0) ? d_out[i] : d_out[i] * slope;
}

template void leaky_relu_forward<float>(float*, const float*, int64_t, float);
template void leaky_relu_forward<double>(double*, const double*, int64_t, float);
template void leaky_relu_backward<float>(float*, const float*, const float*, int64_t, float);
template void leaky_relu_backward<double>(double*, const double*, const double*, int64_t, float);

LeakyReLU::LeakyReLU(const LeakyReLUOptions& options) : options_(options) {
  SN_CHECK(std::isfinite(options.negative_slope),
           "LeakyReLU: negative_slope must be a finite number, got {}", options.negative_slope);
}

// Element-wise: split over elements (any split gives the same bits).
void LeakyReLU::forward(Tensor& out, const Tensor& in, Mode /*mode*/) {
  out.resize(in.shape());
  parallel_for(in.numel(), parallel_grain(1), [&](int64_t begin, int64_t end) {
    leaky_relu_forward(out.data() + begin, in.data() + begin, end - begin, options_.negative_slope);
  });
}

void LeakyReLU::backward(Tensor& d_in, const Tensor& d_out, const Tensor& in,
                         const Tensor& /*out*/) {
  check_shape(d_out, in.shape(), "LeakyReLU: gradient of the output");
  d_in.resize(in.shape());
  parallel_for(in.numel(), parallel_grain(1), [&](int64_t begin, int64_t end) {
    leaky_relu_backward(d_in.data() + begin, d_out.data() + begin, in.data() + begin, end - begin,
                        options_.negative_slope);
  });
}

std::string LeakyReLU::describe() const {
  return fmt::format("LeakyReLU(negative_slope={})", options_.negative_slope);
}

int64_t LeakyReLU::flops(const Shape& in) const { return shape_numel(in); }

}  // namespace scratchnet
