#include "scratchnet/layers/linear.h"

#include <fmt/format.h>

#include <algorithm>
#include <type_traits>

#include "scratchnet/check.h"
#include "scratchnet/kernels/gemm.h"
#include "scratchnet/parallel.h"

namespace scratchnet {

namespace {

constexpr int kLanes = 8;  // independent partial sums in a dot product, so it vectorises
constexpr int kRows = 4;   // rows processed together, so a shared row is read once per block
static_assert(kLanes == 8, "dot() combines exactly eight partial sums");

// sum_i a[i] * x[i] with kLanes partial sums over i in steps of kLanes, combined in a fixed
// tree, then the tail: the order depends only on len.
template <typename T>
T dot(const T* a, const T* x, int64_t len) {
  T acc[kLanes] = {};
  int64_t i = 0;
  for (; i + kLanes <= len; i += kLanes)
    for (int l = 0; l < kLanes; ++l) acc[l] += a[i + l] * x[i + l];
  T s = ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
  for (; i < len; ++i) s += a[i] * x[i];
  return s;
}

// y[i] += a * x[i]
template <typename T>
void axpy(T* __restrict y, T a, const T* __restrict x, int64_t len) {
  for (int64_t i = 0; i < len; ++i) y[i] += a * x[i];
}

// The float path: matrix products on gemm (results independent of the thread count, as
// gemm_parallel guarantees). out = bias + in @ weight^T: out starts as the bias rows, then
// gemm accumulates into it.
void linear_forward_gemm(float* out, const float* in, const float* weight, const float* bias,
                         int64_t n, int64_t f_in, int64_t f_out) {
  if (bias)
    for (int64_t i = 0; i < n; ++i) std::copy(bias, bias + f_out, out + i * f_out);
  gemm_parallel({.trans_b = true,
                 .m = n,
                 .n = f_out,
                 .k = f_in,
                 .a = in,
                 .lda = f_in,
                 .b = weight,
                 .ldb = f_in,
                 .beta = bias ? 1.0f : 0.0f,
                 .c = out,
                 .ldc = f_out});
}

// d_in = d_out @ weight; d_weight += d_out^T @ in (summing over the batch in order); d_bias +=
// column sums of d_out, each summed over n = 0, 1, ... then added.
void linear_backward_gemm(float* d_in, float* d_weight, float* d_bias, const float* d_out,
                          const float* in, const float* weight, int64_t n, int64_t f_in,
                          int64_t f_out) {
  if (d_in)
    gemm_parallel({.m = n,
                   .n = f_in,
                   .k = f_out,
                   .a = d_out,
                   .lda = f_out,
                   .b = weight,
                   .ldb = f_in,
                   .beta = 0.0f,
                   .c = d_in,
                   .ldc = f_in});
  if (d_weight)
    gemm_parallel({.trans_a = true,
                   .m = f_out,
                   .n = f_in,
                   .k = n,
                   .a = d_out,
                   .lda = f_out,
                   .b = in,
                   .ldb = f_in,
                   .beta = 1.0f,
                   .c = d_weight,
                   .ldc = f_in});
  if (d_bias) {
    constexpr int64_t kChunk = 256;  // columns summed together, vectorised over o
    for (int64_t o0 = 0; o0 < f_out; o0 += kChunk) {
      const int64_t count = std::min(kChunk, f_out - o0);
      float sum[kChunk] = {};
      for (int64_t i = 0; i < n; ++i) {
        const float* row = d_out + i * f_out + o0;
        for (int64_t o = 0; o < count; ++o) sum[o] += row[o];
      }
      for (int64_t o = 0; o < count; ++o) d_bias[o0 + o] += sum[o];
    }
  }
}

}  // namespace

template <typename T>
void linear_forward(T* out, const T* in, const T* weight, const T* bias, int64_t n, int64_t f_in,
                    int64_t f_out) {
  if constexpr (std::is_same_v<T, float>) {  // the fast path; the loops below are the reference
    return linear_forward_gemm(out, in, weight, bias, n, f_in, f_out);
  }
  // Blocks of kRows input rows (N, F_in) against each weight row (F_in) in turn, so the
  // weight is read once per block while the block's rows stay in cache.
  parallel_for(n, [&](int64_t begin, int64_t end) {
    for (int64_t b = begin; b < end; b += kRows) {
      const int64_t count = std::min<int64_t>(kRows, end - b);
      for (int64_t o = 0; o < f_out; ++o) {
        const T* w = weight + o * f_in;
        const T add = bias ? bias[o] : T(0);
        for (int64_t r = 0; r < count; ++r)
          out[(b + r) * f_out + o] = dot(in + (b + r) * f_in, w, f_in) + add;
      }
    }
  });
}

template <typename T>
void linear_backward(T* d_in, T* d_weight, T* d_bias, const T* d_out, const T* in, const T* weight,
                     int64_t n, int64_t f_in, int64_t f_out) {
  if constexpr (std::is_same_v<T, float>) {  // the fast path; the loops below are the reference
    return linear_backward_gemm(d_in, d_weight, d_bias, d_out, in, weight, n, f_in, f_out);
  }
  // d_in[n, :] = sum_o d_out[n, o] * weight[o, :]: scaled weight rows accumulated into a block
  // of kRows input-gradient rows (N, F_in), so each weight row is read once per block.
  if (d_in) {
    parallel_for(n, [&](int64_t begin, int64_t end) {
      for (int64_t b = begin; b < end; b += kRows) {
        int64_t count = std::min<int64_t>(kRows, end - b);
        std::fill(d_in + b * f_in, d_in + (b + count) * f_in, T(0));
        for (int64_t o = 0; o < f_out; ++o)
          for (int64_t r = 0; r < count; ++r)
            axpy(d_in + (b + r) * f_in, d_out[(b + r) * f_out + o], weight + o * f_in, f_in);
      }
    });
  }
  // d_weight[o, :] += sum_n d_out[n, o] * in[n, :], for n = 0, 1, ... in order; d_bias[o] +=
  // sum_n d_out[n, o]. Blocks of kRows weight-gradient rows (F_out, F_in) share each input row.
  if (d_weight || d_bias) {
    parallel_for(f_out, [&](int64_t begin, int64_t end) {
      for (int64_t o0 = begin; o0 < end; o0 += kRows) {
        int64_t count = std::min<int64_t>(kRows, end - o0);
        if (d_weight)
          for (int64_t i = 0; i < n; ++i)
            for (int64_t r = 0; r < count; ++r)
              axpy(d_weight + (o0 + r) * f_in, d_out[i * f_out + o0 + r], in + i * f_in, f_in);
        if (d_bias)
          for (int64_t r = 0; r < count; ++r) {
            T sum = 0;
            for (int64_t i = 0; i < n; ++i) sum += d_out[i * f_out + o0 + r];
            d_bias[o0 + r] += sum;
          }
      }
    });
  }
}

template void linear_forward<float>(float*, const float*, const float*, const float*, int64_t,
                                    int64_t, int64_t);
template void linear_forward<double>(double*, const double*, const double*, const double*, int64_t,
                                     int64_t, int64_t);
template void linear_backward<float>(float*, float*, float*, const float*, const float*,
                                     const float*, int64_t, int64_t, int64_t);
template void linear_backward<double>(double*, double*, double*, const double*, const double*,
                                      const double*, int64_t, int64_t, int64_t);

Linear::Linear(const LinearOptions& options) : options_(options) {
  SN_CHECK(options.in_features >= 1, "Linear: in_features must be at least 1, got {}",
           options.in_features);
  SN_CHECK(options.out_features >= 1, "Linear: out_features must be at least 1, got {}",
           options.out_features);
  weight_ = Parameter({options.out_features, options.in_features});
  if (options.bias) bias_ = Parameter({options.out_features});
}

Shape Linear::output_shape(const Shape& in) const {
  const int64_t f_in = options_.in_features;
  if (in.size() > 2) {
    int64_t flat = shape_numel(Shape(in.begin() + 1, in.end()));
    fail(
        "Linear: expects a 2-D input (N, {}), got input of shape {}; add a Flatten before it "
        "(it would give {} features)",
        f_in, shape_str(in), flat);
  }
  if (in.size() != 2) fail_input_shape(kind(), fmt::format("a 2-D input (N, {})", f_in), in);
  SN_CHECK(in[1] == f_in, "Linear: expects {} input features, got {} (input shape {})", f_in, in[1],
           shape_str(in));
  return {in[0], options_.out_features};
}

void Linear::forward(Tensor& out, const Tensor& in, Mode /*mode*/) {
  check_shape(out, output_shape(in.shape()), "Linear: output");
  linear_forward(out.data(), in.data(), weight_.value.data(),
                 options_.bias ? bias_.value.data() : nullptr, in.dim(0), options_.in_features,
                 options_.out_features);
}

void Linear::backward(Tensor& d_in, const Tensor& d_out, const Tensor& in, const Tensor& /*out*/) {
  check_shape(d_in, in.shape(), "Linear: gradient of the input");
  run_backward(&d_in, d_out, in);
}

bool Linear::backward_params(const Tensor& d_out, const Tensor& in, const Tensor& /*out*/) {
  run_backward(nullptr, d_out, in);
  return true;
}

void Linear::run_backward(Tensor* d_in, const Tensor& d_out, const Tensor& in) {
  check_shape(d_out, output_shape(in.shape()), "Linear: gradient of the output");
  linear_backward(d_in ? d_in->data() : nullptr, weight_.grad.data(),
                  options_.bias ? bias_.grad.data() : nullptr, d_out.data(), in.data(),
                  weight_.value.data(), in.dim(0), options_.in_features, options_.out_features);
}

std::string Linear::describe() const {
  return fmt::format("Linear({}, {}{})", options_.in_features, options_.out_features,
                     options_.bias ? "" : ", bias=false");
}

int64_t Linear::flops(const Shape& in) const {
  const int64_t n = output_shape(in)[0];
  const int64_t f_in = options_.in_features, f_out = options_.out_features;
  return 2 * n * f_in * f_out + (options_.bias ? n * f_out : 0);
}

std::vector<NamedParameter> Linear::params() {
  std::vector<NamedParameter> p{{"weight", &weight_}};
  if (options_.bias) p.push_back({"bias", &bias_});
  return p;
}

void Linear::init(Init scheme, Rng& rng) {
  init_weight_and_bias(weight_.value, options_.bias ? &bias_.value : nullptr, options_.in_features,
                       options_.out_features, scheme, rng);
}

}  // namespace scratchnet
