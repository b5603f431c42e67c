// batch_norm_pool.cpp — BatchNorm2d in training, ReLU and a max-pool as one pass per channel.
//
// One by one, the three layers write the batch-norm output (N, C, H, W) and read it back to
// pool it, and their backward writes the pool's full-size gradient and reads it back for the
// batch norm's sums: four trips through memory of the largest activation. Here a channel's
// batch-norm output is made one plane at a time in a small buffer and pooled at once, and
// its pooled gradient is spread back a few planes at a time into a buffer that stays in L1
// for the sums (the input gradient then follows sample by sample, inside the convolution's
// backward), or, when the input gradient is asked for at once, into a channel-sized buffer
// (N * H * W floats, one per thread, reused) that stays in the cache for both. Each value
// is computed by the same kernels in the same order as one by one, so the bits are the same.
#include <algorithm>
#include <type_traits>
#include <vector>

#if defined(__x86_64__) || defined(_M_X64)
#include <immintrin.h>

#include "../kernels/transpose_avx512.h"
#endif

#include "batch_norm_sums.h"
#include "scratchnet/check.h"
#include "scratchnet/layers/batch_norm.h"
#include "scratchnet/layers/relu.h"
#include "scratchnet/parallel.h"

namespace scratchnet {

using namespace batch_norm_sums;

template <typename T>
void batch_norm_relu_pool_forward_train(T* out, int32_t* argmax, T* mean, T* var, T* invstd,
                                        T* scale, const T* in, const T* gamma, const T* beta,
                                        const Pool2dDims& d, double eps) {
  const int64_t spatial = d.h * d.w, pooled = d.oh * d.ow;
  const int64_t stride = d.c * spatial, out_stride = d.c * pooled;
  parallel_for(d.c, parallel_grain(d.n * spatial), [&](int64_t c0, int64_t c1) {
    thread_local std::vector<T> plane;  // one sample's batch-norm output (H, W)
    plane.resize(static_cast<size_t>(spatial));
    for (int64_t ch = c0; ch < c1; ++ch) {
      const T* x = in + ch * spatial;
      scale[ch] = train_statistics(mean + ch, var + ch, invstd + ch, x, stride, gamma[ch], d.n,
                                   spatial, eps);
      for (int64_t i = 0; i < d.n; ++i) {
        affine_rows(plane.data(), x + i * stride, mean[ch], scale[ch], beta[ch], 1, 0, spatial);
        T* o = out + i * out_stride + ch * pooled;
        max_pool2d_forward_plane(o, argmax + i * out_stride + ch * pooled, plane.data(), d);
        relu_forward(o, o, pooled);
      }
    }
  });
}

namespace {

// Channel ch's gradient at the batch norm's output for samples [i0, i1), plane after plane
// in d_norm ((i1 - i0), H, W): relu_backward, then max_pool2d_backward; d_pool (OH, OW) is
// scratch.
template <typename T>
void normed_grad(T* d_norm, T* d_pool, const T* d_out, const T* out, const int32_t* argmax,
                 int64_t ch, int64_t i0, int64_t i1, const Pool2dDims& d) {
  const int64_t spatial = d.h * d.w, pooled = d.oh * d.ow, out_stride = d.c * pooled;
  for (int64_t i = i0; i < i1; ++i) {
    const int64_t at = i * out_stride + ch * pooled;
    if (i + 1 < d.n)  // the next sample's planes, a stride apart the prefetchers do not follow
      for (int64_t k = 0; k < pooled; k += 64 / sizeof(T)) {
        __builtin_prefetch(d_out + at + out_stride + k);
        __builtin_prefetch(out + at + out_stride + k);
        __builtin_prefetch(argmax + at + out_stride + k);
      }
    relu_backward(d_pool, d_out + at, out + at, pooled);
    max_pool2d_backward_plane(d_norm + (i - i0) * spatial, d_pool, argmax + at, d);
  }
}

#if defined(__x86_64__) || defined(_M_X64)

// backward_row_avx512's lanes m at d_in[at] from the batch-norm output's gradient dn.
struct NormedRow {
  float* d_in;
  const float* x;
  __m512 k, a, b, mean;
  __attribute__((target("avx512f"))) void store(int64_t at, __mmask16 m, __m512 dn) const {
    const __m512 d_hat = _mm512_mul_ps(_mm512_sub_ps(_mm512_maskz_loadu_ps(m, x + at), mean), b);
    _mm512_mask_storeu_ps(d_in + at, m,
                          _mm512_mul_ps(k, _mm512_sub_ps(_mm512_sub_ps(dn, a), d_hat)));
  }
};

// normed_grad and backward_rows of one sample's channel plane in one pass, for a 2x2 max-pool
// of stride 2 without padding: 16 input columns of a window row pair at a time, the pooled
// gradient through the ReLU (relu_backward), spread to the lane its argmax names
// (max_pool2d_backward_plane: 0 + g, the + 0 turning -0 into +0) and through the batch norm
// (backward_row_avx512), all in registers: the same operations per value, so the same bits,
// without the plane of d_norm written and read back. x's rows are asked for six row pairs
// ahead, running on into next_x (the plane the caller does next; null for none): without
// that, half of this pass's time went to waiting for x from memory (one thread, `bn`). With
// next_x, the pooled planes that follow d_out, out and argmax (the next channel's) are asked
// for one plane ahead. False, with d_in unfinished, when some argmax lies outside its window
// (never so from the forward).
__attribute__((target("avx512f"))) bool normed_backward_plane_2x2(
    float* d_in, const float* d_out, const float* out, const int32_t* argmax, const float* x,
    const float* next_x, float mean, const ChannelGrad<float>& g, const Pool2dDims& d) {
  const __m512i pairs = _mm512_setr_epi32(0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7);
  const __m512i lanes = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
  const __m512 zero = _mm512_setzero_ps();
  const NormedRow rows{
      d_in, x, _mm512_set1_ps(g.k), _mm512_set1_ps(g.a), _mm512_set1_ps(g.b), _mm512_set1_ps(mean)};
  const int64_t pooled = d.oh * d.ow;
  int64_t matched = 0;
  for (int64_t oy = 0; oy < d.oh; ++oy) {
    const int64_t o = oy * d.ow;
    simd::prefetch_ahead(x, next_x, (2 * oy + 12) * d.w, 2 * d.w, d.h * d.w);
    if (next_x) {
      simd::prefetch_lines(out + o + pooled, d.ow);
      simd::prefetch_lines(d_out + o + pooled, d.ow);
      simd::prefetch_lines(argmax + o + pooled, d.ow);
    }
    for (int64_t c = 0; c < d.w; c += 16) {  // input columns [c, c + 16) of rows 2oy, 2oy + 1
      const int64_t ox = c / 2;
      const __mmask16 outs = simd::lanes_mask(std::clamp<int64_t>(d.ow - ox, 0, 8));
      const __mmask16 cols = simd::lanes_mask(d.w - c);
      const __m512 alive = _mm512_maskz_loadu_ps(outs, out + o + ox);
      const __m512 passed = _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(alive, zero, _CMP_GT_OQ),
                                                _mm512_maskz_loadu_ps(outs, d_out + o + ox));
      const __m512 gv = _mm512_maskz_permutexvar_ps(0xFFFF, pairs, passed);
      const __m512i av = _mm512_maskz_permutexvar_epi32(
          0xFFFF, pairs, _mm512_mask_loadu_epi32(_mm512_set1_epi32(-1), outs, argmax + o + ox));
      for (int64_t dy = 0; dy < 2; ++dy) {
        const int64_t row = (2 * oy + dy) * d.w + c;
        const __mmask16 won = _mm512_cmpeq_epi32_mask(
            av, _mm512_add_epi32(_mm512_set1_epi32(static_cast<int32_t>(row)), lanes));
        rows.store(row, cols, _mm512_add_ps(_mm512_maskz_mov_ps(won, gv), zero));
        matched += __builtin_popcount(won);
      }
    }
  }
  for (int64_t at = 2 * d.oh * d.w; at < d.h * d.w; at += 16)  // an odd last row: no window
    rows.store(at, simd::lanes_mask(d.h * d.w - at), zero);
  return matched == pooled;
}

#endif

// Whether normed_backward_plane_2x2 serves pools of d's shape with these types.
template <typename T>
bool fused_plane_pays(const Pool2dDims& d) {
#if defined(__x86_64__) || defined(_M_X64)
  return std::is_same_v<T, float> && d.k == 2 && d.stride == 2 && d.padding == 0 &&
         vector_path() == VectorPath::kAvx512;
#else
  (void)d;
  return false;
#endif
}

// The backward channel by channel: d_gamma, d_beta added into, then d_in written or (d_in
// null) each channel's k, a, b (ChannelGrad) kept in grads (C, 3).
template <typename T>
void backward_channels(T* d_in, T* d_gamma, T* d_beta, T* grads, const T* d_out, const T* out,
                       const int32_t* argmax, const T* in, const T* mean, const T* invstd,
                       const T* gamma, const Pool2dDims& d) {
  const int64_t spatial = d.h * d.w, stride = d.c * spatial;
  parallel_for(d.c, parallel_grain(d.n * spatial), [&](int64_t c0, int64_t c1) {
    thread_local std::vector<T> d_norm, d_pool;  // (N, H, W) of one channel; (OH, OW)
    d_norm.resize(static_cast<size_t>(d.n * spatial));
    d_pool.resize(static_cast<size_t>(d.oh * d.ow));
    for (int64_t ch = c0; ch < c1; ++ch) {
      const int64_t offset = ch * spatial;
      T* const d_gamma_ch = d_gamma ? d_gamma + ch : nullptr;
      T* const d_beta_ch = d_beta ? d_beta + ch : nullptr;
      if (d_in) {
        normed_grad(d_norm.data(), d_pool.data(), d_out, out, argmax, ch, 0, d.n, d);
        const ChannelGrad<T> g =
            backward_coefficients(d_gamma_ch, d_beta_ch, d_norm.data(), spatial, in + offset,
                                  stride, mean[ch], invstd[ch], gamma[ch], d.n, spatial);
        backward_rows(d_in + offset, stride, d_norm.data(), spatial, in + offset, stride, mean[ch],
                      g, d.n, spatial);
        continue;
      }
      // Only the sums: kRows samples at a time, their planes of d_norm made and summed while
      // in L1 (add_backward_sums takes the rows in order, so the bits of one call).
      double sum_dy = 0, sum_dy_xc = 0;
      for (int64_t i0 = 0; i0 < d.n; i0 += kRows) {
        const int64_t i1 = std::min<int64_t>(d.n, i0 + kRows);
        normed_grad(d_norm.data(), d_pool.data(), d_out, out, argmax, ch, i0, i1, d);
        add_backward_sums(sum_dy, sum_dy_xc, d_norm.data(), spatial, in + i0 * stride + offset,
                          stride, static_cast<double>(mean[ch]), i1 - i0, spatial, d.n - i1);
      }
      const ChannelGrad<T> g = coefficients_from_sums(d_gamma_ch, d_beta_ch, sum_dy, sum_dy_xc,
                                                      invstd[ch], gamma[ch], d.n * spatial);
      grads[3 * ch] = g.k;
      grads[3 * ch + 1] = g.a;
      grads[3 * ch + 2] = g.b;
    }
  });
}

}  // namespace

template <typename T>
void batch_norm_relu_pool_backward_train(T* d_in, T* d_gamma, T* d_beta, const T* d_out,
                                         const T* out, const int32_t* argmax, const T* in,
                                         const T* mean, const T* invstd, const T* gamma,
                                         const Pool2dDims& d) {
  backward_channels<T>(d_in, d_gamma, d_beta, nullptr, d_out, out, argmax, in, mean, invstd, gamma,
                       d);
}

template <typename T>
void batch_norm_relu_pool_backward_params(T* grads, T* d_gamma, T* d_beta, const T* d_out,
                                          const T* out, const int32_t* argmax, const T* in,
                                          const T* mean, const T* invstd, const T* gamma,
                                          const Pool2dDims& d) {
  backward_channels(static_cast<T*>(nullptr), d_gamma, d_beta, grads, d_out, out, argmax, in, mean,
                    invstd, gamma, d);
}

template <typename T>
void batch_norm_relu_pool_backward_sample(T* d_in, int64_t i, const T* grads, const T* d_out,
                                          const T* out, const int32_t* argmax, const T* in,
                                          const T* mean, const Pool2dDims& d) {
  const int64_t spatial = d.h * d.w, sample = i * d.c * spatial;
  thread_local std::vector<T> d_norm, d_pool;  // (H, W), (OH, OW)
  d_norm.resize(static_cast<size_t>(spatial));
  d_pool.resize(static_cast<size_t>(d.oh * d.ow));
  const bool fused = fused_plane_pays<T>(d);
  for (int64_t ch = 0; ch < d.c; ++ch) {
    const ChannelGrad<T> g{grads[3 * ch], grads[3 * ch + 1], grads[3 * ch + 2]};
    const T* x = in + sample + ch * spatial;
#if defined(__x86_64__) || defined(_M_X64)
    if constexpr (std::is_same_v<T, float>) {
      const int64_t at = (i * d.c + ch) * d.oh * d.ow;
      const T* next_x = ch + 1 < d.c ? x + spatial : nullptr;
      if (fused && normed_backward_plane_2x2(d_in + ch * spatial, d_out + at, out + at, argmax + at,
                                             x, next_x, mean[ch], g, d))
        continue;
    }
#endif
    normed_grad(d_norm.data(), d_pool.data(), d_out, out, argmax, ch, i, i + 1, d);
    backward_rows(d_in + ch * spatial, spatial, d_norm.data(), spatial, x, spatial, mean[ch], g, 1,
                  spatial);
  }
}

template void batch_norm_relu_pool_forward_train<float>(float*, int32_t*, float*, float*, float*,
                                                        float*, const float*, const float*,
                                                        const float*, const Pool2dDims&, double);
template void batch_norm_relu_pool_backward_train<float>(float*, float*, float*, const float*,
                                                         const float*, const int32_t*, const float*,
                                                         const float*, const float*, const float*,
                                                         const Pool2dDims&);
template void batch_norm_relu_pool_backward_params<float>(float*, float*, float*, const float*,
                                                          const float*, const int32_t*,
                                                          const float*, const float*, const float*,
                                                          const float*, const Pool2dDims&);
template void batch_norm_relu_pool_backward_sample<float>(float*, int64_t, const float*,
                                                          const float*, const float*,
                                                          const int32_t*, const float*,
                                                          const float*, const Pool2dDims&);

bool BatchNorm::train_relu_pool(Tensor& out, MaxPool2d& pool, const Tensor& in) {
  if (statistics_frozen_ || in.ndim() != 4) return false;
  const Shape& shape = in.shape();
  output_shape(shape);  // throws on a wrong channel count
  const Pool2dDims d = pool.dims(shape);
  check_shape(out, {d.n, d.c, d.oh, d.ow}, (kind() + ": pooled output").c_str());
  begin_training(shape);
  scale_.resize({d.c});
  batch_norm_relu_pool_forward_train(out.data(), pool.plan_argmax(shape), mean_.data(), var_.data(),
                                     invstd_.data(), scale_.data(), in.data(), weight_.value.data(),
                                     bias_.value.data(), d, options_.eps);
  end_training(shape);
  return true;
}

Pool2dDims BatchNorm::relu_pool_dims(const char* caller, const Tensor& d_out, const MaxPool2d& pool,
                                     const Tensor& in, const Tensor& out) const {
  SN_CHECK(has_forward_ && last_mode_ == Mode::kTrain && scale_.numel() == in.dim(1),
           "{}: {} called before train_relu_pool", kind(), caller);
  const Pool2dDims d = pool.dims(in.shape());
  check_shape(d_out, {d.n, d.c, d.oh, d.ow}, (kind() + ": gradient of the pooled output").c_str());
  check_shape(out, d_out.shape(), (kind() + ": pooled output").c_str());
  return d;
}

void BatchNorm::backward_relu_pool(Tensor& d_in, const Tensor& d_out, const MaxPool2d& pool,
                                   const Tensor& in, const Tensor& out) {
  const Pool2dDims d = relu_pool_dims("backward_relu_pool", d_out, pool, in, out);
  const int32_t* argmax = pool.saved_argmax(in.shape());
  check_shape(d_in, in.shape(), (kind() + ": gradient of the input").c_str());
  batch_norm_relu_pool_backward_train(d_in.data(), weight_.grad.data(), bias_.grad.data(),
                                      d_out.data(), out.data(), argmax, in.data(), mean_.data(),
                                      invstd_.data(), weight_.value.data(), d);
}

BatchNorm::SampleGrad BatchNorm::backward_relu_pool_params(const Tensor& d_out,
                                                           const MaxPool2d& pool, const Tensor& in,
                                                           const Tensor& out) {
  const Pool2dDims d = relu_pool_dims("backward_relu_pool_params", d_out, pool, in, out);
  const int32_t* argmax = pool.saved_argmax(in.shape());
  grads_.resize({d.c, 3});
  batch_norm_relu_pool_backward_params(grads_.data(), weight_.grad.data(), bias_.grad.data(),
                                       d_out.data(), out.data(), argmax, in.data(), mean_.data(),
                                       invstd_.data(), weight_.value.data(), d);
  return [d, argmax, grads = grads_.data(), dy = d_out.data(), y = out.data(), x = in.data(),
          mean = mean_.data()](float* d_in, int64_t i) {
    batch_norm_relu_pool_backward_sample(d_in, i, grads, dy, y, argmax, x, mean, d);
  };
}

void BatchNorm::unpooled_output(Tensor& out, const Tensor& in) const {
  SN_CHECK(in.ndim() == 4 && scale_.numel() == in.dim(1),
           "{}: unpooled_output called before train_relu_pool", kind());
  check_shape(out, in.shape(), (kind() + ": output").c_str());
  const int64_t n = in.dim(0), c = in.dim(1), spatial = in.dim(2) * in.dim(3);
  parallel_for(c, parallel_grain(n * spatial), [&](int64_t c0, int64_t c1) {
    for (int64_t ch = c0; ch < c1; ++ch)
      affine_rows(out.data() + ch * spatial, in.data() + ch * spatial, mean_[ch], scale_[ch],
                  bias_.value[ch], n, c * spatial, spatial);
  });
}

}  // namespace scratchnet
