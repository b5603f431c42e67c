#include "scratchnet/layers/dropout.h"

#include <fmt/format.h>

#include <algorithm>

#include "scratchnet/check.h"
#include "scratchnet/parallel.h"

namespace scratchnet {

template <typename T>
void dropout_mask(T* mask, int64_t n, float p, Rng& rng) {
  // Keep with probability P(u >= p) = 1 - p; scale the kept by 1 / (1 - p) so that
  // E[mask] = 1. p == 1 keeps nothing, and its scale is 0 rather than inf.
  const T scale = p < 1.0f ? T(1) / (T(1) - static_cast<T>(p)) : T(0);
  for (int64_t i = 0; i < n; ++i) mask[i] = rng.uniform() < p ? T(0) : scale;
}

template <typename T>
void dropout_forward(T* out, const T* in, const T* mask, int64_t n) {
  for (int64_t i = 0; i < n; ++i) out[i] = in[i] * mask[i];
}

template <typename T>
void dropout_backward(T* d_in, const T* d_out, const T* mask, int64_t n) {
  for (int64_t i = 0; i < n; ++i) d_in[i] = d_out[i] * mask[i];
}

template void dropout_mask<float>(float*, int64_t, float, Rng&);
template void dropout_mask<double>(double*, int64_t, float, Rng&);
template void dropout_forward<float>(float*, const float*, const float*, int64_t);
template void dropout_forward<double>(double*, const double*, const double*, int64_t);
template void dropout_backward<float>(float*, const float*, const float*, int64_t);
template void dropout_backward<double>(double*, const double*, const double*, int64_t);

Dropout::Dropout(const DropoutOptions& options) : options_(options), rng_(options.seed) {
  SN_CHECK(options.p >= 0.0f && options.p <= 1.0f, "Dropout: p must be in [0, 1], got {}",
           options.p);
}

void Dropout::forward(Tensor& out, const Tensor& in, Mode mode) {
  out.resize(in.shape());
  masked_ = mode == Mode::kTrain;
  if (!masked_) {
    parallel_for(in.numel(), parallel_grain(1), [&](int64_t begin, int64_t end) {
      std::copy(in.data() + begin, in.data() + end, out.data() + begin);
    });
    return;
  }
  mask_.resize(in.shape());                                     // same shape as in
  dropout_mask(mask_.data(), mask_.numel(), options_.p, rng_);  // sequential: reproducible
  parallel_for(in.numel(), parallel_grain(1), [&](int64_t begin, int64_t end) {
    dropout_forward(out.data() + begin, in.data() + begin, mask_.data() + begin, end - begin);
  });
}

void Dropout::backward(Tensor& d_in, const Tensor& d_out, const Tensor& in, const Tensor& /*out*/) {
  check_shape(d_out, in.shape(), "Dropout: gradient of the output");
  d_in.resize(in.shape());
  if (!masked_) {
    parallel_for(in.numel(), parallel_grain(1), [&](int64_t begin, int64_t end) {
      std::copy(d_out.data() + begin, d_out.data() + end, d_in.data() + begin);
    });
    return;
  }
  SN_CHECK(mask_.shape() == in.shape(),
           "Dropout: backward input of shape {} does not match the last training forward's {}",
           shape_str(in.shape()), shape_str(mask_.shape()));
  parallel_for(in.numel(), parallel_grain(1), [&](int64_t begin, int64_t end) {
    dropout_backward(d_in.data() + begin, d_out.data() + begin, mask_.data() + begin, end - begin);
  });
}

std::string Dropout::describe() const { return fmt::format("Dropout(p={})", options_.p); }

int64_t Dropout::flops(const Shape& in) const { return shape_numel(in); }

}  // namespace scratchnet
