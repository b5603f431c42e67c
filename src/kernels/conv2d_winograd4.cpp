// Winograd F(4x4, 3x3)'s transforms: 4x4 output tiles from 6x6 patches, 36 products, 4 times
// fewer multiplications than the direct sum (conv2d_winograd.cpp runs the passes). Points 0,
// 1, -1, 2, -2 (Lavin and Gray):
//   B^T = [4 0 -5 0 1 0; 0 -4 -4 1 1 0; 0 4 -4 -1 1 0; 0 -2 -1 2 1 0; 0 2 -1 -2 1 0;
//          0 4 0 -5 0 1],
//   G = [1/4 0 0; -1/6 -1/6 -1/6; -1/6 1/6 -1/6; 1/24 1/12 1/6; 1/24 -1/12 1/6; 0 0 1],
//   A^T = [1 1 1 1 1 0; 0 1 -1 2 -2 0; 0 1 1 4 4 0; 0 1 -1 8 -8 1].
// The transforms hold 16 tiles per vector: 8 tiles of a tile row in lanes 0-7, and in lanes
// 8-15 the next 8 of the row or, for rows of at most 8 tiles, the same tiles of the next tile
// row; in memory (V, M and G columns) a vector's tiles follow one another, so the loads pack
// the upper tiles right after the lower ones (rows of 7 tiles, 28 outputs, fill 14 lanes).
// The loops over a transform's rows and columns are unrolled (the pragmas), which lets the
// compiler keep most of its 36 vectors in registers.
#if defined(__x86_64__) || defined(_M_X64)

#include <vector>

#include "conv2d_winograd.h"

namespace scratchnet::winograd {

namespace {

// Where a vector's tiles are: `lower` tiles from tile (y, x) on, then `upper` tiles from
// tile (y + 1, x) (`pairs`: rows of at most 8 tiles) or (y, x + 8) on; together the
// columns y * tx + x .. + count - 1 of V, M and G.
struct Group4 {
  int64_t y, x;
  bool pairs;
  int lower, upper, count;
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
  return Group4{y,
                x,
                pairs,
                static_cast<int>(lower),
                static_cast<int>(upper),
                static_cast<int>(lower + upper)};
}

// Indices for _mm512_permutex2var_ps(a, idx, b) giving lanes 0 .. lower - 1 of a, then lanes
// 0, 1, .. of b: a group's lower and upper tiles side by side.
__attribute__((target("avx512f"))) inline __m512i pack_index(int lower) {
  const __m512i lane = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
  const __mmask16 from_b = static_cast<__mmask16>(~lanes_mask(lower));
  return _mm512_mask_add_epi32(lane, from_b, lane, _mm512_set1_epi32(16 - lower));
}

// out[j] for j < count (at most 4): columns j .. j + 28 step 4 of the 32 floats at `row`
// in lanes 0-7; the lanes outside m0 (of row[0, 16)) and m1 (of row[16, 32)) read as 0 and
// are not read.
__attribute__((target("avx512f"), always_inline)) inline void every4_masked(__m512* out, int count,
                                                                            const float* row,
                                                                            __mmask16 m0,
                                                                            __mmask16 m1) {
  const __m512i idx = _mm512_setr_epi32(0, 4, 8, 12, 16, 20, 24, 28, 0, 4, 8, 12, 16, 20, 24, 28);
  const __m512 q0 = _mm512_maskz_loadu_ps(m0, row);
  const __m512 q1 = _mm512_maskz_loadu_ps(m1, row + 16);
  for (int j = 0; j < count; ++j)
    out[j] = _mm512_permutex2var_ps(q0, _mm512_add_epi32(idx, _mm512_set1_epi32(j)), q1);
}

// every4_masked with the floats from `avail` on read as 0.
__attribute__((target("avx512f"))) inline void every4(__m512* out, int count, const float* row,
                                                      int64_t avail) {
  every4_masked(out, count, row, lanes_mask(std::max<int64_t>(0, avail)),
                lanes_mask(std::max<int64_t>(0, avail - 16)));
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

// Indices for _mm512_permutex2var_ps(a, idx, b) giving pairs of pairs a0 a1 b0 b1 a2 a3 b2 b3
// .. of lanes 0-7 (half 0) or 8-15 (half 1): from two vectors of interleaved pairs, runs of 4.
__attribute__((target("avx512f"))) inline __m512i quad_index(int half) {
  return _mm512_add_epi32(_mm512_setr_epi32(0, 1, 16, 17, 2, 3, 18, 19, 4, 5, 20, 21, 6, 7, 22, 23),
                          _mm512_set1_epi32(8 * half));
}

// Lanes 12-15 of b, then lanes 0-11 of a: the 32 floats b, a moved 4 places up.
__attribute__((target("avx512f"))) inline __m512 up4(__m512 a, __m512 b) {
  return _mm512_castsi512_ps(
      _mm512_maskz_alignr_epi32(0xFFFF, _mm512_castps_si512(a), _mm512_castps_si512(b), 12));
}

}  // namespace

// The masks of patch_row's loads for patches from column c0 of rows w wide (c0 < 0 in the
// padding): the row's columns among the 32 floats from c0 and the 32 from c0 + 4.
struct PatchMasks {
  __mmask16 m[4];
};

inline PatchMasks patch_masks(int64_t c0, int64_t w) {
  const auto on_row = [&](int64_t from) {
    return static_cast<__mmask16>(lanes_mask(std::max<int64_t>(0, w - c0 - from)) &
                                  ~lanes_mask(std::max<int64_t>(0, -c0 - from)));
  };
  return {{on_row(0), on_row(16), on_row(4), on_row(20)}};
}

// out[j] = patch column j of the 8 tiles whose patches start at column c0 of row r of the
// plane (h, w) x_plane (masks: patch_masks(c0, w)), zeros outside it (the padding).
__attribute__((target("avx512f"), always_inline)) inline void patch_row(__m512 out[6],
                                                                        const float* x_plane,
                                                                        int64_t r, int64_t c0,
                                                                        const PatchMasks& pm,
                                                                        const Shape3& s) {
  if (r < 0 || r >= s.h) {
    for (int j = 0; j < 6; ++j) out[j] = _mm512_setzero_ps();
    return;
  }
  const float* row = x_plane + r * s.w + c0;
  every4_masked(out, 4, row, pm.m[0], pm.m[1]);
  every4_masked(out + 4, 2, row + 4, pm.m[2], pm.m[3]);
}

// V (36, planes, t_chunk) columns [t0, t0 + tiles) for one sample x (planes, h, w), read in
// place: patches reaching into the padding take zeros there (Group4 lanes). The rows the
// next row pair reaches first are asked for ahead: they come from memory.
__attribute__((target("avx512f"))) void input_transform4(float* v, int64_t t0, const float* x,
                                                         const Shape3& s) {
  const int64_t plane_v = s.planes * s.t_chunk, plane = s.h * s.w;
  for (int64_t c = 0; c < s.planes; ++c)
    for (int64_t gi = 0; gi < groups4(s); ++gi) {
      const Group4 g = group4(s, gi);
      const float* x_plane = x + c * plane;
      if (g.pairs)
        simd::prefetch_ahead(x_plane, c + 1 < s.planes ? x_plane + plane : nullptr,
                             std::max<int64_t>(0, 4 * g.y + 10 - s.pad) * s.w, 8 * s.w, plane);
      const int64_t r_lo = 4 * g.y - s.pad, c_lo = 4 * g.x - s.pad;  // patch (0, 0) in x
      const int64_t r_hi = g.pairs ? r_lo + 4 : r_lo, c_hi = g.pairs ? c_lo : c_lo + 32;
      const bool has_hi = g.upper > 0;
      const __m512i pack = pack_index(g.lower);
      const PatchMasks m_lo = patch_masks(c_lo, s.w), m_hi = patch_masks(c_hi, s.w);
      __m512 d[6][6];
#pragma GCC unroll 6
      for (int i = 0; i < 6; ++i) {
        __m512 a[6], b[6];  // patch columns 0-5 of the tiles in lanes 0-7 of a, of b
        patch_row(a, x_plane, r_lo + i, c_lo, m_lo, s);
        if (has_hi) patch_row(b, x_plane, r_hi + i, c_hi, m_hi, s);
        for (int j = 0; j < 6; ++j)
          d[i][j] = has_hi ? _mm512_permutex2var_ps(a[j], pack, b[j]) : a[j];
      }
      __m512 t[6][6];  // B^T d, column by column
#pragma GCC unroll 6
      for (int j = 0; j < 6; ++j) {
        const __m512 col[6] = {d[0][j], d[1][j], d[2][j], d[3][j], d[4][j], d[5][j]};
        __m512 o[6];
        b6(o, col);
        for (int i = 0; i < 6; ++i) t[i][j] = o[i];
      }
      float* dst = v + c * s.t_chunk + t0 + g.y * s.tx + g.x;
      const __mmask16 store = lanes_mask(g.count);
#pragma GCC unroll 6
      for (int i = 0; i < 6; ++i) {  // (B^T d) B, row by row
        __m512 o[6];
        b6(o, t[i]);
        for (int j = 0; j < 6; ++j) _mm512_mask_storeu_ps(dst + (i * 6 + j) * plane_v, store, o[j]);
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
  // Pairs (a0 b0 a1 b1 ..) of two vectors' lanes 0-7 (from lane `lower` on for the upper
  // tiles), and pairs of such pairs.
  const __m512i pair_idx = interleave_index(0), quad_lo = quad_index(0), quad_hi = quad_index(1);
  const int64_t plane_m = s.outs * s.t_chunk;
  const bool pool = e && e->pool;
  const int64_t ph = s.oh / 2, pw = s.ow / 2;  // pooled plane
  for (int64_t o = 0; o < s.outs; ++o) {
    const ChannelEpilogue ce = channel_epilogue(bias, e, o);
    for (int64_t gi = 0; gi < groups4(s); ++gi) {
      const Group4 g = group4(s, gi);
      const float* src = mm + o * s.t_chunk + t0 + g.y * s.tx + g.x;
      const __mmask16 load = lanes_mask(g.count);
      if (g.pairs && !pool) {  // the next row pair's rows (of this plane or the next), to write
        const int64_t plane = s.oh * s.ow;
        simd::prefetch_ahead<true>(out + o * plane,
                                   o + 1 < s.outs ? out + (o + 1) * plane : nullptr,
                                   4 * (g.y + 2) * s.ow, 8 * s.ow, plane);
      }
      __m512 r[4][6];  // A^T M
      a6_columns(r, src, plane_m, load);
      __m512 yk[4][4];  // (A^T M A) row i: output column 4 l + k in lane l of yk[i][k]
#pragma GCC unroll 4
      for (int i = 0; i < 4; ++i) {
        a6(yk[i], r[i]);
        for (int k = 0; k < 4; ++k) yk[i][k] = finish(yk[i][k], ce);
      }
      for (int h = 0; h < 2; ++h) {  // the lower tiles, then the upper ones
        const int64_t y = g.pairs ? g.y + h : g.y, x = g.pairs ? g.x : g.x + 8 * h;
        if (h == 1 && g.upper == 0) break;
        const __m512i pairs =
            h == 0 ? pair_idx : _mm512_add_epi32(pair_idx, _mm512_set1_epi32(g.lower));
        if (pool) {  // tile (y, x + l): pooled rows 2y, 2y + 1, columns 2(x + l), +1
          for (int pi = 0; pi < 2 && 2 * y + pi < ph; ++pi) {
            const __m512 p0 =
                max4(yk[2 * pi][0], yk[2 * pi][1], yk[2 * pi + 1][0], yk[2 * pi + 1][1]);
            const __m512 p1 =
                max4(yk[2 * pi][2], yk[2 * pi][3], yk[2 * pi + 1][2], yk[2 * pi + 1][3]);
            _mm512_mask_storeu_ps(out + (o * ph + 2 * y + pi) * pw + 2 * x,
                                  lanes_mask(std::max<int64_t>(0, pw - 2 * x)),
                                  _mm512_permutex2var_ps(p0, pairs, p1));
          }
          continue;
        }
        const int64_t cols = s.ow - 4 * x;  // output columns from 4x on
        for (int i = 0; i < 4 && 4 * y + i < s.oh; ++i) {
          float* dst = out + (o * s.oh + 4 * y + i) * s.ow + 4 * x;
          const __m512 p01 = _mm512_permutex2var_ps(yk[i][0], pairs, yk[i][1]);
          const __m512 p23 = _mm512_permutex2var_ps(yk[i][2], pairs, yk[i][3]);
          _mm512_mask_storeu_ps(dst, lanes_mask(cols), _mm512_permutex2var_ps(p01, quad_lo, p23));
          _mm512_mask_storeu_ps(dst + 16, lanes_mask(std::max<int64_t>(0, cols - 16)),
                                _mm512_permutex2var_ps(p01, quad_hi, p23));
        }
      }
    }
  }
}

__attribute__((target("avx512f"))) void input_grad_transform4(float* dx, const float* p, int64_t t0,
                                                              const float* relu_x,
                                                              const Shape3& s) {
  const __m512i pair_idx = interleave_index(0), quad_lo = quad_index(0), quad_hi = quad_index(1);
  const __m512 zero = _mm512_setzero_ps();
  const int64_t plane_p = s.planes * s.t_chunk;
  // With row pairs (groups4) the tile rows come in order, and patch rows 4-5 of one are patch
  // rows 0-1 of the next: those rows' sums go on to the next tile row in `carry` (whole-vector
  // stores and loads, which the store buffer forwards) instead of through dx (a masked load
  // of what a masked store just wrote waits for the store to reach the cache).
  alignas(64) float carry[2][3][16];
  for (int64_t c = 0; c < s.planes; ++c)
    for (int64_t gi = 0; gi < groups4(s); ++gi) {
      const Group4 g = group4(s, gi);
      const float* src = p + c * s.t_chunk + t0 + g.y * s.tx + g.x;
      const __mmask16 load = lanes_mask(g.count);
      if (g.pairs) {  // the rows the next row pair reaches first, of dx and x (from memory)
        const int64_t plane = s.h * s.w, next = c + 1 < s.planes ? (c + 1) * plane : -1;
        const int64_t at = std::max<int64_t>(0, 4 * g.y + 9 - s.pad) * s.w;
        simd::prefetch_ahead<true>(dx + c * plane, next < 0 ? nullptr : dx + next, at, 8 * s.w,
                                   plane);
        if (relu_x)
          simd::prefetch_ahead(relu_x + c * plane, next < 0 ? nullptr : relu_x + next, at, 8 * s.w,
                               plane);
      }
      __m512 t[6][6];  // B dV, column by column
#pragma GCC unroll 6
      for (int j = 0; j < 6; ++j) {
        __m512 col[6], o[6];
        for (int i = 0; i < 6; ++i)
          col[i] = _mm512_maskz_loadu_ps(load, src + (i * 6 + j) * plane_p);
        b6t(o, col);
        for (int i = 0; i < 6; ++i) t[i][j] = o[i];
      }
      __m512 z[6][6];  // (B dV) B^T, row by row: patch column j of the tiles in z[i][j]
#pragma GCC unroll 6
      for (int i = 0; i < 6; ++i) b6t(z[i], t[i]);
      for (int h = 0; h < 2; ++h) {  // the lower tiles, then the upper ones
        const int64_t y = g.pairs ? g.y + h : g.y, x = g.pairs ? g.x : g.x + 8 * h;
        const int tiles = h == 0 ? g.lower : g.upper;
        if (tiles == 0) break;
        const __m512i pairs =
            h == 0 ? pair_idx : _mm512_add_epi32(pair_idx, _mm512_set1_epi32(g.lower));
        // Per patch row: columns 0-3 of tile l at 4 l .. 4 l + 3, columns 4-5 at 4 l + 4, + 5
        // (the next tile's first two), added in registers; 4 tiles + 2 columns in all.
        const int cols = 4 * tiles + 2;
        const __mmask16 own_lo = lanes_mask(4 * tiles),
                        own_hi = lanes_mask(std::max(0, 4 * tiles - 16));
        for (int i = 0; i < 6; ++i) {
          const __m512 p01 = _mm512_permutex2var_ps(z[i][0], pairs, z[i][1]);
          const __m512 p23 = _mm512_permutex2var_ps(z[i][2], pairs, z[i][3]);
          const __m512 p45 = _mm512_permutex2var_ps(z[i][4], pairs, z[i][5]);
          const __m512 lo = _mm512_maskz_permutex2var_ps(own_lo, p01, quad_lo, p23);
          const __m512 hi = _mm512_maskz_permutex2var_ps(own_hi, p01, quad_hi, p23);
          const __m512 s_lo = _mm512_maskz_permutex2var_ps(own_lo, p45, quad_lo, zero);
          const __m512 s_hi = _mm512_maskz_permutex2var_ps(own_hi, p45, quad_hi, zero);
          const __m512 v[3] = {_mm512_add_ps(lo, up4(s_lo, zero)),
                               _mm512_add_ps(hi, up4(s_hi, s_lo)), up4(zero, s_hi)};
          // Patch row i is row r of dx; its columns from c0 on (those outside the plane, in
          // the padding, are masked). What an earlier patch wrote there is added to: the whole
          // row for patch rows 0-1 below the first tile row, else the first two columns when
          // the tiles to the left came first.
          const int64_t r = 4 * y + i - s.pad, c0 = 4 * x - s.pad;
          if (r < 0 || r >= s.h) continue;
          const bool whole = i < 2 && y > 0, left = x > 0;
          const bool carried = g.pairs && whole, carry_on = g.pairs && i >= 4 && y + 1 < s.ty;
          float* row = dx + (c * s.h + r) * s.w + c0;
          const float* x_row = relu_x ? relu_x + (c * s.h + r) * s.w + c0 : nullptr;
          const int64_t end = std::min<int64_t>(cols, s.w - c0);  // past the plane's columns
          for (int k = 0; k < 3 && 16 * k < end; ++k) {
            const __mmask16 m =
                lanes_mask(end - 16 * k) & ~lanes_mask(std::max<int64_t>(0, -c0 - 16 * k));
            const __mmask16 earlier = whole ? m : (k == 0 && left ? m & 0x3 : 0);
            // No load where nothing was written yet: a fully masked load still waits for its
            // cache line, and the row's first store is the line's first touch in the chunk.
            const __m512 before = carried   ? _mm512_load_ps(carry[i][k])
                                  : earlier ? _mm512_maskz_loadu_ps(earlier, row + 16 * k)
                                            : zero;
            __m512 sum = _mm512_add_ps(before, v[k]);
            if (x_row)  // zero where x <= 0 (or NaN), at every store: the last one's is final
              sum = _mm512_maskz_mov_ps(
                  _mm512_cmp_ps_mask(_mm512_maskz_loadu_ps(m, x_row + 16 * k), zero, _CMP_GT_OQ),
                  sum);
            if (carry_on)  // as dx would give it back: lanes outside m read as 0
              _mm512_store_ps(carry[i - 4][k], _mm512_maskz_mov_ps(m, sum));
            else
              _mm512_mask_storeu_ps(row + 16 * k, m, sum);
          }
        }
      }
    }
}

// u (36, planes, outs) = G g G^T for the 3x3 filters g of weight (outs, planes, 3, 3) of
// output channels [o0, o1), in double, rounded once; each output channel's filters at once,
// as vectors over the planes.
void filter_transform4(float* u, const float* weight, int64_t outs, int64_t planes, int64_t o0,
                       int64_t o1) {
  thread_local std::vector<double> buffer;
  buffer.resize(static_cast<size_t>((9 + 18 + 36) * planes));
  double* g = buffer.data();    // (9, planes): the filters' values, one row per tap
  double* t = g + 9 * planes;   // (6, 3, planes) = G g
  double* r = t + 18 * planes;  // (6, 6, planes) = G g G^T
  auto row = [planes](double* base, int64_t k) { return base + k * planes; };
  for (int64_t o = o0; o < o1; ++o) {
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
        u[(xi * planes + c) * outs + o] = static_cast<float>(r[xi * planes + c]);
  }
}

// G (36, outs, t_chunk) columns [t0, t0 + tiles) = A dY A^T for each 4x4 tile dY of one
// sample's output gradient dy (outs, oh, ow), reading zeros past the output (Group4 lanes):
// a6t down the columns of each tile, then along its rows.
__attribute__((target("avx512f"))) void grad_transform4(float* gt, int64_t t0, const float* dy,
                                                        const Shape3& s) {
  const int64_t plane_g = s.outs * s.t_chunk;
  const __m512 zero = _mm512_setzero_ps();
  for (int64_t o = 0; o < s.outs; ++o)
    for (int64_t gi = 0; gi < groups4(s); ++gi) {
      const Group4 g = group4(s, gi);
      const bool has_hi = g.upper > 0;
      const __m512i pack = pack_index(g.lower);
      __m512 r[4][4];  // the tiles' rows i, columns k
#pragma GCC unroll 4
      for (int i = 0; i < 4; ++i) {
        __m512 a[4] = {zero, zero, zero, zero}, b[4] = {zero, zero, zero, zero};
        const int64_t row = 4 * g.y + i, avail = s.ow - 4 * g.x;
        if (row < s.oh) every4(a, 4, dy + (o * s.oh + row) * s.ow + 4 * g.x, avail);
        if (has_hi) {
          const int64_t hi_row = g.pairs ? row + 4 : row, hi_x = g.pairs ? 4 * g.x : 4 * g.x + 32;
          if (hi_row < s.oh) every4(b, 4, dy + (o * s.oh + hi_row) * s.ow + hi_x, s.ow - hi_x);
        }
        for (int k = 0; k < 4; ++k)
          r[i][k] = has_hi ? _mm512_permutex2var_ps(a[k], pack, b[k]) : a[k];
      }
      __m512 t[6][4];  // A dY, column by column
#pragma GCC unroll 4
      for (int k = 0; k < 4; ++k) {
        const __m512 col[4] = {r[0][k], r[1][k], r[2][k], r[3][k]};
        __m512 out[6];
        a6t(out, col);
        for (int i = 0; i < 6; ++i) t[i][k] = out[i];
      }
      float* dst = gt + o * s.t_chunk + t0 + g.y * s.tx + g.x;
      const __mmask16 store = lanes_mask(g.count);
#pragma GCC unroll 6
      for (int i = 0; i < 6; ++i) {  // (A dY) A^T, row by row
        __m512 out[6];
        a6t(out, t[i]);
        for (int j = 0; j < 6; ++j)
          _mm512_mask_storeu_ps(dst + (i * 6 + j) * plane_g, store, out[j]);
      }
    }
}

__attribute__((target("avx512f"))) void tile_sums4(float* sums, const float* gt, int64_t tiles,
                                                   bool first, const Shape3& s) {
  const float* g7 = gt + 7 * s.outs * s.t_chunk;
  for (int64_t o = 0; o < s.outs; ++o) {
    __m512 acc = _mm512_setzero_ps();
    for (int64_t t = 0; t < tiles; t += kLanes)
      acc =
          _mm512_add_ps(acc, _mm512_maskz_loadu_ps(lanes_mask(tiles - t), g7 + o * s.t_chunk + t));
    const float total = simd::sum_lanes(acc);
    sums[o] = first ? total : sums[o] + total;
  }
}

// d_weight (outs, planes, 3, 3) += G^T du G for each filter's du (36, outs, planes), output
// channels [o0, o1), in double, rounded once.
void filter_grad_transform4(float* d_weight, const float* du, int64_t outs, int64_t planes,
                            int64_t o0, int64_t o1) {
  auto gt3 = [](double o[3], const double z[6]) {  // G^T z
    constexpr double k6 = 1.0 / 6, k12 = 1.0 / 12, k24 = 1.0 / 24;
    o[0] = z[0] * 0.25 - (z[1] + z[2]) * k6 + (z[3] + z[4]) * k24;
    o[1] = (z[2] - z[1]) * k6 + (z[3] - z[4]) * k12;
    o[2] = (z[3] + z[4] - z[1] - z[2]) * k6 + z[5];
  };
  const int64_t stride = outs * planes;
  for (int64_t o = o0; o < o1; ++o)
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

}  // namespace scratchnet::winograd

#endif
