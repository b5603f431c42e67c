// Kernel micro-benchmarks (Google Benchmark), one section per kernel.
//
//   ./bench_kernels --benchmark_filter=gemm          all gemm cases
//   SCRATCHNET_ISA=avx2 ./bench_kernels ...           the same on a lower instruction set
//
// Each case reports FLOP/s (2 M N K per product) as a rate counter; names carry the shape,
// the layout (N = as stored, T = transposed, for a then b) and the thread count. One-thread
// cases time the calling thread's CPU time (steadier on a shared machine), two-thread cases
// wall time.
#include <benchmark/benchmark.h>

#include <string>
#include <vector>

#include "scratchnet/kernels/gemm.h"
#include "scratchnet/layers/conv2d.h"
#include "scratchnet/parallel.h"
#include "scratchnet/rng.h"

namespace scratchnet {
namespace {

std::vector<float> random_floats(int64_t n, uint64_t seed) {
  Rng rng(seed);
  std::vector<float> v(static_cast<size_t>(n));
  for (float& x : v) x = rng.uniform(-1.0f, 1.0f);
  return v;
}

// ---- gemm -------------------------------------------------------------------------------

struct GemmCase {
  const char* what;  // where the shape comes from
  int64_t m, n, k;
  bool trans_a, trans_b;
};

// The products the reference models run (batch 64 unless said), then large squares.
const GemmCase kGemmCases[] = {
    {"conv1_fwd", 32, 676, 9, false, false},        // basic: 1->32, 3x3, 26x26 out
    {"conv2_fwd", 64, 121, 288, false, false},      // basic: 32->64, 3x3, 11x11 out
    {"bn_conv2_fwd", 64, 784, 288, false, false},   // bn: 32->64, 3x3 pad 1, 28x28 out
    {"fc1_fwd", 64, 128, 1600, false, true},        // in (64, 1600) @ W^T
    {"fc1_fwd_batch1", 1, 128, 1600, false, true},  // batch-1 inference
    {"fc1_fwd_batch1000", 1000, 128, 1600, false, true},
    {"fc1_d_in", 64, 1600, 128, false, false},     // d_out @ W
    {"fc1_d_weight", 128, 1600, 64, true, false},  // d_out^T @ in
    {"fc2_fwd", 64, 10, 128, false, true},
    {"bn_wino_fwd", 64, 98, 32, false, false},    // bn: one F(4x4, 3x3) position, 2 samples
    {"bn_fc1_fwd", 64, 128, 12544, false, true},  // bn: in (64, 12544) @ W^T
    {"bn_fc1_d_in", 64, 12544, 128, false, false},
    {"bn_fc1_d_weight", 128, 12544, 64, true, false},
    {"square", 1024, 1024, 1024, false, false},
    {"square", 2048, 2048, 2048, false, false},
    {"square_tt", 1024, 1024, 1024, true, true},
};

void bm_gemm(benchmark::State& state, GemmCase c, int threads) {
  const int64_t a_rows = c.trans_a ? c.k : c.m, a_cols = c.trans_a ? c.m : c.k;
  const int64_t b_rows = c.trans_b ? c.n : c.k, b_cols = c.trans_b ? c.k : c.n;
  std::vector<float> a = random_floats(a_rows * a_cols, 1), b = random_floats(b_rows * b_cols, 2);
  std::vector<float> out(static_cast<size_t>(c.m * c.n));
  const GemmArgs g{.trans_a = c.trans_a,
                   .trans_b = c.trans_b,
                   .m = c.m,
                   .n = c.n,
                   .k = c.k,
                   .a = a.data(),
                   .lda = a_cols,
                   .b = b.data(),
                   .ldb = b_cols,
                   .beta = 0.0f,
                   .c = out.data(),
                   .ldc = c.n};
  const int saved = num_threads();
  set_num_threads(threads);
  for (auto _ : state) {
    gemm_parallel(g);
    benchmark::DoNotOptimize(out.data());
    benchmark::ClobberMemory();
  }
  set_num_threads(saved);
  state.counters["FLOP/s"] = benchmark::Counter(
      2.0 * static_cast<double>(c.m * c.n * c.k) * static_cast<double>(state.iterations()),
      benchmark::Counter::kIsRate);
  state.SetLabel(gemm_isa());
}

int register_gemm() {
  for (const GemmCase& c : kGemmCases)
    for (int threads : {1, 2}) {
      const std::string name = std::string("gemm/") + c.what + "/" + std::to_string(c.m) + "x" +
                               std::to_string(c.n) + "x" + std::to_string(c.k) + "/" +
                               (c.trans_a ? "T" : "N") + (c.trans_b ? "T" : "N") +
                               "/threads:" + std::to_string(threads);
      auto* bm = benchmark::RegisterBenchmark(name.c_str(), bm_gemm, c, threads);
      if (threads > 1) bm->UseRealTime();
    }
  return 0;
}
const int kGemmRegistered = register_gemm();

// ---- conv2d -----------------------------------------------------------------------------

struct ConvCase {
  const char* what;
  int64_t n, c, oc, hw, padding;  // square input hw x hw, 3x3 kernel, stride 1
  bool backward;                  // d_in, d_weight and d_bias instead of the output
  bool pooled = false;            // backward: d_out as a 2x2 max-pool passes it back
};

// The convolutions of the reference models. FLOP/s counts 2 C*9 per output for forward and
// twice that for backward (input and weight gradients), zeros of a pooled gradient included.
const ConvCase kConvCases[] = {
    {"basic_conv1_fwd", 64, 1, 32, 28, 0, false},
    {"basic_conv1_bwd", 64, 1, 32, 28, 0, true},
    {"basic_conv2_fwd", 64, 32, 64, 13, 0, false},
    {"basic_conv2_bwd", 64, 32, 64, 13, 0, true},
    {"basic_conv2_bwd_pooled", 64, 32, 64, 13, 0, true, true},
    {"basic_conv2_fwd_batch1", 1, 32, 64, 13, 0, false},
    {"bn_conv1_fwd", 64, 1, 32, 28, 1, false},
    {"bn_conv1_bwd", 64, 1, 32, 28, 1, true},
    {"bn_conv2_fwd", 64, 32, 64, 28, 1, false},
    {"bn_conv2_bwd", 64, 32, 64, 28, 1, true},
    {"bn_conv2_fwd_batch1", 1, 32, 64, 28, 1, false},
};

void bm_conv(benchmark::State& state, ConvCase c, int threads) {
  const Conv2dDims d =
      conv2d_dims({.in_channels = c.c, .out_channels = c.oc, .kernel = 3, .padding = c.padding},
                  {c.n, c.c, c.hw, c.hw});
  std::vector<float> in = random_floats(d.n * d.c * d.h * d.w, 1);
  std::vector<float> w = random_floats(d.oc * d.c * 9, 2), b = random_floats(d.oc, 3);
  std::vector<float> out = random_floats(d.n * d.oc * d.oh * d.ow, 4);
  if (c.pooled)  // one value per whole 2x2 window, at a place drawn per window; zeros elsewhere
    for (int64_t i = 0; i < static_cast<int64_t>(out.size()); ++i) {
      const int64_t y = i / d.ow % d.oh, x = i % d.ow;
      const int64_t window = (i / (d.oh * d.ow)) * d.oh * d.ow + (y / 2) * d.ow + x / 2;
      const bool kept = y / 2 < d.oh / 2 && x / 2 < d.ow / 2 &&
                        (y % 2) * 2 + x % 2 == static_cast<int64_t>(window * 2654435761u >> 11) % 4;
      if (!kept) out[static_cast<size_t>(i)] = 0.0f;
    }
  std::vector<float> d_in(in.size()), d_w(w.size()), d_b(b.size());
  const int saved = num_threads();
  set_num_threads(threads);
  for (auto _ : state) {
    if (c.backward)
      conv2d_backward(d_in.data(), d_w.data(), d_b.data(), out.data(), in.data(), w.data(), d);
    else
      conv2d_forward(out.data(), in.data(), w.data(), b.data(), d);
    benchmark::ClobberMemory();
  }
  set_num_threads(saved);
  const double flops = 2.0 * static_cast<double>(d.n * d.oc * d.oh * d.ow * d.c * 9);
  state.counters["FLOP/s"] =
      benchmark::Counter((c.backward ? 2 : 1) * flops * static_cast<double>(state.iterations()),
                         benchmark::Counter::kIsRate);
}

int register_conv() {
  for (const ConvCase& c : kConvCases)
    for (int threads : {1, 2}) {
      const std::string name =
          std::string("conv2d/") + c.what + "/threads:" + std::to_string(threads);
      benchmark::RegisterBenchmark(name.c_str(), bm_conv, c, threads)->UseRealTime();
    }
  return 0;
}
const int kConvRegistered = register_conv();

}  // namespace
}  // namespace scratchnet

BENCHMARK_MAIN();
