// AVX2 + FMA gemm kernels: 6 x 16 tiles (12 ymm accumulators) over packed panels of b.
// Compiled with -mavx2 -mfma; only called after the CPU reported those sets.
#include "gemm_kernels.h"

#if defined(__x86_64__) || defined(_M_X64)

#include <immintrin.h>

namespace scratchnet::gemm_detail {

namespace {

constexpr int kMr = 6;
constexpr int kNr = 16;  // two ymm vectors

int64_t min64(int64_t x, int64_t y) { return x < y ? x : y; }

// Lanes [0, count) set, count in [1, 8].
__m256i lanes(int64_t count) {
  return _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(count)),
                            _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

// c = beta * c + acc in the lanes of mask; beta = 0 stores without reading c.
inline void store_vec(float* c, __m256 acc, __m256i mask, float beta) {
  if (beta == 0.0f) {
    _mm256_maskstore_ps(c, mask, acc);
  } else if (beta == 1.0f) {
    _mm256_maskstore_ps(c, mask, _mm256_add_ps(_mm256_maskload_ps(c, mask), acc));
  } else {
    const __m256 old = _mm256_maskload_ps(c, mask);
    _mm256_maskstore_ps(c, mask, _mm256_fmadd_ps(old, _mm256_set1_ps(beta), acc));
  }
}

// c (R, cols) = beta * c + A (R, kc) * B (kc, cols), p in order. A(i, p) = a[p * lda + i] when
// kTrans, else a[i * lda + p]; B(p, j) = b[p * b_rs + j] zero padded to 8 V columns.
template <int R, int V, bool kTrans>
void tile(int64_t kc, const float* a, int64_t lda, const float* b, int64_t b_rs, __m256i last,
          float* c, int64_t ldc, float beta) {
  // Fully unrolled small loops (the pragmas) let the compiler keep acc in registers.
  __m256 acc[R][V];
#pragma GCC unroll 6
  for (int i = 0; i < R; ++i)
#pragma GCC unroll 2
    for (int v = 0; v < V; ++v) acc[i][v] = _mm256_setzero_ps();
  const float* row[R];
#pragma GCC unroll 6
  for (int i = 0; i < R; ++i) row[i] = kTrans ? a + i : a + i * lda;
  const int64_t a_step = kTrans ? lda : 1;
  for (int64_t p = 0; p < kc; ++p) {
    const __m256 b0 = _mm256_loadu_ps(b);
    const __m256 b1 = V == 2 ? _mm256_loadu_ps(b + 8) : b0;
#pragma GCC unroll 6
    for (int i = 0; i < R; ++i) {
      const __m256 av = _mm256_broadcast_ss(row[i] + p * a_step);
      acc[i][0] = _mm256_fmadd_ps(av, b0, acc[i][0]);
      if constexpr (V == 2) acc[i][1] = _mm256_fmadd_ps(av, b1, acc[i][1]);
    }
    b += b_rs;
  }
  const __m256i all = _mm256_set1_epi32(-1);
#pragma GCC unroll 6
  for (int i = 0; i < R; ++i)
#pragma GCC unroll 2
    for (int v = 0; v < V; ++v)
      store_vec(c + i * ldc + v * 8, acc[i][v], v == V - 1 ? last : all, beta);
}

template <int R, bool kTrans>
void slice(const Block& k, const float* a, int64_t lda, float* c) {
  for (int64_t j0 = 0; j0 < k.n; j0 += kNr) {
    const float* b = k.b + (j0 / kNr) * k.b_panel;
    const int64_t cols = min64(kNr, k.n - j0);
    if (cols > 8)
      tile<R, 2, kTrans>(k.kc, a, lda, b, k.b_rs, lanes(cols - 8), c + j0, k.ldc, k.beta);
    else
      tile<R, 1, kTrans>(k.kc, a, lda, b, k.b_rs, lanes(cols), c + j0, k.ldc, k.beta);
  }
}

// Rows [i0, i0 + rows) of the block, rows <= R, with the row count fixed at compile time.
template <int R>
void slice_rows(const Block& k, int64_t i0, int64_t rows) {
  if constexpr (R > 1) {
    if (rows < R) return slice_rows<R - 1>(k, i0, rows);
  }
  float* c = k.c + i0 * k.ldc;
  if (k.a_trans) {  // copy the slice to a_buf (kc, kMr), read as a transposed a with lda kMr
    for (int64_t p = 0; p < k.kc; ++p)
      for (int i = 0; i < R; ++i) k.a_buf[p * kMr + i] = k.a[p * k.lda + i0 + i];
    slice<R, true>(k, k.a_buf, kMr, c);
  } else {
    slice<R, false>(k, k.a + i0 * k.lda, k.lda, c);
  }
}

void block(const Block& k) {
  for (int64_t i0 = 0; i0 < k.m; i0 += kMr) slice_rows<kMr>(k, i0, min64(kMr, k.m - i0));
}

// out[q * ld + i] = src[i * lds + q] for an 8 x 8 block.
inline void transpose8_from(float* out, int64_t ld, const float* src, int64_t lds) {
  __m256 r[8];
  for (int i = 0; i < 8; ++i) r[i] = _mm256_loadu_ps(src + i * lds);
  __m256 t[8];
  for (int i = 0; i < 4; ++i) {
    t[2 * i] = _mm256_unpacklo_ps(r[2 * i], r[2 * i + 1]);
    t[2 * i + 1] = _mm256_unpackhi_ps(r[2 * i], r[2 * i + 1]);
  }
  // u[4 g + k], 128-bit lane l: column 4 l + k of rows 4 g .. 4 g + 3
  __m256 u[8];
  for (int g = 0; g < 2; ++g) {
    u[4 * g] = _mm256_shuffle_ps(t[4 * g], t[4 * g + 2], 0x44);
    u[4 * g + 1] = _mm256_shuffle_ps(t[4 * g], t[4 * g + 2], 0xEE);
    u[4 * g + 2] = _mm256_shuffle_ps(t[4 * g + 1], t[4 * g + 3], 0x44);
    u[4 * g + 3] = _mm256_shuffle_ps(t[4 * g + 1], t[4 * g + 3], 0xEE);
  }
  for (int k = 0; k < 4; ++k) {
    _mm256_storeu_ps(out + k * ld, _mm256_permute2f128_ps(u[k], u[4 + k], 0x20));
    _mm256_storeu_ps(out + (4 + k) * ld, _mm256_permute2f128_ps(u[k], u[4 + k], 0x31));
  }
}

// dst panels (kc, kNr) of B(p, j) = b[j * ldb + p], j < n, zero padded to whole panels: 8 x 8
// transposes, element by element at the edges.
void pack_b_trans(float* dst, const float* b, int64_t ldb, int64_t kc, int64_t n) {
  const int64_t groups = (n + kNr - 1) / kNr * 2;  // 8 columns each, up to whole panels
  for (int64_t g = 0; g < groups; ++g) {
    float* out = dst + (g / 2) * kc * kNr + (g % 2) * 8;
    const int64_t left = n - g * 8;  // rows of b left for this group
    const int64_t rows = left < 0 ? 0 : left > 8 ? 8 : left;
    const float* src = rows > 0 ? b + g * 8 * ldb : b;
    int64_t p0 = 0;
    if (rows == 8)
      for (; p0 + 8 <= kc; p0 += 8) transpose8_from(out + p0 * kNr, kNr, src + p0, ldb);
    for (int64_t p = p0; p < kc; ++p)
      for (int64_t i = 0; i < 8; ++i) out[p * kNr + i] = i < rows ? src[i * ldb + p] : 0.0f;
  }
}

constexpr Isa kIsa{.name = "avx2",
                   .mr = kMr,
                   .nr = kNr,
                   .kc_max = 256,
                   .nc = 512,
                   .b_in_place_ok = false,
                   .block = block,
                   .pack_b_trans = pack_b_trans,
                   .dot = nullptr,
                   .dot_max_m = 0};

}  // namespace

const Isa& isa_avx2() { return kIsa; }

}  // namespace scratchnet::gemm_detail

#endif
