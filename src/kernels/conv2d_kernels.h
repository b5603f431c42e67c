// conv2d_kernels.h — the parts of Conv2d's kernels shared between its source files (private to
// src/): the dims check, and the AVX-512 unfolding and direct kernels (conv2d_avx512.cpp).
#pragma once

#include <cstdint>

#include "scratchnet/layers/conv2d.h"

namespace scratchnet {

// v rounded up to a multiple of `to`.
inline int64_t round_up(int64_t v, int64_t to) { return (v + to - 1) / to * to; }

// Throws "<fn>: inconsistent dims: ..." unless d is what conv2d_dims gives for some input.
void conv2d_check_dims(const Conv2dDims& d, const char* fn);

// conv2d_forward with an eval epilogue (Conv2d::forward_eval_fused): out is pooled with e.pool.
// Only where conv2d_epilogue_ok, the shapes whose conv2d_forward kernel runs epilogues (the
// direct kernels, Winograd for many tiles or one image at a time, below), by that kernel.
bool conv2d_epilogue_ok(const Conv2dDims& d);
void conv2d_forward_epilogue(float* out, const float* in, const float* weight, const float* bias,
                             const Conv2dDims& d, const Conv2dEpilogue& e);

// True when the CPU runs AVX-512 (the functions named *_avx512 and the direct kernels).
bool conv2d_has_avx512();

// dst (rows, cols) with row stride ldd = src (rows, cols) with row stride lds.
void conv2d_copy_rows_avx512(float* dst, int64_t ldd, const float* src, int64_t lds, int64_t rows,
                             int64_t cols);
// The sum of x (rows, len) with row stride `stride`: 16 lanes (t mod 16) accumulated over rows
// and t in order, then the lanes in a fixed tree.
float conv2d_sum_avx512(const float* x, int64_t stride, int64_t rows, int64_t len);

// im2col of one sample x (C, H, W) for stride 1: col (C*K*K, OH*OW) with row stride ld.
// Needs conv2d_has_avx512().
void conv2d_im2col_s1_avx512(float* col, int64_t ld, const float* x, const Conv2dDims& d);
// The reverse for stride 1: dx (C, H, W) += col (C*K*K, OH*OW) folded back, in the order of
// col's rows. Needs conv2d_has_avx512().
void conv2d_col2im_s1_avx512(float* dx, const float* col, const Conv2dDims& d);

// Stride-1 products that read the unfolded matrix in place ("implicit GEMM"): with padded
// planes laid end to end in src, row k of the unfolded matrix starts at src + off[k] and is
// contiguous, column t being output pixel (y, x) at t = y * WP + x of a "wide" output whose
// columns x >= OW are scratch. Reads go up to src[max(off) + t1 + 15]. Need
// conv2d_has_avx512().
//
// c (M, ldc) columns [t0, t1) = bias + a * B with B(k, t) = src[off[k] + t]; t0 and t1 are
// multiples of 16; a (M, KT) row-major; bias (M) or null. Each element is bias + the sum over
// k = 0, 1, ... KT - 1 in order.
void conv2d_s1_product_avx512(float* c, int64_t ldc, const float* a, int64_t m, int64_t kt,
                              const float* src, const int64_t* off, int64_t t0, int64_t t1,
                              const float* bias);
// c (m, n) with row stride ldc += for rows r < m and columns j < n (a multiple of 16) the sum
// over samples s < count and t < len of x[s*ss + off[r] + t] * gt[s*gs + t*ldg + j], added
// onto c in that order: the transposed weight gradient, with gt the output gradient
// transposed to (len, n).
void conv2d_s1_wgrad_avx512(float* c, int64_t ldc, int64_t m, int64_t n, const float* x,
                            const int64_t* off, int64_t ss, const float* gt, int64_t ldg,
                            int64_t gs, int64_t len, int64_t count);

// The stride-1 convolutions built on those products (conv2d_s1.cpp), with the contracts of
// conv2d_forward / conv2d_backward for stride 1 on AVX-512 (conv2d_s1_ok). The input gradient
// needs padding <= K - 1 too.
bool conv2d_s1_ok(const Conv2dDims& d);
void conv2d_s1_forward(float* out, const float* in, const float* weight, const float* bias,
                       const Conv2dDims& d);
void conv2d_s1_input_grad(float* d_in, const float* d_out, const float* weight,
                          const Conv2dDims& d);
// d_weight (OC, C, K, K) += the weight gradient (the bias gradient is separate).
void conv2d_s1_weight_grad(float* d_weight, const float* d_out, const float* in,
                           const Conv2dDims& d);

// Winograd F(2x2, 3x3) or F(4x4, 3x3) (conv2d_winograd.cpp) for 3x3 kernels with stride 1, at least
// 8 input and output channels, rows of at least 6 output tiles (OW >= 11), enough tiles in all (N *
// ceil(OH/2) * ceil(OW/2) >= 256) and AVX-512; the input gradient counts the tiles of its output
// (H, W) and needs padding <= 2; the weight gradient has the forward's condition. Contracts as
// conv2d_forward / the input and weight parts of conv2d_backward (d_weight is added into); the
// choice depends on the shape only, never on the thread count.
bool conv2d_winograd_ok(const Conv2dDims& d);
bool conv2d_winograd_input_grad_ok(const Conv2dDims& d);
// With e, its epilogue is applied to every output (and out is pooled with e->pool).
void conv2d_winograd_forward(float* out, const float* in, const float* weight, const float* bias,
                             const Conv2dDims& d, const Conv2dEpilogue* e = nullptr);
void conv2d_winograd_input_grad(float* d_in, const float* d_out, const float* weight,
                                const Conv2dDims& d);
void conv2d_winograd_weight_grad(float* d_weight, const float* d_out, const float* in,
                                 const Conv2dDims& d);
// The whole backward pass where the weight gradient runs F(4x4, 3x3) on tiles (both
// conditions above, outputs of 16 columns or more, not the samples-in-lanes form), from the
// weight gradient's transform of d_out (conv2d_winograd.cpp): the input gradient through the
// input transform backwards, the bias gradient from the transformed tiles' sums. Contract of
// conv2d_backward (any output may be null; weight is read only for d_in); d_weight's values
// are conv2d_winograd_weight_grad's, and each output's the same whichever others are asked.
bool conv2d_winograd_backward_ok(const Conv2dDims& d);
// With `fusion` (or null), conv2d_backward_fused's: each sample's d_out from fusion->fill
// as its chunk needs it (d_out unread), and d_in masked per sample for fusion->relu_in.
void conv2d_winograd_backward(float* d_in, float* d_weight, float* d_bias, const float* d_out,
                              const float* in, const float* weight, const Conv2dDims& d,
                              const Conv2dBackwardFusion* fusion = nullptr);

// Winograd F(4x4, 3x3) for the batches too small for conv2d_winograd_ok (one image at a time)
// (conv2d_winograd_small.cpp): 3x3 kernels with stride 1, at least 8 input channels, output
// channels a multiple of 16, outputs of at least 4x4, at most 2^18 transformed filter values
// (36 C OC) and AVX-512. Contract of conv2d_winograd_forward.
bool conv2d_winograd_small_ok(const Conv2dDims& d);
void conv2d_winograd_small_forward(float* out, const float* in, const float* weight,
                                   const float* bias, const Conv2dDims& d,
                                   const Conv2dEpilogue* e = nullptr);

// The backward pass as direct sums over the nonzero values of d_out only
// (conv2d_sparse.cpp), for a 3x3 kernel (any stride and padding), at least 8 input channels
// and AVX-512, when at most a quarter of d_out is nonzero (a convolution followed by max
// pooling); false, having written nothing, otherwise. Contract of conv2d_backward; the
// results depend on the data and shape only, never on the thread count.
bool conv2d_sparse_backward(float* d_in, float* d_weight, float* d_bias, const float* d_out,
                            const float* in, const float* weight, const Conv2dDims& d);

// True when the direct kernels below handle d on this CPU: one input channel, a 3x3 kernel,
// stride 1 (any padding) and AVX-512. There the im2col matrix has only 9 rows, too few
// for gemm to run near its peak.
bool conv2d_direct_ok(const Conv2dDims& d);

// conv2d_forward, or with e, conv2d_winograd_forward's contract (the epilogue applied, and
// the output pooled with e->pool): out (N, OC, OH, OW) from in (N, 1, H, W). Samples over
// threads, or for fewer samples than threads, each sample's output channels.
void conv2d_direct_forward(float* out, const float* in, const float* weight, const float* bias,
                           const Conv2dDims& d, const Conv2dEpilogue* e = nullptr);

// Output channels [o0, o1) of the parameter gradients, summed over the whole batch in order:
// d_weight (OC, 1, 3, 3) and d_bias (OC) are added into; either may be null. With fill, d_out
// is not read: each output channel's gradient comes from (*fill)(dst, OH * OW, o), a few
// channels at a time (the same values, so the same bits).
void conv2d_direct_param_grads(float* d_weight, float* d_bias, const float* d_out, const float* in,
                               const Conv2dDims& d, int64_t o0, int64_t o1,
                               const Conv2dBackwardFusion::ChannelFill* fill = nullptr);

}  // namespace scratchnet
