// Winograd F(4x4, 3x3) for batches with too few tiles for conv2d_winograd.cpp's chunks (one
// image at a time: `basic`'s second convolution has 9 tiles of 4x4 per sample). There a
// product per position would be (OC x C) times (C x 9 tiles), and a vector of tiles leaves most
// lanes idle; here the vectors hold channels instead:
//   xt (HP, WP, Cr)   the sample channel-last, padded, 16 channels per vector (Cr = C rounded
//                     up to 16; zeros around and past C)
//   V  (36, T, Cr)    B^T d B for each tile's 6x6 patch d, 16 input channels at a time
//   M  (36, T, OCu)   M_xi (T, OC) = V_xi (T, C) * U_xi (C, OC) with U from filter_transform4:
//                     a tile's value broadcast against two vectors of output channels
//   yt (rows, cols, OCu)  bias + A^T M A (and the epilogue, pooled), channel-last, then turned
//                     back into planes by 16 x 16 transposes.
// The arithmetic per output is conv2d_winograd4.cpp's (same matrices; U is the same values),
// with the channels summed in order by one accumulator each. The transformed filters are kept
// per thread for the last few weight tensors seen, found again by their bits, so that a model
// answering one image after another transforms its filters once.
//
// Threads take samples, or for fewer samples than threads (sample, block of 32 output
// channels) pairs, a thread transforming a sample's input once for its pairs of it: every
// output is computed the same way whoever computes it.
#include <algorithm>
#include <cstring>
#include <vector>

#include "conv2d_kernels.h"
#include "scratch.h"
#include "scratchnet/parallel.h"

#if defined(__x86_64__) || defined(_M_X64)
#include "conv2d_winograd.h"

namespace scratchnet {

namespace {

using winograd::kLanes;

constexpr int64_t kPositions = 36;
constexpr int64_t kBlockOuts = 2 * kLanes;  // output channels per product tile
constexpr int kMaxTiles = 12;               // tiles per product tile: 24 accumulators

enum Slot { kInput, kV, kM, kOut, kNumSlots };

float* scratch(Slot slot, int64_t n) {
  thread_local ScratchBuffer buffers[kNumSlots];
  return buffers[slot].get(n);
}

// One sample's layout.
struct Small {
  int64_t c, cr, h, w, pad, oc;
  int64_t oh, ow, ty, tx, tiles, hp, wp;
  int64_t tile_block;  // tiles per product tile: the tiles in equal blocks of at most kMaxTiles

  explicit Small(const Conv2dDims& d)
      : c(d.c), cr(round_up(d.c, kLanes)), h(d.h), w(d.w), pad(d.padding), oc(d.oc) {
    oh = d.oh;
    ow = d.ow;
    ty = (oh + 3) / 4;
    tx = (ow + 3) / 4;
    tiles = ty * tx;
    hp = 4 * ty + 2;
    wp = 4 * tx + 2;
    const int64_t blocks = (tiles + kMaxTiles - 1) / kMaxTiles;
    tile_block = (tiles + blocks - 1) / blocks;
  }
};

// ---- the transformed filters, kept ----

struct KeptFilters {
  int64_t outs = 0, planes = 0;
  std::vector<float> weight, u;  // weight's bits, and u (36, planes, outs)
};

// u (36, planes, outs) for weight (outs, planes, 3, 3): this thread's copy when it has seen
// these bits last among its last kKept, else transformed now (output channels over threads).
// Valid until this thread's next call.
const float* transformed_filters(const float* weight, int64_t outs, int64_t planes) {
  constexpr size_t kKept = 4;
  thread_local std::vector<KeptFilters> kept;  // most recently used first
  const size_t size = static_cast<size_t>(9 * outs * planes);
  for (auto it = kept.begin(); it != kept.end(); ++it)
    if (it->outs == outs && it->planes == planes &&
        std::memcmp(it->weight.data(), weight, size * sizeof(float)) == 0) {
      std::rotate(kept.begin(), it, it + 1);
      return kept.front().u.data();
    }
  if (kept.size() < kKept) kept.emplace_back();
  std::rotate(kept.begin(), kept.end() - 1, kept.end());  // the oldest (or a new one) first
  KeptFilters& f = kept.front();                          // its storage reused
  f.outs = outs;
  f.planes = planes;
  f.weight.assign(weight, weight + size);
  f.u.resize(kPositions * size / 9);
  float* u = f.u.data();
  parallel_for(outs, parallel_grain(kPositions * planes), [&](int64_t o0, int64_t o1) {
    winograd::filter_transform4(u, weight, outs, planes, o0, o1);
  });
  return u;
}

// ---- the three steps of one sample ----

// xt, then V: B^T d B for every tile's patch d, 16 input channels per vector.
__attribute__((target("avx512f"))) void input_transform(float* v, float* xt, const float* x,
                                                        const Small& s) {
  std::fill(xt, xt + s.hp * s.wp * s.cr, 0.0f);
  const int64_t rows = std::min(s.h, s.hp - s.pad), cols = std::min(s.w, s.wp - s.pad);
  for (int64_t c0 = 0; c0 < s.c; c0 += kLanes)
    simd::rows_to_lanes(xt + (s.pad * s.wp + s.pad) * s.cr + c0, s.wp, s.cr, x + c0 * s.h * s.w,
                        s.w, s.h * s.w, std::min<int64_t>(kLanes, s.c - c0), rows, cols);
  const int64_t plane_v = s.tiles * s.cr;
  for (int64_t t = 0; t < s.tiles; ++t) {
    const float* patch = xt + (4 * (t / s.tx) * s.wp + 4 * (t % s.tx)) * s.cr;
    for (int64_t c0 = 0; c0 < s.cr; c0 += kLanes) {
      __m512 r[6][6];  // B^T d
#pragma GCC unroll 6
      for (int j = 0; j < 6; ++j) {
        __m512 col[6], o[6];
        for (int i = 0; i < 6; ++i) col[i] = _mm512_loadu_ps(patch + (i * s.wp + j) * s.cr + c0);
        winograd::b6(o, col);
        for (int i = 0; i < 6; ++i) r[i][j] = o[i];
      }
      float* dst = v + t * s.cr + c0;
#pragma GCC unroll 6
      for (int i = 0; i < 6; ++i) {
        __m512 o[6];
        winograd::b6(o, r[i]);
        for (int j = 0; j < 6; ++j) _mm512_storeu_ps(dst + (i * 6 + j) * plane_v, o[j]);
      }
    }
  }
}

// m (TB, 16 NV), row stride ldm = the sums over c < planes of v[t * ldv + c] * u[c * ldu + o].
template <int TB, int NV>
__attribute__((target("avx512f"))) void product_tile(float* m, int64_t ldm, const float* v,
                                                     int64_t ldv, const float* u, int64_t ldu,
                                                     int64_t planes) {
  __m512 acc[TB][NV];
  for (int t = 0; t < TB; ++t)
    for (int j = 0; j < NV; ++j) acc[t][j] = _mm512_setzero_ps();
  for (int64_t c = 0; c < planes; ++c) {
    __m512 w[NV];
    for (int j = 0; j < NV; ++j) w[j] = _mm512_loadu_ps(u + c * ldu + j * kLanes);
    for (int t = 0; t < TB; ++t) {
      const __m512 x = _mm512_set1_ps(v[t * ldv + c]);
      for (int j = 0; j < NV; ++j) acc[t][j] = _mm512_fmadd_ps(x, w[j], acc[t][j]);
    }
  }
  for (int t = 0; t < TB; ++t)
    for (int j = 0; j < NV; ++j) _mm512_storeu_ps(m + t * ldm + j * kLanes, acc[t][j]);
}

using ProductTile = void (*)(float*, int64_t, const float*, int64_t, const float*, int64_t,
                             int64_t);

template <int NV, int... TB>
constexpr ProductTile product_tile_for(int tb, std::integer_sequence<int, TB...>) {
  ProductTile tiles[] = {product_tile<TB + 1, NV>...};
  return tiles[tb - 1];
}

ProductTile product_tile_for(int tb, int nv) {
  using Sizes = std::make_integer_sequence<int, kMaxTiles>;
  return nv == 1 ? product_tile_for<1>(tb, Sizes{}) : product_tile_for<2>(tb, Sizes{});
}

// M (36, T, o1 - o0) for output channels [o0, o1) from V and u (36, C, OC).
void products(float* mm, const float* v, const float* u, int64_t o0, int64_t o1, const Small& s) {
  const int64_t outs = o1 - o0;
  for (int64_t xi = 0; xi < kPositions; ++xi)
    for (int64_t ob = o0; ob < o1; ob += kBlockOuts) {
      const int nv = static_cast<int>(std::min(kBlockOuts, o1 - ob) / kLanes);
      for (int64_t t0 = 0; t0 < s.tiles; t0 += s.tile_block) {
        const int tb = static_cast<int>(std::min(s.tile_block, s.tiles - t0));
        product_tile_for(tb, nv)(mm + (xi * s.tiles + t0) * outs + ob - o0, outs,
                                 v + (xi * s.tiles + t0) * s.cr, s.cr, u + xi * s.c * s.oc + ob,
                                 s.oc, s.c);
      }
    }
}

// out's planes [o0, o1) (pooled with e->pool) = bias + A^T M A for every tile, then the
// epilogue: 16 output channels per vector into yt, then turned into planes.
__attribute__((target("avx512f"))) void output_transform(float* out, float* yt, const float* mm,
                                                         const float* bias, const Conv2dEpilogue* e,
                                                         int64_t o0, int64_t o1, const Small& s) {
  const bool pool = e && e->pool;
  const int64_t rows = pool ? s.oh / 2 : s.oh, cols = pool ? s.ow / 2 : s.ow;
  const int64_t outs = o1 - o0, plane_m = s.tiles * outs;
  for (int64_t oo = 0; oo < outs; oo += kLanes) {
    const int64_t o = o0 + oo;
    const simd::ChannelEpilogue ce = simd::channel_epilogue(bias, e, o, /*per_lane=*/true);
    for (int64_t t = 0; t < s.tiles; ++t) {
      const int64_t y0 = 4 * (t / s.tx), x0 = 4 * (t % s.tx);
      __m512 r[4][6], y[4][4];
      winograd::a6_columns(r, mm + t * outs + oo, plane_m, 0xFFFF);
      for (int i = 0; i < 4; ++i) {
        winograd::a6(y[i], r[i]);
        for (int j = 0; j < 4; ++j) y[i][j] = winograd::finish(y[i][j], ce);
      }
      if (pool) {
        for (int64_t a = 0; a < 2 && y0 / 2 + a < rows; ++a)
          for (int64_t b = 0; b < 2 && x0 / 2 + b < cols; ++b)
            _mm512_storeu_ps(yt + ((y0 / 2 + a) * cols + x0 / 2 + b) * outs + oo,
                             winograd::max4(y[2 * a][2 * b], y[2 * a][2 * b + 1],
                                            y[2 * a + 1][2 * b], y[2 * a + 1][2 * b + 1]));
      } else {
        for (int64_t i = 0; i < 4 && y0 + i < rows; ++i)
          for (int64_t j = 0; j < 4 && x0 + j < cols; ++j)
            _mm512_storeu_ps(yt + ((y0 + i) * cols + x0 + j) * outs + oo, y[i][j]);
      }
    }
    simd::lanes_to_rows(out + o * rows * cols, cols, rows * cols, yt + oo, cols, outs, kLanes, rows,
                        cols);
  }
}

}  // namespace

bool conv2d_winograd_small_ok(const Conv2dDims& d) {
  return conv2d_has_avx512() && d.k == 3 && d.stride == 1 && d.c >= 8 && d.oc % kLanes == 0 &&
         d.oh >= 4 && d.ow >= 4 && kPositions * d.c * d.oc <= (int64_t{1} << 18) &&
         !conv2d_winograd_ok(d);
}

void conv2d_winograd_small_forward(float* out, const float* in, const float* weight,
                                   const float* bias, const Conv2dDims& d,
                                   const Conv2dEpilogue* e) {
  const Small s(d);
  const float* u = transformed_filters(weight, d.oc, d.c);
  const int64_t in_size = d.c * d.h * d.w;
  const int64_t out_plane = e && e->pool ? (d.oh / 2) * (d.ow / 2) : d.oh * d.ow;
  // Units of work: (sample, block of output channels), a sample's whole output when there are
  // as many samples as threads. A thread transforms a sample's input once for its units of it.
  const int64_t block = d.n >= num_threads() ? d.oc : kBlockOuts;
  const int64_t blocks = (d.oc + block - 1) / block;
  parallel_for(d.n * blocks, [&](int64_t begin, int64_t end) {
    float* xt = scratch(kInput, s.hp * s.wp * s.cr);
    float* v = scratch(kV, kPositions * s.tiles * s.cr);
    float* mm = scratch(kM, kPositions * s.tiles * block);
    float* yt = scratch(kOut, s.oh * s.ow * block);
    for (int64_t q = begin; q < end; ++q) {
      const int64_t k = q / blocks, o0 = q % blocks * block, o1 = std::min(d.oc, o0 + block);
      if (q == begin || o0 == 0) input_transform(v, xt, in + k * in_size, s);
      products(mm, v, u, o0, o1, s);
      output_transform(out + k * d.oc * out_plane, yt, mm, bias, e, o0, o1, s);
    }
  });
}

}  // namespace scratchnet

#else  // not x86-64

namespace scratchnet {

bool conv2d_winograd_small_ok(const Conv2dDims&) { return false; }
void conv2d_winograd_small_forward(float*, const float*, const float*, const float*,
                                   const Conv2dDims&, const Conv2dEpilogue*) {}

}  // namespace scratchnet

#endif
