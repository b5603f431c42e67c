// gemm_kernels.h — the per-instruction-set parts of gemm (private to src/kernels).
//
// gemm.cpp plans the product, splits it over threads, blocks it over K and N and packs b; an
// instruction set supplies the tile loop over one block and, optionally, faster packing and a
// dot-product path for few rows. Each set lives in its own file compiled for that set only
// (gemm_avx512.cpp, gemm_avx2.cpp, gemm_generic.cpp), so nothing it defines may be shared with
// other files: everything there sits in an anonymous namespace except the table getter.
#pragma once

#include <cstdint>

namespace scratchnet::gemm_detail {

// One block: c (m, n) = beta * c + A (m, kc) * B (kc, n), summing p = 0 .. kc - 1 in order.
//   A(i, p) = a[i * lda + p], or a[p * lda + i] when a_trans; the tile loop may copy each
//             slice of mr rows to a_buf (mr * kc floats, 64-byte aligned)
//   B(p, j) = b[(j / nr) * b_panel + p * b_rs + j % nr]: packed panels of nr columns
//             (b_rs = nr, b_panel = kc * nr; zero padded to nr unless Isa::b_in_place_ok), or
//             b read in place (b_rs = ldb, b_panel = nr; only when Isa::b_in_place_ok, whose
//             tiles never read lanes past n)
struct Block {
  int64_t m, n, kc;
  const float* a;
  int64_t lda;
  bool a_trans;
  float* a_buf;
  const float* b;
  int64_t b_rs, b_panel;
  float* c;
  int64_t ldc;
  float beta;
};

// Rows of a (m, k) times rows of b (n, k): c[i, j] = beta * c[i, j] + dot(a_i, b_j).
struct Dot {
  int64_t m, n, k;
  const float* a;
  int64_t lda;
  const float* b;
  int64_t ldb;
  float* c;
  int64_t ldc;
  float beta;
};

struct Isa {
  const char* name;
  int mr, nr;          // tile: mr rows of c by nr columns
  int64_t kc_max;      // K block (a slice of mr rows of A stays in L1)
  int64_t nc;          // N block (the packed B block kc x nc stays in L2), a multiple of nr
  bool b_in_place_ok;  // the tile loop may read b in place (partial last panels are masked)
  void (*block)(const Block& blk);
  // dst (kc, nr) panels for columns [0, n) of B(p, j) = b[j * ldb + p] (trans_b), panel q at
  // dst + q * kc * nr; padding as the tile loop needs it. Null: gemm.cpp's portable version.
  void (*pack_b_trans)(float* dst, const float* b, int64_t ldb, int64_t kc, int64_t n);
  // Small-M dot-product path for trans_b without trans_a (null: none); used when m <= dot_max_m.
  void (*dot)(const Dot& d);
  int64_t dot_max_m;
};

const Isa& isa_generic();
#if defined(__x86_64__) || defined(_M_X64)
const Isa& isa_avx2();
const Isa& isa_avx512();
#endif

}  // namespace scratchnet::gemm_detail
