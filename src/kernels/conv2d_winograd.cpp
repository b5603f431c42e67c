// Winograd F(2x2, 3x3) and F(4x4, 3x3) for stride-1 3x3 convolutions on AVX-512: 2.25 and 4
// times fewer multiplications than the direct sum.
//
// The output is cut into 2x2 tiles; tile (ty, tx) needs the 4x4 input patch d at rows
// 2*ty - pad .. +3 and columns 2*tx - pad .. +3 (zeros outside). With
//   B^T = [1 0 -1 0; 0 1 1 0; 0 -1 1 0; 0 1 0 -1],  G = [1 0 0; .5 .5 .5; .5 -.5 .5; 0 0 1],
//   A^T = [1 1 1 0; 0 1 -1 -1],
// each input patch becomes V = B^T d B, each 3x3 filter U = G g G^T (both 4x4), and for each
// of the 16 positions xi of the 4x4 transforms one matrix product sums over channels:
//   M_xi (OC, T) = U_xi (OC, C) * V_xi (C, T)        T = tiles of a chunk of samples (gemm)
// (U_xi is stored transposed, (C, OC)).
// Each output tile is then bias + A^T M A (2x2). Tiles that stick out of the output are
// computed on zeros and not stored. F(4x4, 3x3) is the same with 4x4 tiles, 6x6 patches and
// 36 positions (its matrices are in conv2d_winograd4.cpp), used on outputs of 16 columns or
// more (tile_size) and on small planes of a batch, where its transforms hold 16 samples'
// same tile per vector (lanes_pay, conv2d_winograd_lanes.cpp) rather than 16 tiles of one.
//
// The weight gradient runs the forward backwards: with each output-gradient tile dY (2x2)
// transformed to A dY A^T (4x4), zeros past the output,
//   dU_xi (OC, C) = sum over tiles of (A dY A^T)_xi (OC, T) * V_xi (C, T)^T        (gemm)
// and each filter's gradient is G^T dU G (3x3); likewise with F(4x4, 3x3). There the input
// gradient takes the same transformed tiles through the forward backwards: per position
//   dV_xi (C, T) = U_xi (C, OC) * (A dY A^T)_xi (OC, T)                            (gemm)
// and each tile's B dV B^T (6x6) is added at its input patch (patches overlap by 2), so d_out
// is transformed once for both, and for the bias gradient too: (A dY A^T) at (1, 1) is the sum
// of tile dY (A's second row is all ones). F(2x2, 3x3) and the samples-in-lanes form get the input
// gradient as a convolution of d_out padded by 2 - padding with the flipped kernel.
//
// Work is split into chunks of samples fixed by the shape (enough tiles for the products to
// run near peak, few enough that V and M stay in L2); chunks go over threads, or for fewer
// chunks than threads the products are split instead, so results never depend on the thread
// count (the weight gradient sums its chunks in a fixed number of groups, then the groups in
// order). Compared with the direct sum, rounding grows by the transforms' constants: about
// 1.5e-7 of the sum of the magnitudes of the direct terms for F(2x2, 3x3) on the models'
// layers, up to 4.1e-6 for F(4x4, 3x3) on the tests' shapes; the tests bound it at 1e-5.
#include <algorithm>
#include <vector>

#include "conv2d_kernels.h"
#include "scratch.h"
#include "scratchnet/kernels/gemm.h"
#include "scratchnet/parallel.h"

#if defined(__x86_64__) || defined(_M_X64)
#include "conv2d_winograd.h"

namespace scratchnet::winograd {

namespace {

enum Slot { kPlanes, kLanesOut, kV, kM, kU, kFlipped, kGroupSums, kOutGrad, kNumSlots };

// Where a buffer holds planes (rows, columns, lanes) of values surrounded by zeros: its
// first plane's values at (top, left), each (h, w), `count` such planes.
struct Layout {
  int64_t count, h, w, top, left, rows, cols, lanes;
  bool operator==(const Layout&) const = default;
};

// A buffer, and for zeroed() the layout whose places its zeros surround.
class Scratch {
 public:
  float* get(int64_t n) {
    zeroed_ = {};
    return buffer_.get(n);
  }

  // get(n) with zeros outside the places of `layout`: written only when the last call was not
  // one with the same layout (the callers write those places only).
  float* zeroed(int64_t n, const Layout& layout) {
    const bool ready = layout == zeroed_ && n <= buffer_.size();
    float* data = get(n);
    if (!ready) std::fill(data, data + n, 0.0f);
    zeroed_ = layout;
    return data;
  }

 private:
  ScratchBuffer buffer_;
  Layout zeroed_{};
};

// kU and kFlipped are filled by the calling thread before a parallel_for, and kGroupSums is
// the calling thread's but filled inside one, so they have slots of their own (the calling
// thread also runs a chunk).
Scratch& buffers(Slot slot) {
  thread_local Scratch all[kNumSlots];
  return all[slot];
}

float* scratch(Slot slot, int64_t n) { return buffers(slot).get(n); }

// The padded planes (planes, hp, wp) of one sample, or (hp, wp, 16) of a chunk's samples in
// the lanes, with zeros where the input is not.
float* padded_planes(const Shape3& s) {
  const int64_t planes = s.lanes ? 1 : s.planes, lanes = s.lanes ? kLanes : 1;
  return buffers(kPlanes).zeroed(planes * s.hp * s.wp * lanes,
                                 {planes, s.h, s.w, s.pad, s.pad, s.hp, s.wp, lanes});
}

// The (4 ty, 4 tx, 16) output-gradient plane of a chunk's samples in the lanes, zeros past
// (oh, ow).
float* lanes_grad_planes(const Shape3& s) {
  const int64_t rows = s.m * s.ty, cols = s.m * s.tx;
  return buffers(kLanesOut).zeroed(rows * cols * kLanes, {1, s.oh, s.ow, 0, 0, rows, cols, kLanes});
}

// xp (planes, hp, wp) = x (planes, h, w) placed at (pad, pad), zeros elsewhere (padded_planes).
void pad_sample(float* xp, const float* x, const Shape3& s) {
  const int64_t rows = std::min(s.h, s.hp - s.pad), cols = std::min(s.w, s.wp - s.pad);
  for (int64_t c = 0; c < s.planes; ++c)
    conv2d_copy_rows_avx512(xp + (c * s.hp + s.pad) * s.wp + s.pad, s.wp, x + c * s.h * s.w, s.w,
                            rows, cols);
}

// V (16, planes, t_chunk) columns [t0, t0 + tiles) for one padded sample xp: 16 tiles of a
// tile row at a time; the 4 columns of each patch row are split from loads of 32 floats.
__attribute__((target("avx512f"))) void input_transform(float* v, int64_t t0, const float* xp,
                                                        const Shape3& s) {
  const __m512i even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
  const __m512i odd = _mm512_add_epi32(even, _mm512_set1_epi32(1));
  const int64_t plane_v = s.planes * s.t_chunk;  // floats between two positions xi
  for (int64_t c = 0; c < s.planes; ++c)
    for (int64_t y = 0; y < s.ty; ++y)
      for (int64_t x = 0; x < s.tx; x += kLanes) {
        const __mmask16 m = lanes_mask(s.tx - x);
        // Columns 2x .. 2x + 33 of the patch rows, those past the plane masked (read as 0).
        const int64_t avail = s.wp - 2 * x;
        const __mmask16 ma0 = lanes_mask(avail), ma1 = lanes_mask(std::max<int64_t>(0, avail - 16));
        const __mmask16 mb0 = lanes_mask(avail - 2);
        const __mmask16 mb1 = lanes_mask(std::max<int64_t>(0, avail - 18));
        __m512 d[4][4];
        for (int i = 0; i < 4; ++i) {
          const float* row = xp + (c * s.hp + 2 * y + i) * s.wp + 2 * x;
          const __m512 a0 = _mm512_maskz_loadu_ps(ma0, row);
          const __m512 a1 = _mm512_maskz_loadu_ps(ma1, row + 16);
          const __m512 b0 = _mm512_maskz_loadu_ps(mb0, row + 2);
          const __m512 b1 = _mm512_maskz_loadu_ps(mb1, row + 18);
          d[i][0] = _mm512_permutex2var_ps(a0, even, a1);
          d[i][1] = _mm512_permutex2var_ps(a0, odd, a1);
          d[i][2] = _mm512_permutex2var_ps(b0, even, b1);
          d[i][3] = _mm512_permutex2var_ps(b0, odd, b1);
        }
        __m512 t[4][4];  // B^T d
        for (int j = 0; j < 4; ++j) {
          t[0][j] = _mm512_sub_ps(d[0][j], d[2][j]);
          t[1][j] = _mm512_add_ps(d[1][j], d[2][j]);
          t[2][j] = _mm512_sub_ps(d[2][j], d[1][j]);
          t[3][j] = _mm512_sub_ps(d[1][j], d[3][j]);
        }
        float* dst = v + c * s.t_chunk + t0 + y * s.tx + x;
        for (int i = 0; i < 4; ++i) {  // (B^T d) B
          _mm512_mask_storeu_ps(dst + (i * 4 + 0) * plane_v, m, _mm512_sub_ps(t[i][0], t[i][2]));
          _mm512_mask_storeu_ps(dst + (i * 4 + 1) * plane_v, m, _mm512_add_ps(t[i][1], t[i][2]));
          _mm512_mask_storeu_ps(dst + (i * 4 + 2) * plane_v, m, _mm512_sub_ps(t[i][2], t[i][1]));
          _mm512_mask_storeu_ps(dst + (i * 4 + 3) * plane_v, m, _mm512_sub_ps(t[i][1], t[i][3]));
        }
      }
}

// out[sample] (outs, oh, ow) = bias + A^T M A from M (16, outs, t_chunk) columns
// [t0, t0 + tiles); the two output columns of 16 tiles are interleaved into 32 output columns.
// With e, its BatchNorm (if any) and ReLU follow, and with e->pool each tile, a 2x2 window,
// becomes one value of out[sample] (outs, oh / 2, ow / 2).
__attribute__((target("avx512f"))) void output_transform(float* out, const float* mm, int64_t t0,
                                                         const float* bias, const Conv2dEpilogue* e,
                                                         const Shape3& s) {
  const __m512i lo_idx = interleave_index(0), hi_idx = interleave_index(1);
  const int64_t plane_m = s.outs * s.t_chunk;
  const bool pool = e && e->pool;
  const int64_t ph = s.oh / 2, pw = s.ow / 2;  // pooled plane
  for (int64_t o = 0; o < s.outs; ++o) {
    const ChannelEpilogue ce = channel_epilogue(bias, e, o);
    for (int64_t y = 0; y < (pool ? ph : s.ty); ++y)
      for (int64_t x = 0; x < s.tx; x += kLanes) {
        const __mmask16 m = lanes_mask(s.tx - x);
        const float* src = mm + o * s.t_chunk + t0 + y * s.tx + x;
        __m512 v[4][4];
        for (int xi = 0; xi < 16; ++xi)
          v[xi / 4][xi % 4] = _mm512_maskz_loadu_ps(m, src + xi * plane_m);
        __m512 r[2][4];  // A^T M
        for (int j = 0; j < 4; ++j) {
          r[0][j] = _mm512_add_ps(_mm512_add_ps(v[0][j], v[1][j]), v[2][j]);
          r[1][j] = _mm512_sub_ps(_mm512_sub_ps(v[1][j], v[2][j]), v[3][j]);
        }
        __m512 yv[2][2];  // output rows 2y + i, columns 2 (x + lane) + j
        for (int i = 0; i < 2; ++i) {
          yv[i][0] = finish(_mm512_add_ps(_mm512_add_ps(r[i][0], r[i][1]), r[i][2]), ce);
          yv[i][1] = finish(_mm512_sub_ps(_mm512_sub_ps(r[i][1], r[i][2]), r[i][3]), ce);
        }
        if (pool) {  // tiles x .. of row y are whole windows up to column pw
          _mm512_mask_storeu_ps(out + (o * ph + y) * pw + x, lanes_mask(pw - x),
                                max4(yv[0][0], yv[0][1], yv[1][0], yv[1][1]));
          continue;
        }
        const int64_t cols = std::min<int64_t>(2 * kLanes, s.ow - 2 * x);
        const __mmask16 lo = lanes_mask(cols), hi = lanes_mask(std::max<int64_t>(0, cols - 16));
        for (int i = 0; i < 2; ++i) {
          const int64_t row = 2 * y + i;
          if (row >= s.oh) break;
          float* dst = out + (o * s.oh + row) * s.ow + 2 * x;
          _mm512_mask_storeu_ps(dst, lo, _mm512_permutex2var_ps(yv[i][0], lo_idx, yv[i][1]));
          _mm512_mask_storeu_ps(dst + 16, hi, _mm512_permutex2var_ps(yv[i][0], hi_idx, yv[i][1]));
        }
      }
  }
}

// G (16, outs, t_chunk) columns [t0, t0 + tiles) = A dY A^T for each 2x2 tile dY of one
// sample's output gradient dy (outs, oh, ow), reading zeros past the output. Row i of a
// tile (p, q) becomes (p, p + q, p - q, -q) down the rows, then likewise along each row.
__attribute__((target("avx512f"))) void grad_transform(float* gt, int64_t t0, const float* dy,
                                                       const Shape3& s) {
  const __m512i even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
  const __m512i odd = _mm512_add_epi32(even, _mm512_set1_epi32(1));
  const __m512 zero = _mm512_setzero_ps();
  const int64_t plane_g = s.outs * s.t_chunk;
  for (int64_t o = 0; o < s.outs; ++o)
    for (int64_t y = 0; y < s.ty; ++y)
      for (int64_t x = 0; x < s.tx; x += kLanes) {
        const __mmask16 m = lanes_mask(s.tx - x);
        const int64_t avail = s.ow - 2 * x;  // output columns 2x .. 2x + 31 that exist
        const __mmask16 m0 = lanes_mask(avail), m1 = lanes_mask(std::max<int64_t>(0, avail - 16));
        __m512 p[2], q[2];  // the tiles' two rows: even and odd columns
        for (int i = 0; i < 2; ++i) {
          const int64_t row = 2 * y + i;
          __m512 a0 = zero, a1 = zero;
          if (row < s.oh) {
            const float* src = dy + (o * s.oh + row) * s.ow + 2 * x;
            a0 = _mm512_maskz_loadu_ps(m0, src);
            a1 = _mm512_maskz_loadu_ps(m1, src + 16);
          }
          p[i] = _mm512_permutex2var_ps(a0, even, a1);
          q[i] = _mm512_permutex2var_ps(a0, odd, a1);
        }
        __m512 r[4][2];  // A dY
        r[0][0] = p[0];
        r[0][1] = q[0];
        r[1][0] = _mm512_add_ps(p[0], p[1]);
        r[1][1] = _mm512_add_ps(q[0], q[1]);
        r[2][0] = _mm512_sub_ps(p[0], p[1]);
        r[2][1] = _mm512_sub_ps(q[0], q[1]);
        r[3][0] = _mm512_sub_ps(zero, p[1]);
        r[3][1] = _mm512_sub_ps(zero, q[1]);
        float* dst = gt + o * s.t_chunk + t0 + y * s.tx + x;
        for (int i = 0; i < 4; ++i) {  // (A dY) A^T
          _mm512_mask_storeu_ps(dst + (i * 4 + 0) * plane_g, m, r[i][0]);
          _mm512_mask_storeu_ps(dst + (i * 4 + 1) * plane_g, m, _mm512_add_ps(r[i][0], r[i][1]));
          _mm512_mask_storeu_ps(dst + (i * 4 + 2) * plane_g, m, _mm512_sub_ps(r[i][0], r[i][1]));
          _mm512_mask_storeu_ps(dst + (i * 4 + 3) * plane_g, m, _mm512_sub_ps(zero, r[i][1]));
        }
      }
}

// u (16, planes, outs) = G g G^T for the 3x3 filters g of weight (outs, planes, 3, 3) of
// output channels [o0, o1): each position's U transposed, the products' A read as trans_a
// (its columns are what gemm's column kernel for narrow panels reads).
void filter_transform(float* u, const float* weight, int64_t outs, int64_t planes, int64_t o0,
                      int64_t o1) {
  const int64_t stride = outs * planes;
  for (int64_t o = o0; o < o1; ++o)
    for (int64_t c = 0; c < planes; ++c) {
      const float* g = weight + (o * planes + c) * 9;
      float t[4][3];  // G g
      for (int j = 0; j < 3; ++j) {
        t[0][j] = g[j];
        t[1][j] = 0.5f * (g[j] + g[3 + j] + g[6 + j]);
        t[2][j] = 0.5f * (g[j] - g[3 + j] + g[6 + j]);
        t[3][j] = g[6 + j];
      }
      float* dst = u + c * outs + o;
      for (int i = 0; i < 4; ++i) {  // (G g) G^T
        dst[(i * 4 + 0) * stride] = t[i][0];
        dst[(i * 4 + 1) * stride] = 0.5f * (t[i][0] + t[i][1] + t[i][2]);
        dst[(i * 4 + 2) * stride] = 0.5f * (t[i][0] - t[i][1] + t[i][2]);
        dst[(i * 4 + 3) * stride] = t[i][2];
      }
    }
}

// d_weight (outs, planes, 3, 3) += G^T du G for each filter's du (16, outs, planes), output
// channels [o0, o1).
void filter_grad_transform(float* d_weight, const float* du, int64_t outs, int64_t planes,
                           int64_t o0, int64_t o1) {
  const int64_t stride = outs * planes;
  for (int64_t o = o0; o < o1; ++o)
    for (int64_t c = 0; c < planes; ++c) {
      const float* u = du + o * planes + c;
      float t[3][4];  // G^T du
      for (int j = 0; j < 4; ++j) {
        const float u0 = u[j * stride], u1 = u[(4 + j) * stride], u2 = u[(8 + j) * stride],
                    u3 = u[(12 + j) * stride];
        t[0][j] = u0 + 0.5f * (u1 + u2);
        t[1][j] = 0.5f * (u1 - u2);
        t[2][j] = 0.5f * (u1 + u2) + u3;
      }
      float* g = d_weight + (o * planes + c) * 9;
      for (int i = 0; i < 3; ++i) {  // (G^T du) G
        g[i * 3 + 0] += t[i][0] + 0.5f * (t[i][1] + t[i][2]);
        g[i * 3 + 1] += 0.5f * (t[i][1] - t[i][2]);
        g[i * 3 + 2] += 0.5f * (t[i][1] + t[i][2]) + t[i][3];
      }
    }
}

// input_transform for one sample x (planes, h, w): padded first, into padded_planes.
void input_transform_padding(float* v, int64_t t0, const float* x, const Shape3& s) {
  float* xp = padded_planes(s);
  pad_sample(xp, x, s);
  input_transform(v, t0, xp, s);
}

// The transforms of F(2x2, 3x3) (m = 2, this file) or F(4x4, 3x3) (m = 4,
// conv2d_winograd4.cpp); the input transform from one sample's planes (planes, h, w).
struct Transforms {
  void (*input)(float* v, int64_t t0, const float* x, const Shape3& s);
  void (*output)(float* out, const float* mm, int64_t t0, const float* bias,
                 const Conv2dEpilogue* e, const Shape3& s);
  void (*grad)(float* gt, int64_t t0, const float* dy, const Shape3& s);
  void (*filter)(float* u, const float* weight, int64_t outs, int64_t planes, int64_t o0,
                 int64_t o1);
  void (*filter_grad)(float* d_weight, const float* du, int64_t outs, int64_t planes, int64_t o0,
                      int64_t o1);
};

const Transforms& transforms(const Shape3& s) {
  static const Transforms f2{input_transform_padding, output_transform, grad_transform,
                             filter_transform, filter_grad_transform};
  static const Transforms f4{input_transform4, output_transform4, grad_transform4,
                             filter_transform4, filter_grad_transform4};
  return s.m == 4 ? f4 : f2;
}

// One chunk of samples [s0, s0 + count): transforms and the products, one per position.
void run_chunk(float* out, const float* in, const float* u, const float* bias,
               const Conv2dEpilogue* e, int64_t s0, int64_t count, bool parallel_products,
               const Shape3& s) {
  float* v = scratch(kV, s.positions * s.planes * s.t_chunk);  // (positions, planes, t_chunk)
  float* mm = scratch(kM, s.positions * s.outs * s.t_chunk);   // (positions, outs, t_chunk)
  const int64_t t_used = count * s.tiles, in_size = s.planes * s.h * s.w;
  if (s.lanes) {
    input_transform4_lanes(v, padded_planes(s), in + s0 * in_size, count, s);
  } else {
    for (int64_t k = 0; k < count; ++k)
      transforms(s).input(v, k * s.tiles, in + (s0 + k) * in_size, s);
  }
  for (int xi = 0; xi < s.positions; ++xi) {
    const GemmArgs g{.trans_a = true,
                     .m = s.outs,
                     .n = t_used,
                     .k = s.planes,
                     .a = u + xi * s.outs * s.planes,
                     .lda = s.outs,
                     .b = v + xi * s.planes * s.t_chunk,
                     .ldb = s.t_chunk,
                     .c = mm + xi * s.outs * s.t_chunk,
                     .ldc = s.t_chunk};
    parallel_products ? gemm_parallel(g) : gemm(g);
  }
  const int64_t out_size = s.outs * (e && e->pool ? (s.oh / 2) * (s.ow / 2) : s.oh * s.ow);
  if (s.lanes) {
    float* yp = scratch(kLanesOut, s.ty * s.tx * s.m * s.m * kLanes);
    output_transform4_lanes(out + s0 * out_size, yp, mm, count, bias, s);
    return;
  }
  for (int64_t k = 0; k < count; ++k)
    transforms(s).output(out + (s0 + k) * out_size, mm, k * s.tiles, bias, e, s);
}

void run(float* out, const float* in, const float* weight, const float* bias,
         const Conv2dEpilogue* e, const Shape3& s) {
  float* u = scratch(kU, s.positions * s.outs * s.planes);
  parallel_for(s.outs, parallel_grain(s.positions * s.planes), [&](int64_t o0, int64_t o1) {
    transforms(s).filter(u, weight, s.outs, s.planes, o0, o1);
  });
  const int64_t chunks = (s.n + s.chunk - 1) / s.chunk;
  if (chunks >= num_threads()) {
    parallel_for(chunks, [&](int64_t begin, int64_t end) {
      for (int64_t q = begin; q < end; ++q)
        run_chunk(out, in, u, bias, e, q * s.chunk, std::min(s.chunk, s.n - q * s.chunk), false, s);
    });
  } else {
    for (int64_t q = 0; q < chunks; ++q)
      run_chunk(out, in, u, bias, e, q * s.chunk, std::min(s.chunk, s.n - q * s.chunk), true, s);
  }
}

// The input gradient of a chunk's `count` samples from s0 on, given G (36, outs, t_chunk) of
// their output gradient: P_xi (planes, T) = U_xi (planes, outs) * G_xi, into p, then each
// sample's input gradient from input_grad_transform4, written into d_in (with relu_in, then
// zeroed where in <= 0).
void input_grad_chunk(float* d_in, float* p, const float* gt, const float* u, const float* in,
                      bool relu_in, int64_t s0, int64_t count, bool parallel_products,
                      const Shape3& s) {
  for (int xi = 0; xi < s.positions; ++xi) {
    const GemmArgs g{.m = s.planes,
                     .n = count * s.tiles,
                     .k = s.outs,
                     .a = u + xi * s.planes * s.outs,
                     .lda = s.outs,
                     .b = gt + xi * s.outs * s.t_chunk,
                     .ldb = s.t_chunk,
                     .c = p + xi * s.planes * s.t_chunk,
                     .ldc = s.t_chunk};
    parallel_products ? gemm_parallel(g) : gemm(g);
  }
  const int64_t in_size = s.planes * s.h * s.w;
  for (int64_t k = 0; k < count; ++k)
    input_grad_transform4(d_in + (s0 + k) * in_size, p, k * s.tiles,
                          relu_in ? in + (s0 + k) * in_size : nullptr, s);
}

// What the backward's chunks of one group write; null where not asked for.
struct GroupOut {
  float* du;                           // (positions, outs, planes): the group's sum of dU
  float* d_bias;                       // (outs): the group's sum of d_out, per output channel
  float* d_in;                         // the whole input gradient (each chunk writes its samples)
  const Conv2dBackwardFusion* fusion;  // or null
};

// The backward's chunks [q0, q1): per chunk the output-gradient transform, then (du) the input
// transform and dU_xi += (A dY A^T)_xi * V_xi^T, (d_bias) the tiles' sums, and (d_in, the
// tiles of F(4x4, 3x3)) the chunk's input gradient from u (36, planes, outs), the filters'
// transform (input_grad_chunk). With out.fusion, each sample's d_out from its fill, and d_in
// masked for its relu_in.
void backward_chunks(const GroupOut& out, const float* u, const float* d_out, const float* in,
                     int64_t q0, int64_t q1, bool parallel_products, const Shape3& s) {
  float* v = scratch(kV, s.positions * s.planes * s.t_chunk);  // (positions, planes, t_chunk)
  float* gt = scratch(kM, s.positions * s.outs * s.t_chunk);   // (positions, outs, t_chunk)
  const int64_t in_size = s.planes * s.h * s.w, out_size = s.outs * s.oh * s.ow;
  float* xp = s.lanes ? padded_planes(s) : nullptr;
  float* dyp = s.lanes ? lanes_grad_planes(s) : nullptr;
  const auto* fill = out.fusion && out.fusion->fill ? &out.fusion->fill : nullptr;
  float* dy = fill ? scratch(kOutGrad, out_size) : nullptr;  // one sample's (outs, oh, ow)
  for (int64_t q = q0; q < q1; ++q) {
    const int64_t s0 = q * s.chunk, count = std::min(s.chunk, s.n - s0);
    if (s.lanes) {
      input_transform4_lanes(v, xp, in + s0 * in_size, count, s);
      grad_transform4_lanes(gt, dyp, d_out + s0 * out_size, count, s);
    } else {
      for (int64_t k = 0; k < count; ++k) {
        if (out.du) transforms(s).input(v, k * s.tiles, in + (s0 + k) * in_size, s);
        if (fill) (*fill)(dy, s0 + k);
        transforms(s).grad(gt, k * s.tiles, fill ? dy : d_out + (s0 + k) * out_size, s);
      }
    }
    for (int xi = 0; out.du && xi < s.positions; ++xi) {
      const GemmArgs g{.trans_b = true,
                       .m = s.outs,
                       .n = s.planes,
                       .k = count * s.tiles,
                       .a = gt + xi * s.outs * s.t_chunk,
                       .lda = s.t_chunk,
                       .b = v + xi * s.planes * s.t_chunk,
                       .ldb = s.t_chunk,
                       .beta = q == q0 ? 0.0f : 1.0f,
                       .c = out.du + xi * s.outs * s.planes,
                       .ldc = s.planes};
      parallel_products ? gemm_parallel(g) : gemm(g);
    }
    if (out.d_bias) tile_sums4(out.d_bias, gt, count * s.tiles, q == q0, s);
    if (out.d_in)
      input_grad_chunk(out.d_in, v, gt, u, in, out.fusion && out.fusion->relu_in, s0, count,
                       parallel_products, s);
  }
}

// The transforms run 16 tiles of a tile row at a time: rows of fewer than 6 tiles leave too
// many lanes idle, and the products need enough tiles in all. Measured on `basic`'s second
// convolution (11x11 outputs: rows of 6 tiles, lanes 3/8 used), all three passes still beat
// the direct sums there.
bool winograd_pays(const Conv2dDims& d, int64_t out_h, int64_t out_w) {
  const int64_t tiles_x = (out_w + 1) / 2, tiles = (out_h + 1) / 2 * tiles_x;
  return conv2d_has_avx512() && d.k == 3 && d.stride == 1 && d.c >= 8 && d.oc >= 8 &&
         tiles_x >= 6 && d.n * tiles >= 256;
}

// F(4x4, 3x3) for outputs of 16 columns (4 tiles of 4) or more, else F(2x2, 3x3). Measured
// faster from there in all three passes (forward 1.2-1.7x, backward 1.2-1.3x on 16 to 56
// columns, 32 to 64 channels, one thread); at 14 columns its partial tiles make the input
// gradient slower.
int64_t tile_size(int64_t out_w) { return out_w >= 16 ? 4 : 2; }

// Samples in the lanes, in F(4x4, 3x3), for outputs of at most 16 columns (rows of at most 4
// tiles: half the lanes or fewer used with the tiles in them) when a chunk fills at least half
// the lanes. `basic`'s second convolution (11 and 13 columns, 9 and 16 tiles) trains 1.2x
// faster so on one thread than in the tiles' lanes (F(4x4, 3x3) forward and weight gradient,
// F(2x2, 3x3) input gradient).
bool lanes_pay(int64_t n, int64_t out_w) { return n >= kLanes / 2 && out_w <= 16; }

// The forward's chunks: at least 96 tiles of 4x4 (two 28x28 samples) or 192 of 2x2, or 16
// samples in the lanes. An epilogue runs with the tiles in the lanes, in F(4x4, 3x3) where
// the lanes would be used without it: the same values as the layers one by one.
Shape3 run_shape(int64_t n, int64_t planes, int64_t h, int64_t w, int64_t pad, int64_t outs,
                 const Conv2dEpilogue* e) {
  const int64_t out_w = w + 2 * pad - 2;
  const bool small = lanes_pay(n, out_w);
  const int64_t m = small ? 4 : tile_size(out_w);
  return Shape3(n, planes, h, w, pad, outs, m, m == 4 ? 96 : 192, small && !e);
}

}  // namespace

}  // namespace scratchnet::winograd

namespace scratchnet {

using namespace winograd;  // the helpers above

bool conv2d_winograd_ok(const Conv2dDims& d) { return winograd_pays(d, d.oh, d.ow); }

bool conv2d_winograd_input_grad_ok(const Conv2dDims& d) {
  return d.padding <= 2 && winograd_pays(d, d.h, d.w);
}

void conv2d_winograd_forward(float* out, const float* in, const float* weight, const float* bias,
                             const Conv2dDims& d, const Conv2dEpilogue* e) {
  run(out, in, weight, bias, e, run_shape(d.n, d.c, d.h, d.w, d.padding, d.oc, e));
}

void conv2d_winograd_input_grad(float* d_in, const float* d_out, const float* weight,
                                const Conv2dDims& d) {
  // A stride-1 convolution of d_out padded by 2 - padding with the kernel flipped and its
  // channel axes swapped: flipped (C, OC, 3, 3).
  float* flipped = scratch(kFlipped, d.c * d.oc * 9);
  for (int64_t o = 0; o < d.oc; ++o)
    for (int64_t c = 0; c < d.c; ++c)
      for (int64_t q = 0; q < 9; ++q)
        flipped[(c * d.oc + o) * 9 + 8 - q] = weight[(o * d.c + c) * 9 + q];
  run(d_in, d_out, flipped, nullptr, nullptr,
      run_shape(d.n, d.oc, d.oh, d.ow, 2 - d.padding, d.c, nullptr));
}

namespace {

// The weight gradient's shape: longer chunks than the forward's (here the tiles are the
// products' sum, K).
Shape3 weight_grad_shape(const Conv2dDims& d) {
  const bool lanes = lanes_pay(d.n, d.ow);
  const int64_t m = lanes ? 4 : tile_size(d.ow);
  return Shape3(d.n, d.c, d.h, d.w, d.padding, d.oc, m, m == 4 ? 96 : 384, lanes);
}

// Any of the weight, bias and input gradients (weight given for the last), in the same chunks.
// The bias gradient needs F(4x4, 3x3) on tiles (tile_sums4), as the input gradient does.
void backward(float* d_in, float* d_weight, float* d_bias, const float* d_out, const float* in,
              const float* weight, const Conv2dDims& d, const Conv2dBackwardFusion* fusion) {
  const Shape3 s = weight_grad_shape(d);
  const int64_t chunks = (s.n + s.chunk - 1) / s.chunk, groups = std::min<int64_t>(chunks, 8);
  const int64_t du_size = d_weight ? s.positions * s.outs * s.planes : 0;
  const int64_t bias_size = d_bias ? s.outs : 0;
  float* u = nullptr;
  if (d_in) {
    u = scratch(kU, s.positions * s.outs * s.planes);
    parallel_for(s.outs, parallel_grain(s.positions * s.planes), [&](int64_t o0, int64_t o1) {
      transforms(s).filter(u, weight, s.outs, s.planes, o0, o1);
    });
  }
  // (groups, positions, outs, planes), then (groups, outs)
  float* sums = scratch(kGroupSums, groups * (du_size + bias_size));
  float* bias_sums = sums + groups * du_size;
  auto group = [&](int64_t i, bool parallel_products) {
    const GroupOut out{d_weight ? sums + i * du_size : nullptr,
                       d_bias ? bias_sums + i * bias_size : nullptr, d_in, fusion};
    backward_chunks(out, u, d_out, in, i * chunks / groups, (i + 1) * chunks / groups,
                    parallel_products, s);
  };
  if (groups >= num_threads()) {
    parallel_for(groups, [&](int64_t begin, int64_t end) {
      for (int64_t i = begin; i < end; ++i) group(i, false);
    });
  } else {
    for (int64_t i = 0; i < groups; ++i) group(i, true);
  }
  for (int64_t o = 0; o < bias_size; ++o) {  // the groups' sums in order
    float total = bias_sums[o];
    for (int64_t i = 1; i < groups; ++i) total += bias_sums[i * bias_size + o];
    d_bias[o] += total;
  }
  if (!d_weight) return;
  // The groups' sums in order, then the filters' gradients, over the output channels.
  parallel_for(s.outs, parallel_grain(s.positions * s.planes * groups),
               [&](int64_t o0, int64_t o1) {
                 for (int64_t xi = 0; xi < s.positions; ++xi) {
                   float* first = sums + (xi * s.outs + o0) * s.planes;
                   for (int64_t i = 1; i < groups; ++i)
                     for (int64_t e = 0; e < (o1 - o0) * s.planes; ++e)
                       first[e] += first[i * du_size + e];
                 }
                 transforms(s).filter_grad(d_weight, sums, s.outs, s.planes, o0, o1);
               });
}

}  // namespace

void conv2d_winograd_weight_grad(float* d_weight, const float* d_out, const float* in,
                                 const Conv2dDims& d) {
  backward(nullptr, d_weight, nullptr, d_out, in, nullptr, d, nullptr);
}

bool conv2d_winograd_backward_ok(const Conv2dDims& d) {
  if (!conv2d_winograd_ok(d) || !conv2d_winograd_input_grad_ok(d)) return false;
  const Shape3 s = weight_grad_shape(d);  // a 3x3 kernel's: only now
  return s.m == 4 && !s.lanes;
}

void conv2d_winograd_backward(float* d_in, float* d_weight, float* d_bias, const float* d_out,
                              const float* in, const float* weight, const Conv2dDims& d,
                              const Conv2dBackwardFusion* fusion) {
  backward(d_in, d_weight, d_bias, d_out, in, weight, d, fusion);
}

}  // namespace scratchnet

#else  // not x86-64

namespace scratchnet {

bool conv2d_winograd_ok(const Conv2dDims&) { return false; }
bool conv2d_winograd_input_grad_ok(const Conv2dDims&) { return false; }
void conv2d_winograd_forward(float*, const float*, const float*, const float*, const Conv2dDims&,
                             const Conv2dEpilogue*) {}
void conv2d_winograd_input_grad(float*, const float*, const float*, const Conv2dDims&) {}
void conv2d_winograd_weight_grad(float*, const float*, const float*, const Conv2dDims&) {}
bool conv2d_winograd_backward_ok(const Conv2dDims&) { return false; }
void conv2d_winograd_backward(float*, float*, float*, const float*, const float*, const float*,
                              const Conv2dDims&, const Conv2dBackwardFusion*) {}

}  // namespace scratchnet

#endif
