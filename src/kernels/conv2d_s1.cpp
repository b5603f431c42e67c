// Stride-1 convolutions on AVX-512 without an unfolded matrix ("implicit GEMM").
//
// A sample padded to (C, HP, WP) and laid out plane after plane holds every row of its
// unfolded matrix as a contiguous run: row (c, i, j) is xp[c*HP*WP + i*WP + j + t], where
// t = y*WP + x numbers the pixels of a "wide" output (OH, WP) whose columns x >= OW are
// scratch. So
//   forward      wide (OC, OH*WP) = bias + weight (OC, C*K*K) * B, B(k, t) = xp[off[k] + t]
//                and out keeps the first OW columns of each wide row;
//   input grad   a stride-1 convolution of d_out padded by q = K-1-padding with the kernel
//                flipped and its channel axes swapped:
//                d_in[c, u, v] = sum_{oc, i, j} weight[oc, c, K-1-i, K-1-j] *
//                                d_out_padded[oc, u + i, v + j]
//                (needs padding <= K-1);
//   weight grad  d_weight^T (C*K*K, OC) += B * g^T, summing over t and over the samples of a
//                group (batch order): d_weight[oc, k] += sum_t xp[off[k] + t] * g[t, oc] with
//                g = d_out transposed to the wide layout (len, OC), zeros in scratch columns.
// The padded buffers carry a zero tail so the last vectors may read past the last plane.
//
// Threads: forward and input gradient split the batch (or, for fewer samples than threads,
// the columns of each product); the weight gradient takes groups of samples in batch order
// and splits each group's sum over blocks of rows of d_weight^T, so every element is summed
// in the same order for any thread count.
#include <algorithm>
#include <vector>

#include "conv2d_kernels.h"
#include "scratch.h"
#include "scratchnet/parallel.h"

namespace scratchnet {

namespace {

enum Slot { kPlanes, kWide, kGroupPlanes, kGroupGrad, kFlipped, kAcc, kNumSlots };

// A buffer the calling thread fills before a parallel_for (kGroup*, kFlipped, kAcc)
// has a slot of its own, as the calling thread also runs a chunk.
float* scratch(Slot slot, int64_t n) {
  thread_local ScratchBuffer buffers[kNumSlots];
  return buffers[slot].get(n);
}

// The layout of one product: `planes` planes of (hp, wp) padded by `pad`, a kernel k x k.
struct Wide {
  int64_t planes, h, w, pad, k;
  int64_t hp, wp;  // padded plane
  int64_t oh, ow;  // output
  int64_t len;     // wide columns oh*wp rounded up to 16
  int64_t size;    // floats of one padded sample with its zero tail, a multiple of 16

  Wide(int64_t planes_, int64_t h_, int64_t w_, int64_t pad_, int64_t k_)
      : planes(planes_), h(h_), w(w_), pad(pad_), k(k_) {
    hp = h + 2 * pad;
    wp = w + 2 * pad;
    oh = hp - k + 1;
    ow = wp - k + 1;
    len = round_up(oh * wp, 16);
    // The furthest read: off = (planes-1)*hp*wp + (k-1)*wp + k-1, plus len + 15 columns.
    size = round_up(planes * hp * wp + k + 32, 16);
  }
};

// xp (planes, hp, wp) + zero tail = x (planes, h, w) with `pad` zeros around each plane.
void pad_planes(float* xp, const float* x, const Wide& g) {
  const int64_t p = g.pad;
  std::fill(xp, xp + g.size, 0.0f);
  for (int64_t c = 0; c < g.planes; ++c)
    conv2d_copy_rows_avx512(xp + (c * g.hp + p) * g.wp + p, g.wp, x + c * g.h * g.w, g.w, g.h, g.w);
}

// off (planes*k*k): where row (c, i, j) of the unfolded matrix starts in a padded sample.
const int64_t* row_offsets(const Wide& g) {
  thread_local std::vector<int64_t> buf;
  buf.resize(static_cast<size_t>(g.planes * g.k * g.k));
  int64_t* off = buf.data();
  for (int64_t c = 0; c < g.planes; ++c)
    for (int64_t i = 0; i < g.k; ++i)
      for (int64_t j = 0; j < g.k; ++j)
        off[(c * g.k + i) * g.k + j] = c * g.hp * g.wp + i * g.wp + j;
  return off;
}

// dst (m, g.oh, g.ow) = the first ow columns of each wide row of wide (m, g.len).
void compact(float* dst, const float* wide, int64_t m, const Wide& g) {
  for (int64_t r = 0; r < m; ++r)
    conv2d_copy_rows_avx512(dst + r * g.oh * g.ow, g.ow, wide + r * g.len, g.wp, g.oh, g.ow);
}

// For each of n samples: out[s] (m, oh, ow) = bias + a * unfold(pad(in[s])), a (m, kt). Samples
// over threads, or the columns of each product when there are fewer samples than threads.
void run_products(float* out, const float* in, const float* a, const float* bias, int64_t m,
                  int64_t n, const Wide& g) {
  const int64_t kt = g.planes * g.k * g.k, in_size = g.planes * g.h * g.w;
  const int64_t out_size = m * g.oh * g.ow;
  const int64_t* off = row_offsets(g);
  if (n >= num_threads()) {
    parallel_for(n, [&](int64_t begin, int64_t end) {
      float* xp = scratch(kPlanes, g.size);     // (planes, hp, wp) + tail
      float* wide = scratch(kWide, m * g.len);  // (m, len)
      for (int64_t s = begin; s < end; ++s) {
        pad_planes(xp, in + s * in_size, g);
        conv2d_s1_product_avx512(wide, g.len, a, m, kt, xp, off, 0, g.len, bias);
        compact(out + s * out_size, wide, m, g);
      }
    });
    return;
  }
  float* xp = scratch(kGroupPlanes, g.size);
  float* wide = scratch(kGroupGrad, m * g.len);
  const int64_t tiles = g.len / 16;
  for (int64_t s = 0; s < n; ++s) {
    pad_planes(xp, in + s * in_size, g);
    parallel_for(tiles, [&](int64_t begin, int64_t end) {
      conv2d_s1_product_avx512(wide, g.len, a, m, kt, xp, off, begin * 16, end * 16, bias);
    });
    compact(out + s * out_size, wide, m, g);
  }
}

}  // namespace

bool conv2d_s1_ok(const Conv2dDims& d) { return d.stride == 1 && conv2d_has_avx512(); }

void conv2d_s1_forward(float* out, const float* in, const float* weight, const float* bias,
                       const Conv2dDims& d) {
  const Wide g(d.c, d.h, d.w, d.padding, d.k);
  run_products(out, in, weight, bias, d.oc, d.n, g);
}

void conv2d_s1_input_grad(float* d_in, const float* d_out, const float* weight,
                          const Conv2dDims& d) {
  const int64_t k = d.k, kk = k * k, ckk = d.c * kk;
  const Wide g(d.oc, d.oh, d.ow, k - 1 - d.padding, k);
  // a (C, OC*K*K): a[c, (oc*K + i)*K + j] = weight[oc, c, K-1-i, K-1-j].
  float* a = scratch(kFlipped, ckk * d.oc);
  for (int64_t oc = 0; oc < d.oc; ++oc)
    for (int64_t c = 0; c < d.c; ++c)
      for (int64_t q = 0; q < kk; ++q)
        a[(c * d.oc + oc) * kk + kk - 1 - q] = weight[(oc * d.c + c) * kk + q];
  run_products(d_in, d_out, a, nullptr, d.c, d.n, g);
}

void conv2d_s1_weight_grad(float* d_weight, const float* d_out, const float* in,
                           const Conv2dDims& d) {
  const Wide g(d.c, d.h, d.w, d.padding, d.k);
  const int64_t ckk = d.c * d.k * d.k, plane = d.oh * d.ow;
  const int64_t ocr = round_up(d.oc, 16), gt_size = g.len * ocr;
  // Samples per group: about 1.5 MB of padded inputs and transposed gradients, near L2.
  const int64_t group = std::clamp<int64_t>((int64_t{3} << 17) / (g.size + gt_size), 1, d.n);
  const int64_t* off = row_offsets(g);
  float* xs = scratch(kGroupPlanes, group * g.size);  // (group, planes, hp, wp) + tails
  float* gts = scratch(kGroupGrad, group * gt_size);  // (group, len, OCr)
  float* acc = scratch(kAcc, ckk * ocr);              // (CKK, OCr): d_weight^T of this call
  std::fill(acc, acc + ckk * ocr, 0.0f);
  constexpr int64_t kRows = 6;  // rows of acc per kernel tile
  const int64_t row_blocks = (ckk + kRows - 1) / kRows;
  for (int64_t n0 = 0; n0 < d.n; n0 += group) {
    const int64_t count = std::min(group, d.n - n0);
    parallel_for(count, [&](int64_t begin, int64_t end) {
      for (int64_t s = begin; s < end; ++s) {
        pad_planes(xs + s * g.size, in + (n0 + s) * d.c * d.h * d.w, g);
        // gt (len, OCr): gt[y*WP + x, oc] = d_out[oc, y, x], zero elsewhere.
        float* gt = gts + s * gt_size;
        const float* dy = d_out + (n0 + s) * d.oc * plane;  // (OC, OH, OW)
        std::fill(gt, gt + gt_size, 0.0f);
        for (int64_t y = 0; y < d.oh; ++y)
          for (int64_t x = 0; x < d.ow; ++x) {
            float* row = gt + (y * g.wp + x) * ocr;
            const float* src = dy + y * d.ow + x;
            for (int64_t o = 0; o < d.oc; ++o) row[o] = src[o * plane];
          }
      }
    });
    parallel_for(row_blocks, [&](int64_t begin, int64_t end) {
      const int64_t r0 = begin * kRows, r1 = std::min(ckk, end * kRows);
      conv2d_s1_wgrad_avx512(acc + r0 * ocr, ocr, r1 - r0, ocr, xs, off + r0, g.size, gts, ocr,
                             gt_size, g.len, count);
    });
  }
  for (int64_t o = 0; o < d.oc; ++o)
    for (int64_t q = 0; q < ckk; ++q) d_weight[o * ckk + q] += acc[q * ocr + o];
}

}  // namespace scratchnet
