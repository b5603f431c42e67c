// Portable gemm kernels: 4 x 8 tiles in plain C++ over packed slices of a and panels of b, for
// CPUs without AVX2 (the compiler vectorises the column loops for whatever the build targets).
#include "gemm_kernels.h"

namespace scratchnet::gemm_detail {

namespace {

constexpr int kMr = 4;
constexpr int kNr = 8;

int64_t min64(int64_t x, int64_t y) { return x < y ? x : y; }

// c (R, cols) = beta * c + A (R, kc) * B (kc, kNr), p in order. A(i, p) = a[p * lda + i] when
// kTrans, else a[i * lda + p]; B(p, j) = b[p * b_rs + j] zero padded to kNr columns.
// c (R, cols) = beta * c + A (R, kc) * B (kc, kNr), p in order. A(i, p) = a[p * kMr + i] (a
// packed slice); B(p, j) = b[p * b_rs + j] zero padded to kNr columns.
template <int R>
void tile(int64_t kc, const float* a, const float* b, int64_t b_rs, int64_t cols, float* c,
          int64_t ldc, float beta) {
  float acc[R][kNr] = {};
  for (int64_t p = 0; p < kc; ++p) {
    for (int i = 0; i < R; ++i)
      for (int j = 0; j < kNr; ++j) acc[i][j] += a[i] * b[j];
    a += kMr;
    b += b_rs;
  }
  for (int i = 0; i < R; ++i) {
    float* out = c + i * ldc;
    for (int64_t j = 0; j < cols; ++j)
      out[j] = beta == 0.0f   ? acc[i][j]
               : beta == 1.0f ? out[j] + acc[i][j]
                              : beta * out[j] + acc[i][j];
  }
}

// Rows [i0, i0 + rows) of the block, rows <= R, with the row count fixed at compile time.
template <int R>
void slice_rows(const Block& k, int64_t i0, int64_t rows) {
  if constexpr (R > 1) {
    if (rows < R) return slice_rows<R - 1>(k, i0, rows);
  }
  float* buf = k.a_buf;  // the slice as (kc, kMr)
  for (int64_t p = 0; p < k.kc; ++p)
    for (int i = 0; i < R; ++i)
      buf[p * kMr + i] = k.a_trans ? k.a[p * k.lda + i0 + i] : k.a[(i0 + i) * k.lda + p];
  float* c = k.c + i0 * k.ldc;
  for (int64_t j0 = 0; j0 < k.n; j0 += kNr)
    tile<R>(k.kc, buf, k.b + (j0 / kNr) * k.b_panel, k.b_rs, min64(kNr, k.n - j0), c + j0, k.ldc,
            k.beta);
}

void block(const Block& k) {
  for (int64_t i0 = 0; i0 < k.m; i0 += kMr) slice_rows<kMr>(k, i0, min64(kMr, k.m - i0));
}

constexpr Isa kIsa{.name = "generic",
                   .mr = kMr,
                   .nr = kNr,
                   .kc_max = 256,
                   .nc = 512,
                   .b_in_place_ok = false,
                   .block = block,
                   .pack_b_trans = nullptr,
                   .dot = nullptr,
                   .dot_max_m = 0};

}  // namespace

const Isa& isa_generic() { return kIsa; }

}  // namespace scratchnet::gemm_detail
