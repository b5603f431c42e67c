// AVX-512 gemm kernels: 8 x 48 tiles (24 zmm accumulators), a column kernel for narrow last
// panels, 16 x 16 transposes for packing, and the dot-product path for few rows. Compiled with
// -mavx512f -mavx512vl -mavx512bw -mavx512dq -mfma; only called after the CPU reported those sets.
#include "gemm_kernels.h"

#if defined(__x86_64__) || defined(_M_X64)

#include <immintrin.h>

#include "scratch.h"
#include "transpose_avx512.h"

namespace scratchnet::gemm_detail {

namespace {

using simd::lanes_mask;
using simd::shuffle128;
using simd::sum_lanes;
using simd::transpose16;

constexpr int kMr = 8;   // rows of c per tile
constexpr int kNr = 48;  // columns of c per tile: three zmm vectors

constexpr __mmask16 kAll = 0xFFFF;

int64_t min64(int64_t x, int64_t y) { return x < y ? x : y; }

// c = beta * c + acc in the lanes of mask; beta = 0 stores without reading c.
inline void store_vec(float* c, __m512 acc, __mmask16 mask, float beta) {
  if (beta == 0.0f) {
    _mm512_mask_storeu_ps(c, mask, acc);
  } else if (beta == 1.0f) {
    _mm512_mask_storeu_ps(c, mask, _mm512_add_ps(_mm512_maskz_loadu_ps(mask, c), acc));
  } else {
    const __m512 old = _mm512_maskz_loadu_ps(mask, c);
    _mm512_mask_storeu_ps(c, mask, _mm512_fmadd_ps(old, _mm512_set1_ps(beta), acc));
  }
}

// c (R, cols) = beta * c + A (R, kc) * B (kc, cols), cols in (16 (V - 1), 16 V], p in order.
// kPacked: A(i, p) = a[p * kMr + i]; otherwise A(i, p) = a[i * lda + p].
// B(p, j) = b[p * b_rs + j]; lanes of the last vector outside `last` are neither read nor
// written.
template <int R, int V, bool kPacked>
void tile(int64_t kc, const float* a, int64_t lda, const float* b, int64_t b_rs, __mmask16 last,
          float* c, int64_t ldc, float beta) {
  // Fully unrolled small loops (the pragmas) let the compiler keep acc in registers.
  __m512 acc[R][V];
#pragma GCC unroll 8
  for (int i = 0; i < R; ++i)
#pragma GCC unroll 3
    for (int v = 0; v < V; ++v) acc[i][v] = _mm512_setzero_ps();
  const float* row[R];
#pragma GCC unroll 8
  for (int i = 0; i < R; ++i) {
    row[i] = kPacked ? a + i : a + i * lda;
    _mm_prefetch(reinterpret_cast<const char*>(c + i * ldc), _MM_HINT_T0);
  }
  const int64_t a_step = kPacked ? kMr : 1;
#pragma GCC unroll 4
  for (int64_t p = 0; p < kc; ++p) {
    const __m512 b0 = V == 1 ? _mm512_maskz_loadu_ps(last, b) : _mm512_loadu_ps(b);
    const __m512 b1 = V == 2   ? _mm512_maskz_loadu_ps(last, b + 16)
                      : V == 3 ? _mm512_loadu_ps(b + 16)
                               : b0;
    const __m512 b2 = V == 3 ? _mm512_maskz_loadu_ps(last, b + 32) : b0;
#pragma GCC unroll 8
    for (int i = 0; i < R; ++i) {
      const __m512 av = _mm512_set1_ps(row[i][p * a_step]);
      acc[i][0] = _mm512_fmadd_ps(av, b0, acc[i][0]);
      if constexpr (V >= 2) acc[i][1] = _mm512_fmadd_ps(av, b1, acc[i][1]);
      if constexpr (V >= 3) acc[i][2] = _mm512_fmadd_ps(av, b2, acc[i][2]);
    }
    b += b_rs;
  }
#pragma GCC unroll 8
  for (int i = 0; i < R; ++i)
#pragma GCC unroll 3
    for (int v = 0; v < V; ++v)
      store_vec(c + i * ldc + v * 16, acc[i][v], v == V - 1 ? last : kAll, beta);
}

// One slice of R rows of the block (c at c) against all its column panels.
template <int R, bool kPacked>
void slice(const Block& k, const float* a, float* c) {
  for (int64_t j0 = 0; j0 < k.n; j0 += kNr) {
    const float* b = k.b + (j0 / kNr) * k.b_panel;
    const int64_t cols = min64(kNr, k.n - j0);
    if (cols > 32)
      tile<R, 3, kPacked>(k.kc, a, k.lda, b, k.b_rs, lanes_mask(cols - 32), c + j0, k.ldc, k.beta);
    else if (cols > 16)
      tile<R, 2, kPacked>(k.kc, a, k.lda, b, k.b_rs, lanes_mask(cols - 16), c + j0, k.ldc, k.beta);
    else
      tile<R, 1, kPacked>(k.kc, a, k.lda, b, k.b_rs, lanes_mask(cols), c + j0, k.ldc, k.beta);
  }
}

// Copies A(i, p) = a[p * lda + i], i < R, into buf[p * kMr + i].
template <int R>
void pack_a_slice(float* buf, const float* a, int64_t lda, int64_t kc) {
  const __mmask16 mask = lanes_mask(R);
  for (int64_t p = 0; p < kc; ++p)
    _mm256_mask_storeu_ps(buf + p * kMr, static_cast<__mmask8>(mask),
                          _mm256_maskz_loadu_ps(static_cast<__mmask8>(mask), a + p * lda));
}

// Rows [i0, i0 + rows) of the block, rows <= R, with the row count fixed at compile time.
template <int R>
void slice_rows(const Block& k, int64_t i0, int64_t rows) {
  if constexpr (R > 1) {
    if (rows < R) return slice_rows<R - 1>(k, i0, rows);
  }
  float* c = k.c + i0 * k.ldc;
  if (k.a_trans) {
    pack_a_slice<R>(k.a_buf, k.a + i0, k.lda, k.kc);
    slice<R, true>(k, k.a_buf, c);
  } else {
    slice<R, false>(k, k.a + i0 * k.lda, c);
  }
}

void slices(const Block& k) {
  for (int64_t i0 = 0; i0 < k.m; i0 += kMr) slice_rows<kMr>(k, i0, min64(kMr, k.m - i0));
}

// dst panels (kc, kNr) of B(p, j) = b[j * ldb + p], j < n. Lanes past n are left unset: the
// tiles mask them on load. While 16 rows of b are read, the next 16 are asked for, line by
// line (or, after the last, the same rows' next kc columns, the next K block's): the rows'
// pieces of kc floats are too short for the hardware prefetchers to catch on.
void pack_b_trans(float* dst, const float* b, int64_t ldb, int64_t kc, int64_t n) {
  for (int64_t g = 0; g * 16 < n; ++g) {  // 16 columns of B (rows of b) at a time
    float* out = dst + (g / 3) * kc * kNr + (g % 3) * 16;
    const int64_t rows = min64(16, n - g * 16);
    const float* src = b + g * 16 * ldb;
    const bool last = (g + 1) * 16 >= n;
    const float* next = last ? b + kc : src + 16 * ldb;
    const int64_t next_rows = last ? min64(16, n) : min64(16, n - (g + 1) * 16);
    for (int64_t p0 = 0; p0 < kc; p0 += 16) {
      const int64_t depth = min64(16, kc - p0);
      const __mmask16 mask = lanes_mask(depth);
      for (int64_t i = 0; i < next_rows; ++i)
        _mm_prefetch(reinterpret_cast<const char*>(next + i * ldb + p0), _MM_HINT_T0);
      __m512 r[16];
      for (int i = 0; i < 16; ++i)
        r[i] = i < rows ? _mm512_maskz_loadu_ps(mask, src + i * ldb + p0) : _mm512_setzero_ps();
      transpose16(r);
      for (int64_t q = 0; q < depth; ++q) _mm512_storeu_ps(out + (p0 + q) * kNr, r[q]);
    }
  }
}

// ---- narrow last panels ----
//
// A last panel of a few columns costs every slice of 8 rows a whole 16-lane tile. The column
// kernel runs those columns for all rows at once instead, with vectors down the columns of A
// (A transposed, at (kc, m)): each element is the same chain of fused multiply-adds over p
// in order as in tile, then the same beta step, so the bits are the tiles' bits.
constexpr int64_t kTailCols = 8;  // last panels this narrow take the column kernel

// at (kc, ld_at) = A^T for the rows of the block: A(i, p) = a[i * lda + p].
void transpose_a(float* at, int64_t ld_at, const Block& k) {
  for (int64_t i0 = 0; i0 < k.m; i0 += 16)
    for (int64_t p0 = 0; p0 < k.kc; p0 += 16) {
      const int64_t rows = min64(16, k.m - i0), depth = min64(16, k.kc - p0);
      __m512 r[16];
      for (int i = 0; i < 16; ++i)
        r[i] = i < rows ? _mm512_maskz_loadu_ps(lanes_mask(depth), k.a + (i0 + i) * k.lda + p0)
                        : _mm512_setzero_ps();
      transpose16(r);
      for (int64_t q = 0; q < depth; ++q) _mm512_storeu_ps(at + (p0 + q) * ld_at + i0, r[q]);
    }
}

// c rows [i0, i0 + 16 V) (those below m) x columns [j0, j0 + C) as tile computes them, from
// at (kc, ld_at) = A^T.
template <int V, int C>
void column_tile(const Block& k, const float* at, int64_t ld_at, int64_t i0, int64_t j0) {
  const float* b = k.b + (j0 / kNr) * k.b_panel + j0 % kNr;  // B(p, j0 + c) = b[p * b_rs + c]
  __mmask16 mask[V];
  __m512 acc[V][C];
#pragma GCC unroll 4
  for (int v = 0; v < V; ++v) {
    const int64_t rows = k.m - i0 - 16 * v;
    mask[v] = rows > 0 ? lanes_mask(rows) : 0;
#pragma GCC unroll 8
    for (int c = 0; c < C; ++c) acc[v][c] = _mm512_setzero_ps();
  }
  for (int64_t p = 0; p < k.kc; ++p) {
    __m512 av[V];
#pragma GCC unroll 4
    for (int v = 0; v < V; ++v)
      av[v] = _mm512_maskz_loadu_ps(mask[v], at + p * ld_at + i0 + 16 * v);
#pragma GCC unroll 8
    for (int c = 0; c < C; ++c) {
      const __m512 bv = _mm512_set1_ps(b[p * k.b_rs + c]);
#pragma GCC unroll 4
      for (int v = 0; v < V; ++v) acc[v][c] = _mm512_fmadd_ps(av[v], bv, acc[v][c]);
    }
  }
  for (int v = 0; v < V; ++v)
    for (int c = 0; c < C; ++c) {
      alignas(64) float sums[16];
      _mm512_store_ps(sums, acc[v][c]);
      for (int64_t l = 0; l < min64(16, k.m - i0 - 16 * v); ++l) {
        float& dst = k.c[(i0 + 16 * v + l) * k.ldc + j0 + c];
        dst = k.beta == 0.0f   ? sums[l]
              : k.beta == 1.0f ? dst + sums[l]
                               : __builtin_fmaf(dst, k.beta, sums[l]);
      }
    }
}

// column_tile<V, C>, at kColumnTiles[V - 1][C - 1].
using ColumnTile = void (*)(const Block&, const float*, int64_t, int64_t, int64_t);
template <int V>
constexpr ColumnTile kColumnTilesOf[4] = {column_tile<V, 1>, column_tile<V, 2>, column_tile<V, 3>,
                                          column_tile<V, 4>};
constexpr const ColumnTile* kColumnTiles[4] = {kColumnTilesOf<1>, kColumnTilesOf<2>,
                                               kColumnTilesOf<3>, kColumnTilesOf<4>};

// Columns [j0, n) of the block (at most kTailCols) for all its rows: 64 rows by 4 columns at
// a time.
void tail_columns(const Block& k, int64_t j0) {
  thread_local ScratchBuffer transposed;
  const float* at = k.a;  // A^T: a itself when a_trans
  int64_t ld_at = k.lda;
  if (!k.a_trans) {
    ld_at = (k.m + 15) / 16 * 16;
    float* buffer = transposed.get(k.kc * ld_at);
    transpose_a(buffer, ld_at, k);
    at = buffer;
  }
  for (; j0 < k.n; j0 += 4)
    for (int64_t i0 = 0; i0 < k.m; i0 += 64) {
      const int64_t vectors = (min64(64, k.m - i0) + 15) / 16, cols = min64(4, k.n - j0);
      kColumnTiles[vectors - 1][cols - 1](k, at, ld_at, i0, j0);
    }
}

// The block: slices of rows against every panel, a narrow last panel for all rows at once.
void block(const Block& k) {
  const int64_t last = (k.n - 1) / kNr * kNr;  // the last panel's first column
  if (k.n - last > kTailCols || k.m < 16) return slices(k);
  if (last > 0) {
    Block whole = k;
    whole.n = last;
    slices(whole);
  }
  tail_columns(k, last);
}

// c (R, J) = beta * c + rows of a (R, k) . rows of b (J, k): lane l of each accumulator sums
// p = l, l + 16, ... in order (the last, partial step loads zeros past k), then sum_lanes.
template <int R, int J>
void dot_tile(int64_t k, const float* a, int64_t lda, const float* b, int64_t ldb, float* c,
              int64_t ldc, float beta) {
  constexpr int64_t kAhead = 128;  // prefetch distance along the rows of b, in floats
  __m512 acc[R][J];
#pragma GCC unroll 4
  for (int i = 0; i < R; ++i)
#pragma GCC unroll 8
    for (int j = 0; j < J; ++j) acc[i][j] = _mm512_setzero_ps();
  const auto step = [&](int64_t p, __mmask16 mask) __attribute__((always_inline)) {
    __m512 av[R];
#pragma GCC unroll 4
    for (int i = 0; i < R; ++i) av[i] = _mm512_maskz_loadu_ps(mask, a + i * lda + p);
#pragma GCC unroll 8
    for (int j = 0; j < J; ++j) {
      _mm_prefetch(reinterpret_cast<const char*>(b + j * ldb + p + kAhead), _MM_HINT_T0);
      const __m512 bv = _mm512_maskz_loadu_ps(mask, b + j * ldb + p);
#pragma GCC unroll 4
      for (int i = 0; i < R; ++i) acc[i][j] = _mm512_fmadd_ps(av[i], bv, acc[i][j]);
    }
  };
  int64_t p = 0;
  for (; p + 16 <= k; p += 16) step(p, kAll);
  if (p < k) step(p, lanes_mask(k - p));
#pragma GCC unroll 4
  for (int i = 0; i < R; ++i)
#pragma GCC unroll 8
    for (int j = 0; j < J; ++j) {
      const float s = sum_lanes(acc[i][j]);
      float& out = c[i * ldc + j];
      out = beta == 0.0f ? s : beta == 1.0f ? out + s : beta * out + s;
    }
}

// Picks the tile width J for the last columns (jb < J) at compile time.
template <int R, int J>
void dot_cols(const Dot& d, int64_t i0, int64_t j0, int64_t jb) {
  if constexpr (J > 1) {
    if (jb < J) return dot_cols<R, J - 1>(d, i0, j0, jb);
  }
  dot_tile<R, J>(d.k, d.a + i0 * d.lda, d.lda, d.b + j0 * d.ldb, d.ldb, d.c + i0 * d.ldc + j0,
                 d.ldc, d.beta);
}

// Rows [i0, i0 + rows) of a, rows <= R, against every row of b.
template <int R>
void dot_rows(const Dot& d, int64_t i0, int64_t rows) {
  if constexpr (R > 1) {
    if (rows < R) return dot_rows<R - 1>(d, i0, rows);
  }
  constexpr int kJ = R <= 3 ? 8 : 6;  // R * kJ <= 24 accumulators
  for (int64_t j0 = 0; j0 < d.n; j0 += kJ) dot_cols<R, kJ>(d, i0, j0, min64(kJ, d.n - j0));
}

void dot(const Dot& d) {
  for (int64_t i0 = 0; i0 < d.m; i0 += 4) dot_rows<4>(d, i0, min64(4, d.m - i0));
}

constexpr Isa kIsa{.name = "avx512",
                   .mr = kMr,
                   .nr = kNr,
                   .kc_max = 384,
                   .nc = 672,
                   .b_in_place_ok = true,
                   .block = block,
                   .pack_b_trans = pack_b_trans,
                   .dot = dot,
                   .dot_max_m = 8};

}  // namespace

const Isa& isa_avx512() { return kIsa; }

}  // namespace scratchnet::gemm_detail

#endif
