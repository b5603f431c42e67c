// Conv2d's fast float kernels: the choice of algorithm by shape (conv2d_forward and
// conv2d_backward at the end; see conv2d.h) and the general path, im2col + gemm.
//
// With CKK = C*K*K and P = OH*OW, one sample's patches unfold into col (CKK, P):
//   col[(c*K + i)*K + j, y*OW + x] = in[c, y*stride + i - padding, x*stride + j - padding]
// (zero outside the input), and then
//   forward        out[n] (OC, P)    = weight (OC, CKK) * col[n] + bias
//   input grad     col_g (CKK, P)    = weight^T * d_out[n] (OC, P), folded back into d_in[n]
//                                      by adding each element where im2col read it (col2im)
//   weight grad    d_weight (OC, CKK) += d_out[group] (OC, G*P) * col[group]^T (G*P, CKK)
//                                      over groups of G samples in batch order
//   bias grad      d_bias[oc] += sum over n, y, x of d_out
//
// Forward and input gradient split the batch over threads, each sample on one thread with its
// own col buffer; a batch smaller than the thread count runs sample after sample with the
// product split instead (gemm and gemm_parallel give the same bits). The weight gradient
// unfolds a group into a shared buffer (samples over threads), then one gemm_parallel sums it,
// so every element is summed in the same order whatever the thread count. The group size G
// depends on the shape only.
#include <algorithm>
#include <cstring>

#include "conv2d_kernels.h"
#include "scratch.h"
#include "scratchnet/check.h"
#include "scratchnet/kernels/gemm.h"
#include "scratchnet/layers/conv2d.h"
#include "scratchnet/layers/relu.h"
#include "scratchnet/parallel.h"

namespace scratchnet {

namespace {

// Per-thread scratch buffers, 64-byte aligned and reused across calls so a training loop does
// not allocate. A buffer the calling thread fills for a parallel_for (kGroupCol, kGroupGrad)
// has a slot of its own, as the calling thread also runs a chunk.
enum Slot { kCol, kGroupCol, kGroupGrad, kNumSlots };

float* scratch(Slot slot, int64_t n) {
  thread_local ScratchBuffer buffers[kNumSlots];
  return buffers[slot].get(n);
}

// Output columns x whose tap offset `j` lands inside the input row: x in [x0, x1) with
// 0 <= x*stride + j - padding < W.
void valid_columns(int64_t& x0, int64_t& x1, int64_t j, const Conv2dDims& d) {
  const int64_t s = d.stride, lo = d.padding - j, hi = d.w - 1 + d.padding - j;
  x0 = lo > 0 ? (lo + s - 1) / s : 0;
  x1 = hi < 0 ? 0 : std::min(d.ow, hi / s + 1);
  x0 = std::min(x0, d.ow);
  x1 = std::max(x1, x0);
}

// col (CKK, P) with row stride ld from one sample x (C, H, W), as in the comment at the top.
void im2col(float* col, int64_t ld, const float* x, const Conv2dDims& d) {
  const int64_t k = d.k, s = d.stride, p = d.padding;
  for (int64_t j = 0; j < k; ++j) {
    int64_t x0, x1;
    valid_columns(x0, x1, j, d);
    for (int64_t c = 0; c < d.c; ++c)
      for (int64_t i = 0; i < k; ++i) {
        float* row = col + ((c * k + i) * k + j) * ld;  // (OH, OW)
        for (int64_t y = 0; y < d.oh; ++y) {
          float* r = row + y * d.ow;
          const int64_t iy = y * s + i - p;
          if (iy < 0 || iy >= d.h) {
            std::fill(r, r + d.ow, 0.0f);
            continue;
          }
          const float* src = x + (c * d.h + iy) * d.w + j - p;  // src[x*s] = in[c, iy, x*s+j-p]
          std::fill(r, r + x0, 0.0f);
          if (s == 1)
            std::copy(src + x0, src + x1, r + x0);
          else
            for (int64_t xo = x0; xo < x1; ++xo) r[xo] = src[xo * s];
          std::fill(r + x1, r + d.ow, 0.0f);
        }
      }
  }
}

// dx (C, H, W) = the sum of col (CKK, P) folded back: each element of col added where im2col
// read it, in the order of col's rows.
void col2im(float* dx, const float* col, const Conv2dDims& d) {
  const int64_t k = d.k, s = d.stride, p = d.padding;
  std::fill(dx, dx + d.c * d.h * d.w, 0.0f);
  for (int64_t c = 0; c < d.c; ++c)
    for (int64_t i = 0; i < k; ++i)
      for (int64_t j = 0; j < k; ++j) {
        int64_t x0, x1;
        valid_columns(x0, x1, j, d);
        const float* row = col + ((c * k + i) * k + j) * d.oh * d.ow;  // (OH, OW)
        for (int64_t y = 0; y < d.oh; ++y) {
          const int64_t iy = y * s + i - p;
          if (iy < 0 || iy >= d.h) continue;
          const float* r = row + y * d.ow;
          float* dst = dx + (c * d.h + iy) * d.w + j - p;  // dst[x*s] = dx[c, iy, x*s+j-p]
          if (s == 1)
            for (int64_t xo = x0; xo < x1; ++xo) dst[xo] += r[xo];
          else
            for (int64_t xo = x0; xo < x1; ++xo) dst[xo * s] += r[xo];
        }
      }
}

// Stride 1 on AVX-512 unfolds in vectors; anything else element by element.
bool vector_unfold(const Conv2dDims& d) { return d.stride == 1 && conv2d_has_avx512(); }

void unfold(float* col, int64_t ld, const float* x, const Conv2dDims& d) {
  vector_unfold(d) ? conv2d_im2col_s1_avx512(col, ld, x, d) : im2col(col, ld, x, d);
}

void fold(float* dx, const float* col, const Conv2dDims& d) {
  if (!vector_unfold(d)) return col2im(dx, col, d);
  std::fill(dx, dx + d.c * d.h * d.w, 0.0f);
  conv2d_col2im_s1_avx512(dx, col, d);
}

// A 1x1 kernel with stride 1 and no padding: col is the sample itself.
bool unfold_is_identity(const Conv2dDims& d) { return d.k == 1 && d.stride == 1 && d.padding == 0; }

// Runs fn(n, parallel_product) for every sample: samples split over threads when there are at
// least as many as threads, else one after another with parallel_product = true.
template <typename F>
void for_each_sample(const Conv2dDims& d, F fn) {
  if (d.n >= num_threads()) {
    parallel_for(d.n, [&](int64_t begin, int64_t end) {
      for (int64_t n = begin; n < end; ++n) fn(n, false);
    });
  } else {
    for (int64_t n = 0; n < d.n; ++n) fn(n, true);
  }
}

void run_gemm(const GemmArgs& g, bool parallel) { parallel ? gemm_parallel(g) : gemm(g); }

void forward_gemm(float* out, const float* in, const float* weight, const float* bias,
                  const Conv2dDims& d) {
  const int64_t ckk = d.c * d.k * d.k, plane = d.oh * d.ow;
  for_each_sample(d, [&](int64_t n, bool parallel) {
    const float* x = in + n * d.c * d.h * d.w;  // (C, H, W)
    const float* col = x;                       // (CKK, P)
    if (!unfold_is_identity(d)) {
      float* buf = scratch(kCol, ckk * plane);
      unfold(buf, plane, x, d);
      col = buf;
    }
    float* o = out + n * d.oc * plane;  // (OC, P)
    if (bias)
      for (int64_t oc = 0; oc < d.oc; ++oc)
        std::fill(o + oc * plane, o + (oc + 1) * plane, bias[oc]);
    run_gemm({.m = d.oc,
              .n = plane,
              .k = ckk,
              .a = weight,
              .lda = ckk,
              .b = col,
              .ldb = plane,
              .beta = bias ? 1.0f : 0.0f,
              .c = o,
              .ldc = plane},
             parallel);
  });
}

void input_gradient_gemm(float* d_in, const float* d_out, const float* weight,
                         const Conv2dDims& d) {
  const int64_t ckk = d.c * d.k * d.k, plane = d.oh * d.ow;
  for_each_sample(d, [&](int64_t n, bool parallel) {
    float* dx = d_in + n * d.c * d.h * d.w;  // (C, H, W)
    const bool direct = unfold_is_identity(d);
    float* col = direct ? dx : scratch(kCol, ckk * plane);  // (CKK, P)
    run_gemm({.trans_a = true,
              .m = ckk,
              .n = plane,
              .k = d.oc,
              .a = weight,
              .lda = ckk,
              .b = d_out + n * d.oc * plane,
              .ldb = plane,
              .c = col,
              .ldc = plane},
             parallel);
    if (!direct) fold(dx, col, d);
  });
}

// Samples per group of the weight gradient: enough columns (G*P) for gemm to stream through
// long rows, few enough that the group's unfolded matrix stays near the caches.
int64_t group_size(const Conv2dDims& d) {
  constexpr int64_t kGroupColumns = 2048;
  const int64_t plane = d.oh * d.ow;
  return std::clamp<int64_t>((kGroupColumns + plane - 1) / plane, 1, std::max<int64_t>(d.n, 1));
}

void weight_gradient_gemm(float* d_weight, const float* d_out, const float* in,
                          const Conv2dDims& d) {
  const int64_t ckk = d.c * d.k * d.k, plane = d.oh * d.ow, g = group_size(d);
  float* col = scratch(kGroupCol, ckk * g * plane);     // (CKK, G*P)
  float* grad = scratch(kGroupGrad, d.oc * g * plane);  // (OC, G*P)
  for (int64_t n0 = 0; n0 < d.n; n0 += g) {
    const int64_t count = std::min(g, d.n - n0), cols = count * plane;
    parallel_for(count, [&](int64_t begin, int64_t end) {
      for (int64_t t = begin; t < end; ++t) {
        const float* x = in + (n0 + t) * d.c * d.h * d.w;   // (C, H, W)
        const float* dy = d_out + (n0 + t) * d.oc * plane;  // (OC, P)
        if (unfold_is_identity(d)) {
          for (int64_t c = 0; c < d.c; ++c)
            std::copy(x + c * plane, x + (c + 1) * plane, col + c * cols + t * plane);
        } else {
          unfold(col + t * plane, cols, x, d);
        }
        for (int64_t oc = 0; oc < d.oc; ++oc)
          std::copy(dy + oc * plane, dy + (oc + 1) * plane, grad + oc * cols + t * plane);
      }
    });
    // d_weight (OC, CKK) += grad (OC, G*P) * col^T (G*P, CKK)
    gemm_parallel({.trans_b = true,
                   .m = d.oc,
                   .n = ckk,
                   .k = cols,
                   .a = grad,
                   .lda = cols,
                   .b = col,
                   .ldb = cols,
                   .beta = 1.0f,
                   .c = d_weight,
                   .ldc = ckk});
  }
}

// d_bias[oc] += sum over n, y, x of d_out: per plane 16 interleaved partial sums combined in a
// fixed tree (AVX-512) or in order, the planes added in batch order; channels over threads.
void bias_gradient(float* d_bias, const float* d_out, const Conv2dDims& d) {
  const int64_t plane = d.oh * d.ow;
  parallel_for(d.oc, [&](int64_t begin, int64_t end) {
    for (int64_t oc = begin; oc < end; ++oc) {
      float total = 0;
      for (int64_t n = 0; n < d.n; ++n) {
        const float* g = d_out + (n * d.oc + oc) * plane;
        if (conv2d_has_avx512()) {
          total += conv2d_sum_avx512(g, plane, 1, plane);
          continue;
        }
        constexpr int kLanes = 16;
        float part[kLanes] = {};
        int64_t q = 0;
        for (; q + kLanes <= plane; q += kLanes)
          for (int l = 0; l < kLanes; ++l) part[l] += g[q + l];
        for (int l = 0; q < plane; ++q, ++l) part[l] += g[q];
        float s = 0;
        for (float v : part) s += v;
        total += s;
      }
      d_bias[oc] += total;
    }
  });
}

// The stride-1 input gradient as a product needs enough rows (C) to fill the vector tiles,
// else im2col + gemm does better.
bool s1_input_grad_pays(const Conv2dDims& d) {
  return conv2d_s1_ok(d) && d.padding <= d.k - 1 && d.c >= 8;
}

}  // namespace

void conv2d_forward(float* out, const float* in, const float* weight, const float* bias,
                    const Conv2dDims& d) {
  conv2d_check_dims(d, "conv2d_forward");
  if (d.n == 0) return;
  if (conv2d_direct_ok(d)) {
    conv2d_direct_forward(out, in, weight, bias, d);
  } else if (conv2d_winograd_ok(d)) {
    conv2d_winograd_forward(out, in, weight, bias, d);
  } else if (conv2d_winograd_small_ok(d)) {
    conv2d_winograd_small_forward(out, in, weight, bias, d);
  } else if (conv2d_s1_ok(d)) {
    conv2d_s1_forward(out, in, weight, bias, d);
  } else {
    forward_gemm(out, in, weight, bias, d);
  }
}

bool conv2d_epilogue_ok(const Conv2dDims& d) {
  return conv2d_direct_ok(d) || conv2d_winograd_ok(d) || conv2d_winograd_small_ok(d);
}

void conv2d_forward_epilogue(float* out, const float* in, const float* weight, const float* bias,
                             const Conv2dDims& d, const Conv2dEpilogue& e) {
  if (conv2d_direct_ok(d))
    conv2d_direct_forward(out, in, weight, bias, d, &e);
  else if (conv2d_winograd_ok(d))
    conv2d_winograd_forward(out, in, weight, bias, d, &e);
  else
    conv2d_winograd_small_forward(out, in, weight, bias, d, &e);
}

namespace {

// conv2d_backward past its sparse path.
void dense_backward(float* d_in, float* d_weight, float* d_bias, const float* d_out,
                    const float* in, const float* weight, const Conv2dDims& d) {
  if (!conv2d_direct_ok(d) && conv2d_winograd_backward_ok(d)) {
    conv2d_winograd_backward(d_in, d_weight, d_bias, d_out, in, weight, d);
    return;
  }
  if (d_in) {
    if (conv2d_winograd_input_grad_ok(d))
      conv2d_winograd_input_grad(d_in, d_out, weight, d);
    else if (s1_input_grad_pays(d))
      conv2d_s1_input_grad(d_in, d_out, weight, d);
    else
      input_gradient_gemm(d_in, d_out, weight, d);
  }
  if (conv2d_direct_ok(d)) {
    if (d_weight || d_bias)
      parallel_for(d.oc, [&](int64_t begin, int64_t end) {
        conv2d_direct_param_grads(d_weight, d_bias, d_out, in, d, begin, end);
      });
    return;
  }
  if (d_weight) {
    if (conv2d_winograd_ok(d))
      conv2d_winograd_weight_grad(d_weight, d_out, in, d);
    else if (conv2d_s1_ok(d))
      conv2d_s1_weight_grad(d_weight, d_out, in, d);
    else
      weight_gradient_gemm(d_weight, d_out, in, d);
  }
  if (d_bias) bias_gradient(d_bias, d_out, d);
}

}  // namespace

void conv2d_backward(float* d_in, float* d_weight, float* d_bias, const float* d_out,
                     const float* in, const float* weight, const Conv2dDims& d) {
  conv2d_check_dims(d, "conv2d_backward");
  if (d.n == 0) return;
  if ((d_in || d_weight || d_bias) &&
      conv2d_sparse_backward(d_in, d_weight, d_bias, d_out, in, weight, d))
    return;
  dense_backward(d_in, d_weight, d_bias, d_out, in, weight, d);
}

void conv2d_backward_fused(float* d_in, float* d_weight, float* d_bias, const float* d_out,
                           const float* in, const float* weight, const Conv2dDims& d,
                           const Conv2dBackwardFusion& fusion) {
  conv2d_check_dims(d, "conv2d_backward");
  if (d.n == 0) return;
  if (fusion.fill_channel && !fusion.fill) {
    if (!d_in && conv2d_direct_ok(d)) {
      parallel_for(d.oc, [&](int64_t begin, int64_t end) {
        conv2d_direct_param_grads(d_weight, d_bias, nullptr, in, d, begin, end,
                                  &fusion.fill_channel);
      });
      return;
    }
    SN_CHECK(fusion.room != nullptr, "conv2d_backward_fused: fill_channel needs room for d_out");
    const int64_t plane = d.oh * d.ow;
    parallel_for(d.oc, [&](int64_t begin, int64_t end) {
      for (int64_t o = begin; o < end; ++o)
        fusion.fill_channel(fusion.room + o * plane, d.oc * plane, o);
    });
    d_out = fusion.room;
  }
  // conv2d_backward's choice, the sparse sums first, where d_out is whole to count its zeros.
  const bool sparse = !fusion.fill && (d_in || d_weight || d_bias) &&
                      conv2d_sparse_backward(d_in, d_weight, d_bias, d_out, in, weight, d);
  if (!sparse && !conv2d_direct_ok(d) && conv2d_winograd_backward_ok(d)) {
    conv2d_winograd_backward(d_in, d_weight, d_bias, d_out, in, weight, d, &fusion);
    return;
  }
  if (!sparse && fusion.fill) {
    SN_CHECK(fusion.room != nullptr, "conv2d_backward_fused: fill needs room for d_out");
    const int64_t out_size = d.oc * d.oh * d.ow;
    parallel_for(d.n, [&](int64_t begin, int64_t end) {
      for (int64_t i = begin; i < end; ++i) fusion.fill(fusion.room + i * out_size, i);
    });
    conv2d_backward(d_in, d_weight, d_bias, fusion.room, in, weight, d);  // its sparse path too
  } else if (!sparse) {
    dense_backward(d_in, d_weight, d_bias, d_out, in, weight, d);
  }
  if (fusion.relu_in && d_in)
    parallel_for(d.n * d.c * d.h * d.w, parallel_grain(1), [&](int64_t begin, int64_t end) {
      relu_backward(d_in + begin, d_in + begin, in + begin, end - begin);
    });
}

}  // namespace scratchnet
