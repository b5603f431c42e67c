// gemm.h — single-precision matrix multiply, the building block of Conv2d and Linear.
//
// Row-major. With op(X) = X or X^T:
//
//   c (M, N) = beta * c + op(a) (M, K) * op(b) (K, N)
//
//   a is (M, K) with row stride lda, or (K, M) when trans_a; likewise b is (K, N) or (N, K).
//   beta = 0 overwrites c (NaNs in c are not propagated), beta = 1 accumulates.
//   M, N or K may be 0 (K = 0 gives c = beta * c); each ld is at least its row length;
//   a and b must not overlap c. Same contract as BLAS sgemm / torch.addmm on row-major data.
//
// Each element of c is summed over K in one fixed order that does not depend on the thread
// count, so results are bit-identical however the work is split (gemm and gemm_parallel agree,
// for any num_threads()). Generally p = 0, 1, ..., K - 1 in K blocks whose size depends on K
// only: c = ((beta * c + s_0) + s_1) + ..., each s_i summed in increasing p (by fused
// multiply-adds on AVX2 and AVX-512). One case differs: with trans_b, no trans_a and M <= 8 (a
// small-batch Linear, AVX-512 only), each element is a dot product of two contiguous rows, in 16
// interleaved partial sums combined in a fixed tree. Orders may differ between instruction sets
// (see gemm_isa).
//
// Speed: c is computed in tiles of 8 rows x 48 columns (AVX-512; AVX2: 6 x 16), broadcasting
// elements of op(a) against vectors along the rows of op(b). Fastest: neither transposed (a and
// b are read in place when they fit in cache). trans_a is nearly free (a is copied 8 rows at a
// time); trans_b transposes b into a buffer, an O(K N) pass that costs about as much as 8
// rows of the product. Rows M that are multiples of 8 fill the tiles exactly.
#pragma once

#include <cstdint>

namespace scratchnet {

struct GemmArgs {
  bool trans_a = false, trans_b = false;
  int64_t m = 0, n = 0, k = 0;
  const float* a = nullptr;
  int64_t lda = 0;
  const float* b = nullptr;
  int64_t ldb = 0;
  float beta = 0;
  float* c = nullptr;
  int64_t ldc = 0;
};

// On the calling thread only: for callers that already split work across threads.
void gemm(const GemmArgs& g);
// Split over blocks of rows or columns of c (never over K) on up to num_threads() threads
// (see parallel.h); small products run on the calling thread. Same result as gemm.
void gemm_parallel(const GemmArgs& g);

// The instruction set in use: "avx512", "avx2" or "generic". Chosen on first use as the best
// the CPU supports; the environment variable SCRATCHNET_ISA=generic|avx2|avx512 forces a lower
// one (an unknown or unsupported name makes the first gemm call throw).
const char* gemm_isa();
// Switches the instruction set ("avx512", "avx2", "generic"); throws scratchnet::Error naming
// the set when it is unknown or the CPU lacks it. For tests and comparisons: call it while no
// gemm is running.
void set_gemm_isa(const char* name);
// True when this CPU can run the named instruction set.
bool gemm_isa_supported(const char* name);

}  // namespace scratchnet
