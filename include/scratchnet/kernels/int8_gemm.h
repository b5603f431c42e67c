// int8_gemm.h — the integer matrix multiply behind int8 inference (Conv2dInt8, LinearInt8).
//
//   c (M, N) int32 = a (M, K) uint8 * w^T,   w (N, K) int8, packed once by pack_int8
//
// a holds quantised activations (row stride lda >= kp, the K rounded up to a multiple of 4; the
// bytes past K in each row are read but multiply zeros), w one row per output (a Linear's
// weight, a Conv2d's weight as (OC, C*K*K)). Sums are exact in int32 (|a*w| <= 255 * 128 and
// K < 2^16 keeps them in range), so every instruction set and thread count gives the same c.
//
// Instruction sets: AVX-512 VNNI (vpdpbusd: 16 columns x 4 k per instruction, tiles of up to
// 6 rows x 64 columns) when gemm_isa() is "avx512" and the CPU has VNNI; plain loops otherwise
// (SCRATCHNET_ISA=generic or set_gemm_isa("generic") forces them).
#pragma once

#include <cstdint>
#include <vector>

namespace scratchnet {

// w (N, K) in panels of 16 outputs: data[((j / 16) * kp / 4 + k / 4) * 64 + (j % 16) * 4 + k % 4]
// = w[j, k], zero past N and K.
struct Int8Packed {
  int64_t n = 0, k = 0, kp = 0;   // kp: K rounded up to a multiple of 4
  std::vector<int8_t> data;       // (ceil(N / 16), kp / 4, 16, 4)
  std::vector<int32_t> row_sums;  // (N): sum over k of w[j, k], for the zero-point correction
};

// K must be < 65536 (the int32 range of the sums).
Int8Packed pack_int8(const int8_t* w, int64_t n, int64_t k);

// c (M, N) with row stride ldc is overwritten. Runs on the calling thread.
void int8_gemm(int32_t* c, int64_t ldc, const uint8_t* a, int64_t lda, int64_t m,
               const Int8Packed& w);

// q (n) = round_half_even(clamp(fma(x, inv_scale, zero_point), 0, 255)) for x (n); NaN gives 0.
// The same bytes on every instruction set.
void quantize_u8(uint8_t* q, const float* x, int64_t n, float inv_scale, float zero_point);

// "avx512vnni" or "generic": what int8_gemm and quantize_u8 run now.
const char* int8_gemm_isa();

}  // namespace scratchnet
