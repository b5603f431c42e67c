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
// Each output tile is then bias + A^T M A (2x2). Tiles that stick out of the output are
// computed on zeros and not stored. F(4x4, 3x3) is the same with 4x4 tiles, 6x6 patches and
// 36 positions (its matrices are below), used on outputs of 16 columns or more (tile_size).
//
// The weight gradient runs the forward backwards: with each output-gradient tile dY (2x2)
// transformed to A dY A^T (4x4), zeros past the output,
//   dU_xi (OC, C) = sum over tiles of (A dY A^T)_xi (OC, T) * V_xi (C, T)^T        (gemm)
// and each filter's gradient is G^T dU G (3x3); likewise with F(4x4, 3x3).
//
// Work is split into chunks of samples fixed by the shape (enough tiles for the products to
// run near peak, few enough that V and M stay in L2); chunks go over threads, or for fewer
// chunks than threads the products are split instead, so results never depend on the thread
// count (the weight gradient sums its chunks in a fixed number of groups, then the groups in
// order). Compared with the direct sum, rounding grows by the transforms' constants: about
// 1.5e-7 of the sum of the magnitudes of the direct terms for F(2x2, 3x3) on the models'
// layers, up to 4.1e-6 for F(4x4, 3x3) on the tests' shapes; the tests bound it at 1e-5.
#include <algorithm>
#include <new>
#include <vector>

#include "conv2d_kernels.h"
#include "scratchnet/kernels/gemm.h"
#include "scratchnet/parallel.h"

#if defined(__x86_64__) || defined(_M_X64)
#include <immintrin.h>

namespace scratchnet {

namespace {

constexpr int kLanes = 16;

enum Slot { kPlanes, kV, kM, kU, kFlipped, kGroupSums, kNumSlots };

class Scratch {
 public:
  Scratch() = default;
  Scratch(const Scratch&) = delete;
  Scratch& operator=(const Scratch&) = delete;
  ~Scratch() { release(); }

  // At least n floats, 64-byte aligned; grows, never shrinks.
  float* get(int64_t n) {
    if (n > size_) {
      release();
      data_ = static_cast<float*>(
          ::operator new(static_cast<size_t>(n) * sizeof(float), std::align_val_t(64)));
      size_ = n;
    }
    return data_;
  }

 private:
  void release() {
    if (data_) ::operator delete(data_, std::align_val_t(64));
    data_ = nullptr;
    size_ = 0;
  }
  float* data_ = nullptr;
  int64_t size_ = 0;
};

// kU and kFlipped are filled by the calling thread before a parallel_for, and kGroupSums is
// the calling thread's but filled inside one, so they have slots of their own (the calling
// thread also runs a chunk).
float* scratch(Slot slot, int64_t n) {
  thread_local Scratch buffers[kNumSlots];
  return buffers[slot].get(n);
}

// One convolution: `planes` input planes (h, w) padded by `pad`, `outs` output planes, in
// output tiles of m x m: F(2x2, 3x3) (m = 2) or F(4x4, 3x3) (m = 4).
struct Shape3 {
  int64_t n, planes, h, w, pad, outs;
  int64_t m, positions;    // tile size, and (m + 2)^2 positions of the transforms
  int64_t oh, ow;          // output: h + 2*pad - 2, likewise
  int64_t ty, tx, tiles;   // tiles per sample: ceil(oh / m) x ceil(ow / m)
  int64_t hp, wp;          // padded plane: every tile's (m + 2)^2 patch fits
  int64_t chunk, t_chunk;  // samples per chunk and tiles per chunk

  // Chunks of at least min_tiles tiles (or the whole batch).
  Shape3(int64_t n_, int64_t planes_, int64_t h_, int64_t w_, int64_t pad_, int64_t outs_,
         int64_t m_, int64_t min_tiles)
      : n(n_), planes(planes_), h(h_), w(w_), pad(pad_), outs(outs_), m(m_) {
    positions = (m + 2) * (m + 2);
    oh = h + 2 * pad - 2;
    ow = w + 2 * pad - 2;
    ty = (oh + m - 1) / m;
    tx = (ow + m - 1) / m;
    tiles = ty * tx;
    hp = m * ty + 2;
    wp = m * tx + 2;
    chunk = std::clamp<int64_t>((min_tiles + tiles - 1) / tiles, 1, n);
    t_chunk = chunk * tiles;
  }
};

// xp (planes, hp, wp) = x (planes, h, w) placed at (pad, pad), zeros elsewhere.
void pad_sample(float* xp, const float* x, const Shape3& s) {
  std::fill(xp, xp + s.planes * s.hp * s.wp, 0.0f);
  const int64_t rows = std::min(s.h, s.hp - s.pad), cols = std::min(s.w, s.wp - s.pad);
  for (int64_t c = 0; c < s.planes; ++c)
    conv2d_copy_rows_avx512(xp + (c * s.hp + s.pad) * s.wp + s.pad, s.wp, x + c * s.h * s.w, s.w,
                            rows, cols);
}

__mmask16 lanes_mask(int64_t count) {
  return count >= kLanes ? static_cast<__mmask16>(0xFFFF)
                         : static_cast<__mmask16>((1u << count) - 1u);
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

// With bn, (y - center) * scale + shift; then ReLU; each step rounded as
// batch_norm_forward_eval and relu_forward do. The _round forms keep the compiler from fusing
// the multiply and add (maskz ones: GCC 12 warns about the undefined source of the others).
__attribute__((target("avx512f"))) inline __m512 bn_relu(__m512 y, bool bn, __m512 center,
                                                         __m512 scale, __m512 shift) {
  constexpr int kRound = _MM_FROUND_CUR_DIRECTION;
  constexpr __mmask16 kAll = 0xFFFF;
  const __m512 v =
      bn ? _mm512_maskz_add_round_ps(
               kAll, _mm512_maskz_mul_round_ps(kAll, _mm512_sub_ps(y, center), scale, kRound),
               shift, kRound)
         : y;
  const __m512 zero = _mm512_setzero_ps();
  return _mm512_mask_mov_ps(v, _mm512_cmp_ps_mask(v, zero, _CMP_LT_OQ), zero);  // NaN stays
}

// The 2x2 window a, b (top row), c, d scanned as MaxPool2d does: a strictly greater value or
// a NaN takes over.
__attribute__((target("avx512f"))) inline __m512 max4(__m512 a, __m512 b, __m512 c, __m512 d) {
  __m512 best = a;
  for (const __m512 v : {b, c, d}) {
    const __mmask16 take =
        _mm512_cmp_ps_mask(v, best, _CMP_GT_OQ) | _mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q);
    best = _mm512_mask_mov_ps(best, take, v);
  }
  return best;
}

// out[sample] (outs, oh, ow) = bias + A^T M A from M (16, outs, t_chunk) columns
// [t0, t0 + tiles); the two output columns of 16 tiles are interleaved into 32 output columns.
// With e, its BatchNorm (if any) and ReLU follow, and with e->pool each tile, a 2x2 window,
// becomes one value of out[sample] (outs, oh / 2, ow / 2).
__attribute__((target("avx512f"))) void output_transform(float* out, const float* mm, int64_t t0,
                                                         const float* bias, const Conv2dEpilogue* e,
                                                         const Shape3& s) {
  const __m512i lo_idx = _mm512_setr_epi32(0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
  const __m512i hi_idx =
      _mm512_setr_epi32(8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31);
  const int64_t plane_m = s.outs * s.t_chunk;
  const bool pool = e && e->pool, bn = e && e->center;
  const int64_t ph = s.oh / 2, pw = s.ow / 2;  // pooled plane
  for (int64_t o = 0; o < s.outs; ++o) {
    const __m512 b = _mm512_set1_ps(bias ? bias[o] : 0.0f);
    const __m512 center = _mm512_set1_ps(bn ? e->center[o] : 0.0f);
    const __m512 scale = _mm512_set1_ps(bn ? e->scale[o] : 0.0f);
    const __m512 shift = _mm512_set1_ps(bn ? e->shift[o] : 0.0f);
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
          yv[i][0] = _mm512_add_ps(_mm512_add_ps(_mm512_add_ps(r[i][0], r[i][1]), r[i][2]), b);
          yv[i][1] = _mm512_add_ps(_mm512_sub_ps(_mm512_sub_ps(r[i][1], r[i][2]), r[i][3]), b);
          if (e)
            for (int j = 0; j < 2; ++j) yv[i][j] = bn_relu(yv[i][j], bn, center, scale, shift);
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

// u (16, outs, planes) = G g G^T for every 3x3 filter g of weight (outs, planes, 3, 3).
void filter_transform(float* u, const float* weight, int64_t outs, int64_t planes) {
  const int64_t stride = outs * planes;
  for (int64_t o = 0; o < outs; ++o)
    for (int64_t c = 0; c < planes; ++c) {
      const float* g = weight + (o * planes + c) * 9;
      float t[4][3];  // G g
      for (int j = 0; j < 3; ++j) {
        t[0][j] = g[j];
        t[1][j] = 0.5f * (g[j] + g[3 + j] + g[6 + j]);
        t[2][j] = 0.5f * (g[j] - g[3 + j] + g[6 + j]);
        t[3][j] = g[6 + j];
      }
      float* dst = u + o * planes + c;
      for (int i = 0; i < 4; ++i) {  // (G g) G^T
        dst[(i * 4 + 0) * stride] = t[i][0];
        dst[(i * 4 + 1) * stride] = 0.5f * (t[i][0] + t[i][1] + t[i][2]);
        dst[(i * 4 + 2) * stride] = 0.5f * (t[i][0] - t[i][1] + t[i][2]);
        dst[(i * 4 + 3) * stride] = t[i][2];
      }
    }
}

// d_weight (outs, planes, 3, 3) += G^T du G for each filter's du (16, outs, planes).
void filter_grad_transform(float* d_weight, const float* du, int64_t outs, int64_t planes) {
  const int64_t stride = outs * planes;
  for (int64_t o = 0; o < outs; ++o)
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

// ---- F(4x4, 3x3): 4x4 output tiles from 6x6 patches, 36 products, 4 times fewer
// multiplications than the direct sum. Points 0, 1, -1, 2, -2 (Lavin and Gray):
//   B^T = [4 0 -5 0 1 0; 0 -4 -4 1 1 0; 0 4 -4 -1 1 0; 0 -2 -1 2 1 0; 0 2 -1 -2 1 0;
//          0 4 0 -5 0 1],
//   G = [1/4 0 0; -1/6 -1/6 -1/6; -1/6 1/6 -1/6; 1/24 1/12 1/6; 1/24 -1/12 1/6; 0 0 1],
//   A^T = [1 1 1 1 1 0; 0 1 -1 2 -2 0; 0 1 1 4 4 0; 0 1 -1 8 -8 1].
// The transforms hold 16 tiles per vector: 8 tiles of a tile row in lanes 0-7, and in lanes
// 8-15 the next 8 of the row or, for rows of at most 8 tiles, the same tiles of the next tile
// row (rows of 7 tiles, 28 outputs, fill 14 lanes). Their V and M columns are contiguous.

// Where a vector's tiles are: lanes 0-7 from tile (y, x), lanes 8-15 from tile (y + 1, x)
// (`pairs`: rows of at most 8 tiles) or (y, x + 8).
struct Group4 {
  int64_t y, x;
  bool pairs;
  __mmask16 valid;  // lanes holding tiles
  int count;        // how many: the columns from y * tx + x on
};

// The vectors' tiles in order, groups4(s) of them: row pairs, or 16 tiles of a row at a time.
int64_t groups4(const Shape3& s) { return s.tx <= 8 ? (s.ty + 1) / 2 : s.ty * ((s.tx + 15) / 16); }

Group4 group4(const Shape3& s, int64_t i) {
  const bool pairs = s.tx <= 8;
  const int64_t per_row = (s.tx + 15) / 16;
  const int64_t y = pairs ? 2 * i : i / per_row, x = pairs ? 0 : 16 * (i % per_row);
  const int64_t lower = std::min<int64_t>(8, s.tx - x);
  const int64_t upper =
      pairs ? (y + 1 < s.ty ? lower : 0) : std::clamp<int64_t>(s.tx - x - 8, 0, 8);
  const auto valid = static_cast<__mmask16>(lanes_mask(lower) | (lanes_mask(upper) << 8));
  return Group4{y, x, pairs, valid, static_cast<int>(lower + upper)};
}

// B^T z for the 6 vectors z (a column or a row of patches).
__attribute__((target("avx512f"))) inline void b6(__m512 o[6], const __m512 z[6]) {
  const __m512 four = _mm512_set1_ps(4.0f), five = _mm512_set1_ps(5.0f);
  const __m512 two = _mm512_set1_ps(2.0f);
  const __m512 s12 = _mm512_add_ps(z[1], z[2]), d12 = _mm512_sub_ps(z[1], z[2]);
  const __m512 s34 = _mm512_add_ps(z[3], z[4]), d43 = _mm512_sub_ps(z[4], z[3]);
  const __m512 d42 = _mm512_sub_ps(z[4], z[2]), d31 = _mm512_sub_ps(z[3], z[1]);
  o[0] = _mm512_fmadd_ps(four, z[0], _mm512_fnmadd_ps(five, z[2], z[4]));
  o[1] = _mm512_fnmadd_ps(four, s12, s34);
  o[2] = _mm512_fmadd_ps(four, d12, d43);
  o[3] = _mm512_fmadd_ps(two, d31, d42);
  o[4] = _mm512_fnmadd_ps(two, d31, d42);
  o[5] = _mm512_fmadd_ps(four, z[1], _mm512_fnmadd_ps(five, z[3], z[5]));
}

// A^T m for the 6 vectors m.
__attribute__((target("avx512f"))) inline void a6(__m512 y[4], const __m512 m[6]) {
  const __m512 s12 = _mm512_add_ps(m[1], m[2]), d12 = _mm512_sub_ps(m[1], m[2]);
  const __m512 s34 = _mm512_add_ps(m[3], m[4]), d34 = _mm512_sub_ps(m[3], m[4]);
  y[0] = _mm512_add_ps(_mm512_add_ps(m[0], s12), s34);
  y[1] = _mm512_fmadd_ps(_mm512_set1_ps(2.0f), d34, d12);
  y[2] = _mm512_fmadd_ps(_mm512_set1_ps(4.0f), s34, s12);
  y[3] = _mm512_add_ps(_mm512_fmadd_ps(_mm512_set1_ps(8.0f), d34, d12), m[5]);
}

// out[j] for j < count (at most 4): columns j .. j + 28 step 4 of the 32 floats at `row`
// (those past `avail` read as 0) in lanes 0-7.
__attribute__((target("avx512f"))) inline void every4(__m512* out, int count, const float* row,
                                                      int64_t avail) {
  const __m512i idx = _mm512_setr_epi32(0, 4, 8, 12, 16, 20, 24, 28, 0, 4, 8, 12, 16, 20, 24, 28);
  const __m512 q0 = _mm512_maskz_loadu_ps(lanes_mask(std::max<int64_t>(0, avail)), row);
  const __m512 q1 = _mm512_maskz_loadu_ps(lanes_mask(std::max<int64_t>(0, avail - 16)), row + 16);
  for (int j = 0; j < count; ++j)
    out[j] = _mm512_permutex2var_ps(q0, _mm512_add_epi32(idx, _mm512_set1_epi32(j)), q1);
}

// V (36, planes, t_chunk) columns [t0, t0 + tiles) for one padded sample xp (Group4 lanes).
__attribute__((target("avx512f"))) void input_transform4(float* v, int64_t t0, const float* xp,
                                                         const Shape3& s) {
  const int64_t plane_v = s.planes * s.t_chunk;
  for (int64_t c = 0; c < s.planes; ++c)
    for (int64_t gi = 0; gi < groups4(s); ++gi) {
      const Group4 g = group4(s, gi);
      const float* lo = xp + (c * s.hp + 4 * g.y) * s.wp + 4 * g.x;
      const float* hi = g.pairs ? lo + 4 * s.wp : lo + 32;
      const int64_t avail_lo = s.wp - 4 * g.x, avail_hi = g.pairs ? avail_lo : avail_lo - 32;
      const bool has_hi = (g.valid >> 8) != 0;
      __m512 d[6][6];
      for (int i = 0; i < 6; ++i) {
        __m512 a[6], b[6];  // patch columns 0-5 of the tiles in lanes 0-7 of a, of b
        every4(a, 4, lo + i * s.wp, avail_lo);
        every4(a + 4, 2, lo + i * s.wp + 4, avail_lo - 4);
        if (has_hi) {
          every4(b, 4, hi + i * s.wp, avail_hi);
          every4(b + 4, 2, hi + i * s.wp + 4, avail_hi - 4);
        }
        // Lanes 0-7 of a, then of b (maskz: GCC 12 warns on the plain form).
        for (int j = 0; j < 6; ++j)
          d[i][j] = has_hi ? _mm512_maskz_shuffle_f32x4(0xFFFF, a[j], b[j], _MM_SHUFFLE(1, 0, 1, 0))
                           : a[j];
      }
      __m512 t[6][6];  // B^T d, column by column
      for (int j = 0; j < 6; ++j) {
        const __m512 col[6] = {d[0][j], d[1][j], d[2][j], d[3][j], d[4][j], d[5][j]};
        __m512 o[6];
        b6(o, col);
        for (int i = 0; i < 6; ++i) t[i][j] = o[i];
      }
      float* dst = v + c * s.t_chunk + t0 + g.y * s.tx + g.x;
      const __mmask16 store = lanes_mask(g.count);
      for (int i = 0; i < 6; ++i) {  // (B^T d) B, row by row
        __m512 o[6];
        b6(o, t[i]);
        for (int j = 0; j < 6; ++j)
          _mm512_mask_storeu_ps(dst + (i * 6 + j) * plane_v, store,
                                _mm512_maskz_compress_ps(g.valid, o[j]));
      }
    }
}

// out[sample] (outs, oh, ow) = bias + A^T M A from M (36, outs, t_chunk) columns
// [t0, t0 + tiles), with e as output_transform; with e->pool each 4x4 tile becomes 2x2 values
// of out[sample] (outs, oh / 2, ow / 2).
__attribute__((target("avx512f"))) void output_transform4(float* out, const float* mm, int64_t t0,
                                                          const float* bias,
                                                          const Conv2dEpilogue* e,
                                                          const Shape3& s) {
  // Pairs (a0 b0 a1 b1 ..) of two vectors' lanes 0-7 or 8-15, and pairs of such pairs.
  const __m512i pair_idx[2] = {
      _mm512_setr_epi32(0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23),
      _mm512_setr_epi32(8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31)};
  const __m512i quad_lo = _mm512_setr_epi32(0, 1, 16, 17, 2, 3, 18, 19, 4, 5, 20, 21, 6, 7, 22, 23);
  const __m512i quad_hi =
      _mm512_setr_epi32(8, 9, 24, 25, 10, 11, 26, 27, 12, 13, 28, 29, 14, 15, 30, 31);
  const int64_t plane_m = s.outs * s.t_chunk;
  const bool pool = e && e->pool, bn = e && e->center;
  const int64_t ph = s.oh / 2, pw = s.ow / 2;  // pooled plane
  for (int64_t o = 0; o < s.outs; ++o) {
    const __m512 b = _mm512_set1_ps(bias ? bias[o] : 0.0f);
    const __m512 center = _mm512_set1_ps(bn ? e->center[o] : 0.0f);
    const __m512 scale = _mm512_set1_ps(bn ? e->scale[o] : 0.0f);
    const __m512 shift = _mm512_set1_ps(bn ? e->shift[o] : 0.0f);
    for (int64_t gi = 0; gi < groups4(s); ++gi) {
      const Group4 g = group4(s, gi);
      const float* src = mm + o * s.t_chunk + t0 + g.y * s.tx + g.x;
      const __mmask16 load = lanes_mask(g.count);
      __m512 r[4][6];  // A^T M, column by column
      for (int j = 0; j < 6; ++j) {
        __m512 col[6], yv[4];
        for (int i = 0; i < 6; ++i)
          col[i] = _mm512_maskz_expand_ps(g.valid,
                                          _mm512_maskz_loadu_ps(load, src + (i * 6 + j) * plane_m));
        a6(yv, col);
        for (int i = 0; i < 4; ++i) r[i][j] = yv[i];
      }
      __m512 yk[4][4];  // (A^T M A) row i: output column 4 l + k in lane l of yk[i][k]
      for (int i = 0; i < 4; ++i) {
        a6(yk[i], r[i]);
        for (int k = 0; k < 4; ++k) {
          yk[i][k] = _mm512_add_ps(yk[i][k], b);
          if (e) yk[i][k] = bn_relu(yk[i][k], bn, center, scale, shift);
        }
      }
      for (int h = 0; h < 2; ++h) {  // lanes 0-7, then 8-15
        const int64_t y = g.pairs ? g.y + h : g.y, x = g.pairs ? g.x : g.x + 8 * h;
        if (h == 1 && (g.valid >> 8) == 0) break;
        if (pool) {  // tile (y, x + l): pooled rows 2y, 2y + 1, columns 2(x + l), +1
          for (int pi = 0; pi < 2 && 2 * y + pi < ph; ++pi) {
            const __m512 p0 =
                max4(yk[2 * pi][0], yk[2 * pi][1], yk[2 * pi + 1][0], yk[2 * pi + 1][1]);
            const __m512 p1 =
                max4(yk[2 * pi][2], yk[2 * pi][3], yk[2 * pi + 1][2], yk[2 * pi + 1][3]);
            _mm512_mask_storeu_ps(out + (o * ph + 2 * y + pi) * pw + 2 * x,
                                  lanes_mask(std::max<int64_t>(0, pw - 2 * x)),
                                  _mm512_permutex2var_ps(p0, pair_idx[h], p1));
          }
          continue;
        }
        const int64_t cols = s.ow - 4 * x;  // output columns from 4x on
        for (int i = 0; i < 4 && 4 * y + i < s.oh; ++i) {
          float* dst = out + (o * s.oh + 4 * y + i) * s.ow + 4 * x;
          const __m512 p01 = _mm512_permutex2var_ps(yk[i][0], pair_idx[h], yk[i][1]);
          const __m512 p23 = _mm512_permutex2var_ps(yk[i][2], pair_idx[h], yk[i][3]);
          _mm512_mask_storeu_ps(dst, lanes_mask(cols), _mm512_permutex2var_ps(p01, quad_lo, p23));
          _mm512_mask_storeu_ps(dst + 16, lanes_mask(std::max<int64_t>(0, cols - 16)),
                                _mm512_permutex2var_ps(p01, quad_hi, p23));
        }
      }
    }
  }
}

// z[0..5] = G (a, b, c) over the planes: column (a, b, c) of a 3x3 filter, one per plane.
void g6(double* const z[6], const double* a, const double* b, const double* c, int64_t planes) {
  constexpr double k6 = 1.0 / 6, k12 = 1.0 / 12, k24 = 1.0 / 24;
  for (int64_t p = 0; p < planes; ++p) {
    const double even = a[p] * k24 + c[p] * k6, odd = b[p] * k12;
    z[0][p] = a[p] * 0.25;
    z[1][p] = -(a[p] + b[p] + c[p]) * k6;
    z[2][p] = -(a[p] - b[p] + c[p]) * k6;
    z[3][p] = even + odd;
    z[4][p] = even - odd;
    z[5][p] = c[p];
  }
}

// u (36, outs, planes) = G g G^T for every 3x3 filter g of weight (outs, planes, 3, 3), in
// double, rounded once; each output channel's filters at once, as vectors over the planes.
void filter_transform4(float* u, const float* weight, int64_t outs, int64_t planes) {
  thread_local std::vector<double> buffer;
  buffer.resize(static_cast<size_t>((9 + 18 + 36) * planes));
  double* g = buffer.data();    // (9, planes): the filters' values, one row per tap
  double* t = g + 9 * planes;   // (6, 3, planes) = G g
  double* r = t + 18 * planes;  // (6, 6, planes) = G g G^T
  auto row = [planes](double* base, int64_t k) { return base + k * planes; };
  for (int64_t o = 0; o < outs; ++o) {
    for (int64_t c = 0; c < planes; ++c)
      for (int q = 0; q < 9; ++q) g[q * planes + c] = weight[(o * planes + c) * 9 + q];
    for (int j = 0; j < 3; ++j) {  // G g, column j
      double* const z[6] = {row(t, j),     row(t, 3 + j),  row(t, 6 + j),
                            row(t, 9 + j), row(t, 12 + j), row(t, 15 + j)};
      g6(z, row(g, j), row(g, 3 + j), row(g, 6 + j), planes);
    }
    for (int i = 0; i < 6; ++i) {  // (G g) G^T, row i
      double* const z[6] = {row(r, 6 * i),     row(r, 6 * i + 1), row(r, 6 * i + 2),
                            row(r, 6 * i + 3), row(r, 6 * i + 4), row(r, 6 * i + 5)};
      g6(z, row(t, 3 * i), row(t, 3 * i + 1), row(t, 3 * i + 2), planes);
    }
    for (int xi = 0; xi < 36; ++xi)
      for (int64_t c = 0; c < planes; ++c)
        u[(xi * outs + o) * planes + c] = static_cast<float>(r[xi * planes + c]);
  }
}

// G (36, outs, t_chunk) columns [t0, t0 + tiles) = A dY A^T for each 4x4 tile dY of one
// sample's output gradient dy (outs, oh, ow), reading zeros past the output (Group4 lanes).
// A z = (z0, z0 + z1 + z2 + z3, z0 - z1 + z2 - z3, z0 + 2 z1 + 4 z2 + 8 z3,
// z0 - 2 z1 + 4 z2 - 8 z3, z3) down the rows, then likewise along each row.
__attribute__((target("avx512f"))) inline void a6t(__m512 o[6], const __m512 z[4]) {
  const __m512 s02 = _mm512_add_ps(z[0], z[2]), s13 = _mm512_add_ps(z[1], z[3]);
  const __m512 f02 = _mm512_fmadd_ps(_mm512_set1_ps(4.0f), z[2], z[0]);
  const __m512 f13 = _mm512_fmadd_ps(_mm512_set1_ps(8.0f), z[3], _mm512_add_ps(z[1], z[1]));
  o[0] = z[0];
  o[1] = _mm512_add_ps(s02, s13);
  o[2] = _mm512_sub_ps(s02, s13);
  o[3] = _mm512_add_ps(f02, f13);
  o[4] = _mm512_sub_ps(f02, f13);
  o[5] = z[3];
}

__attribute__((target("avx512f"))) void grad_transform4(float* gt, int64_t t0, const float* dy,
                                                        const Shape3& s) {
  const int64_t plane_g = s.outs * s.t_chunk;
  const __m512 zero = _mm512_setzero_ps();
  for (int64_t o = 0; o < s.outs; ++o)
    for (int64_t gi = 0; gi < groups4(s); ++gi) {
      const Group4 g = group4(s, gi);
      const bool has_hi = (g.valid >> 8) != 0;
      __m512 r[4][4];  // the tiles' rows i, columns k
      for (int i = 0; i < 4; ++i) {
        __m512 a[4] = {zero, zero, zero, zero}, b[4] = {zero, zero, zero, zero};
        const int64_t row = 4 * g.y + i, avail = s.ow - 4 * g.x;
        if (row < s.oh) every4(a, 4, dy + (o * s.oh + row) * s.ow + 4 * g.x, avail);
        if (has_hi) {
          const int64_t hi_row = g.pairs ? row + 4 : row, hi_x = g.pairs ? 4 * g.x : 4 * g.x + 32;
          if (hi_row < s.oh) every4(b, 4, dy + (o * s.oh + hi_row) * s.ow + hi_x, s.ow - hi_x);
        }
        for (int k = 0; k < 4; ++k)
          r[i][k] = has_hi ? _mm512_maskz_shuffle_f32x4(0xFFFF, a[k], b[k], _MM_SHUFFLE(1, 0, 1, 0))
                           : a[k];
      }
      __m512 t[6][4];  // A dY, column by column
      for (int k = 0; k < 4; ++k) {
        const __m512 col[4] = {r[0][k], r[1][k], r[2][k], r[3][k]};
        __m512 out[6];
        a6t(out, col);
        for (int i = 0; i < 6; ++i) t[i][k] = out[i];
      }
      float* dst = gt + o * s.t_chunk + t0 + g.y * s.tx + g.x;
      const __mmask16 store = lanes_mask(g.count);
      for (int i = 0; i < 6; ++i) {  // (A dY) A^T, row by row
        __m512 out[6];
        a6t(out, t[i]);
        for (int j = 0; j < 6; ++j)
          _mm512_mask_storeu_ps(dst + (i * 6 + j) * plane_g, store,
                                _mm512_maskz_compress_ps(g.valid, out[j]));
      }
    }
}

// d_weight (outs, planes, 3, 3) += G^T du G for each filter's du (36, outs, planes), in
// double, rounded once.
void filter_grad_transform4(float* d_weight, const float* du, int64_t outs, int64_t planes) {
  auto gt3 = [](double o[3], const double z[6]) {  // G^T z
    constexpr double k6 = 1.0 / 6, k12 = 1.0 / 12, k24 = 1.0 / 24;
    o[0] = z[0] * 0.25 - (z[1] + z[2]) * k6 + (z[3] + z[4]) * k24;
    o[1] = (z[2] - z[1]) * k6 + (z[3] - z[4]) * k12;
    o[2] = (z[3] + z[4] - z[1] - z[2]) * k6 + z[5];
  };
  const int64_t stride = outs * planes;
  for (int64_t o = 0; o < outs; ++o)
    for (int64_t c = 0; c < planes; ++c) {
      const float* u = du + o * planes + c;
      double t[3][6];  // G^T du
      for (int j = 0; j < 6; ++j) {
        double col[6], r[3];
        for (int i = 0; i < 6; ++i) col[i] = u[(i * 6 + j) * stride];
        gt3(r, col);
        for (int i = 0; i < 3; ++i) t[i][j] = r[i];
      }
      float* g = d_weight + (o * planes + c) * 9;
      for (int i = 0; i < 3; ++i) {  // (G^T du) G
        double r[3];
        gt3(r, t[i]);
        for (int j = 0; j < 3; ++j) g[i * 3 + j] += static_cast<float>(r[j]);
      }
    }
}

// One chunk of samples [s0, s0 + count): transforms and the products, one per position.
void run_chunk(float* out, const float* in, const float* u, const float* bias,
               const Conv2dEpilogue* e, int64_t s0, int64_t count, bool parallel_products,
               const Shape3& s) {
  float* xp = scratch(kPlanes, s.planes * s.hp * s.wp);
  float* v = scratch(kV, s.positions * s.planes * s.t_chunk);  // (positions, planes, t_chunk)
  float* mm = scratch(kM, s.positions * s.outs * s.t_chunk);   // (positions, outs, t_chunk)
  const int64_t t_used = count * s.tiles;
  for (int64_t k = 0; k < count; ++k) {
    pad_sample(xp, in + (s0 + k) * s.planes * s.h * s.w, s);
    s.m == 4 ? input_transform4(v, k * s.tiles, xp, s) : input_transform(v, k * s.tiles, xp, s);
  }
  for (int xi = 0; xi < s.positions; ++xi) {
    const GemmArgs g{.m = s.outs,
                     .n = t_used,
                     .k = s.planes,
                     .a = u + xi * s.outs * s.planes,
                     .lda = s.planes,
                     .b = v + xi * s.planes * s.t_chunk,
                     .ldb = s.t_chunk,
                     .c = mm + xi * s.outs * s.t_chunk,
                     .ldc = s.t_chunk};
    parallel_products ? gemm_parallel(g) : gemm(g);
  }
  const int64_t out_size = s.outs * (e && e->pool ? (s.oh / 2) * (s.ow / 2) : s.oh * s.ow);
  for (int64_t k = 0; k < count; ++k) {
    float* dst = out + (s0 + k) * out_size;
    s.m == 4 ? output_transform4(dst, mm, k * s.tiles, bias, e, s)
             : output_transform(dst, mm, k * s.tiles, bias, e, s);
  }
}

void run(float* out, const float* in, const float* weight, const float* bias,
         const Conv2dEpilogue* e, const Shape3& s) {
  float* u = scratch(kU, s.positions * s.outs * s.planes);
  s.m == 4 ? filter_transform4(u, weight, s.outs, s.planes)
           : filter_transform(u, weight, s.outs, s.planes);
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

// The weight gradient's chunks [q0, q1) summed into du (16, outs, planes): per chunk the
// input and output-gradient transforms, then dU_xi += (A dY A^T)_xi * V_xi^T.
void weight_grad_chunks(float* du, const float* d_out, const float* in, int64_t q0, int64_t q1,
                        bool parallel_products, const Shape3& s) {
  float* xp = scratch(kPlanes, s.planes * s.hp * s.wp);
  float* v = scratch(kV, s.positions * s.planes * s.t_chunk);  // (positions, planes, t_chunk)
  float* gt = scratch(kM, s.positions * s.outs * s.t_chunk);   // (positions, outs, t_chunk)
  for (int64_t q = q0; q < q1; ++q) {
    const int64_t s0 = q * s.chunk, count = std::min(s.chunk, s.n - s0);
    for (int64_t k = 0; k < count; ++k) {
      pad_sample(xp, in + (s0 + k) * s.planes * s.h * s.w, s);
      const float* dy = d_out + (s0 + k) * s.outs * s.oh * s.ow;
      if (s.m == 4) {
        input_transform4(v, k * s.tiles, xp, s);
        grad_transform4(gt, k * s.tiles, dy, s);
      } else {
        input_transform(v, k * s.tiles, xp, s);
        grad_transform(gt, k * s.tiles, dy, s);
      }
    }
    for (int xi = 0; xi < s.positions; ++xi) {
      const GemmArgs g{.trans_b = true,
                       .m = s.outs,
                       .n = s.planes,
                       .k = count * s.tiles,
                       .a = gt + xi * s.outs * s.t_chunk,
                       .lda = s.t_chunk,
                       .b = v + xi * s.planes * s.t_chunk,
                       .ldb = s.t_chunk,
                       .beta = q == q0 ? 0.0f : 1.0f,
                       .c = du + xi * s.outs * s.planes,
                       .ldc = s.planes};
      parallel_products ? gemm_parallel(g) : gemm(g);
    }
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

// The forward's chunks: at least 96 tiles of 4x4 (two 28x28 samples) or 192 of 2x2.
Shape3 run_shape(int64_t n, int64_t planes, int64_t h, int64_t w, int64_t pad, int64_t outs) {
  const int64_t m = tile_size(w + 2 * pad - 2);
  return Shape3(n, planes, h, w, pad, outs, m, m == 4 ? 96 : 192);
}

}  // namespace

bool conv2d_winograd_ok(const Conv2dDims& d) { return winograd_pays(d, d.oh, d.ow); }

bool conv2d_winograd_input_grad_ok(const Conv2dDims& d) {
  return d.padding <= 2 && winograd_pays(d, d.h, d.w);
}

void conv2d_winograd_forward(float* out, const float* in, const float* weight, const float* bias,
                             const Conv2dDims& d, const Conv2dEpilogue* e) {
  run(out, in, weight, bias, e, run_shape(d.n, d.c, d.h, d.w, d.padding, d.oc));
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
  run(d_in, d_out, flipped, nullptr, nullptr, run_shape(d.n, d.oc, d.oh, d.ow, 2 - d.padding, d.c));
}

void conv2d_winograd_weight_grad(float* d_weight, const float* d_out, const float* in,
                                 const Conv2dDims& d) {
  // Longer chunks than the forward's: here the tiles are the products' sum (K).
  const int64_t m = tile_size(d.ow);
  const Shape3 s(d.n, d.c, d.h, d.w, d.padding, d.oc, m, m == 4 ? 96 : 384);
  const int64_t chunks = (s.n + s.chunk - 1) / s.chunk, groups = std::min<int64_t>(chunks, 8);
  const int64_t du_size = s.positions * s.outs * s.planes;
  float* sums = scratch(kGroupSums, groups * du_size);  // (groups, positions, outs, planes)
  auto group = [&](int64_t i, bool parallel_products) {
    weight_grad_chunks(sums + i * du_size, d_out, in, i * chunks / groups,
                       (i + 1) * chunks / groups, parallel_products, s);
  };
  if (groups >= num_threads()) {
    parallel_for(groups, [&](int64_t begin, int64_t end) {
      for (int64_t i = begin; i < end; ++i) group(i, false);
    });
  } else {
    for (int64_t i = 0; i < groups; ++i) group(i, true);
  }
  for (int64_t i = 1; i < groups; ++i)
    for (int64_t e = 0; e < du_size; ++e) sums[e] += sums[i * du_size + e];
  s.m == 4 ? filter_grad_transform4(d_weight, sums, s.outs, s.planes)
           : filter_grad_transform(d_weight, sums, s.outs, s.planes);
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

}  // namespace scratchnet

#endif
