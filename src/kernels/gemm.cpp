// gemm driver: checks, instruction-set choice, the split over threads and the K / N blocking.
//
// For each K block p0 .. p0 + kc (in increasing order) and each N block of nc columns, b's
// block is packed into kc x nr panels (or read in place when it is laid out well), then the
// instruction set's tile loop runs slices of mr rows of c against every panel: the slice of a
// stays in L1, the packed block of b in L2. Threads take disjoint ranges of rows or columns of
// c and run the same blocking over K, so every element sees the same sums in the same order.
#include "scratchnet/kernels/gemm.h"

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <cstring>
#include <string>

#include "gemm_kernels.h"
#include "scratch.h"
#include "scratchnet/check.h"
#include "scratchnet/parallel.h"

namespace scratchnet {

namespace {

using gemm_detail::Block;
using gemm_detail::Dot;
using gemm_detail::Isa;

// Products below this many flops run on the calling thread: waking a worker costs more.
constexpr int64_t kMinParallelFlops = int64_t{1} << 21;
// Except on the dot path from this many floats of b on: there the time goes to reading b (a
// Linear's weights for a few samples), which two cores' caches and ports share.
constexpr int64_t kMinParallelDotFloats = int64_t{1} << 16;
constexpr int64_t kColUnit = 16;  // columns of c per unit of the split over threads

// ---- instruction sets -------------------------------------------------------------------

bool cpu_has(const std::string& name) {
#if defined(__x86_64__) || defined(_M_X64)
  __builtin_cpu_init();
  if (name == "avx512")
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl") &&
           __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512dq") &&
           __builtin_cpu_supports("fma");
  if (name == "avx2") return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#endif
  return name == "generic";
}

const char* const kIsaNames[] = {"avx512", "avx2", "generic"};  // best first

bool known_isa(const std::string& name) {
  return std::find(std::begin(kIsaNames), std::end(kIsaNames), name) != std::end(kIsaNames);
}

// The table for a known name the CPU supports.
const Isa* isa_table(const std::string& name) {
#if defined(__x86_64__) || defined(_M_X64)
  if (name == "avx512") return &gemm_detail::isa_avx512();
  if (name == "avx2") return &gemm_detail::isa_avx2();
#endif
  return &gemm_detail::isa_generic();
}

std::string supported_list() {
  std::string list;
  for (const char* name : kIsaNames)
    if (cpu_has(name)) list += (list.empty() ? "" : ", ") + std::string(name);
  return list;
}

// Throws "<who>: ..." when name is unknown or unsupported.
const Isa* checked_isa(const char* who, const std::string& name) {
  SN_CHECK(known_isa(name), "{}: unknown instruction set '{}'; expected avx512, avx2 or generic",
           who, name);
  SN_CHECK(cpu_has(name), "{}: this CPU does not support {} (it supports {})", who, name,
           supported_list());
  return isa_table(name);
}

const Isa* initial_isa() {
  if (const char* env = std::getenv("SCRATCHNET_ISA"); env && *env)
    return checked_isa("SCRATCHNET_ISA", env);
  for (const char* name : kIsaNames)
    if (cpu_has(name)) return isa_table(name);
  return &gemm_detail::isa_generic();
}

std::atomic<const Isa*> g_isa{nullptr};

const Isa& active_isa() {
  if (const Isa* isa = g_isa.load(std::memory_order_acquire)) return *isa;
  static const Isa* const initial = initial_isa();  // throws again on the next call if bad
  const Isa* expected = nullptr;
  g_isa.compare_exchange_strong(expected, initial, std::memory_order_acq_rel);
  return *g_isa.load(std::memory_order_acquire);
}

// ---- per-thread packing buffers ---------------------------------------------------------

thread_local ScratchBuffer t_a_buf, t_b_buf;

// ---- packing (portable versions) --------------------------------------------------------

// dst (kc, nr) panels of B(p, j) = b[p * ldb + j], j < n, zero padded to whole panels. Row by
// row: reading along b's rows lets the hardware prefetch them (panel by panel, the reads jump
// between kc rows and miss when b comes from memory); the next row, a stride away, is asked
// for as the row is copied.
void pack_b_copy(float* dst, const float* b, int64_t ldb, int64_t kc, int64_t n, int nr) {
  constexpr int64_t kLine = 64 / sizeof(float);
  for (int64_t p = 0; p < kc; ++p)
    for (int64_t j0 = 0; j0 < n; j0 += nr) {
      const int64_t w = std::min<int64_t>(nr, n - j0);
      if (p + 1 < kc)
        for (int64_t k = 0; k < w; k += kLine) __builtin_prefetch(b + (p + 1) * ldb + j0 + k);
      float* row = dst + (j0 / nr) * kc * nr + p * nr;
      std::memcpy(row, b + p * ldb + j0, static_cast<size_t>(w) * sizeof(float));
      std::fill(row + w, row + nr, 0.0f);
    }
}

// As pack_b_copy for B(p, j) = b[j * ldb + p] (b stored (n, kc)).
void pack_b_trans(float* dst, const float* b, int64_t ldb, int64_t kc, int64_t n, int nr) {
  for (int64_t j0 = 0; j0 < n; j0 += nr) {
    const int64_t w = std::min<int64_t>(nr, n - j0);
    float* panel = dst + (j0 / nr) * kc * nr;
    for (int64_t j = 0; j < w; ++j) {  // along each row of b, down one column of the panel
      const float* row = b + (j0 + j) * ldb;
      for (int64_t p = 0; p < kc; ++p) panel[p * nr + j] = row[p];
    }
    for (int64_t p = 0; p < kc; ++p) std::fill(panel + p * nr + w, panel + (p + 1) * nr, 0.0f);
  }
}

// ---- planning and running ---------------------------------------------------------------

// What every thread shares: the path and the K blocking, both fixed by the whole shape, so
// the order of the sums never depends on the split.
struct Plan {
  const Isa* isa;
  bool dot;    // the small-M dot-product path
  int64_t kc;  // K block: K cut into near-equal blocks (multiples of 16) of at most kc_max
};

Plan make_plan(const GemmArgs& g) {
  const Isa& isa = active_isa();
  Plan plan{&isa, false, g.k};
  plan.dot = isa.dot && g.trans_b && !g.trans_a && g.m <= isa.dot_max_m;
  const int64_t blocks = (g.k + isa.kc_max - 1) / isa.kc_max;
  if (blocks > 1) plan.kc = ((g.k + blocks - 1) / blocks + 15) / 16 * 16;
  return plan;
}

// b (K, n columns) is read in place when packing it gains nothing: it is not transposed, small
// enough to stay in cache, and its rows do not alias in the cache.
bool b_in_place(const GemmArgs& g, const Isa& isa, int64_t n) {
  if (g.trans_b || !isa.b_in_place_ok) return false;
  const bool aliasing = g.ldb % 256 == 0;  // rows 1 KiB apart share cache sets
  return !aliasing && g.k * n <= (int64_t{1} << 18);
}

// c rows [m0, m1) x columns [n0, n1).
void run_range(const GemmArgs& g, const Plan& plan, int64_t m0, int64_t m1, int64_t n0,
               int64_t n1) {
  const Isa& isa = *plan.isa;
  if (plan.dot) {
    isa.dot(Dot{.m = m1 - m0,
                .n = n1 - n0,
                .k = g.k,
                .a = g.a + m0 * g.lda,
                .lda = g.lda,
                .b = g.b + n0 * g.ldb,
                .ldb = g.ldb,
                .c = g.c + m0 * g.ldc + n0,
                .ldc = g.ldc,
                .beta = g.beta});
    return;
  }
  const int64_t nc = std::min(isa.nc, n1 - n0);
  const bool in_place = b_in_place(g, isa, n1 - n0);
  float* b_buf = in_place ? nullptr : t_b_buf.get(plan.kc * ((nc + isa.nr - 1) / isa.nr) * isa.nr);
  float* a_buf = t_a_buf.get(plan.kc * isa.mr);
  for (int64_t p0 = 0; p0 < g.k; p0 += plan.kc) {
    const int64_t kc = std::min(plan.kc, g.k - p0);
    for (int64_t j0 = n0; j0 < n1; j0 += nc) {
      const int64_t n = std::min(nc, n1 - j0);
      Block blk{.m = m1 - m0,
                .n = n,
                .kc = kc,
                .a = g.trans_a ? g.a + p0 * g.lda + m0 : g.a + m0 * g.lda + p0,
                .lda = g.lda,
                .a_trans = g.trans_a,
                .a_buf = a_buf,
                .b = nullptr,
                .b_rs = isa.nr,
                .b_panel = kc * isa.nr,
                .c = g.c + m0 * g.ldc + j0,
                .ldc = g.ldc,
                .beta = p0 == 0 ? g.beta : 1.0f};
      if (in_place) {
        blk.b = g.b + p0 * g.ldb + j0;
        blk.b_rs = g.ldb;
        blk.b_panel = isa.nr;
      } else if (g.trans_b) {
        const float* src = g.b + j0 * g.ldb + p0;
        if (isa.pack_b_trans)
          isa.pack_b_trans(b_buf, src, g.ldb, kc, n);
        else
          pack_b_trans(b_buf, src, g.ldb, kc, n, isa.nr);
        blk.b = b_buf;
      } else {
        pack_b_copy(b_buf, g.b + p0 * g.ldb + j0, g.ldb, kc, n, isa.nr);
        blk.b = b_buf;
      }
      isa.block(blk);
    }
  }
}

void check_args(const GemmArgs& g) {
  SN_CHECK(g.m >= 0 && g.n >= 0 && g.k >= 0, "gemm: sizes must not be negative, got m={} n={} k={}",
           g.m, g.n, g.k);
  if (g.m == 0 || g.n == 0) return;
  SN_CHECK(g.c != nullptr, "gemm: c is null for a {}x{} product", g.m, g.n);
  SN_CHECK(g.ldc >= g.n, "gemm: ldc {} is less than the row length {} of c", g.ldc, g.n);
  if (g.k == 0) return;
  SN_CHECK(g.a != nullptr && g.b != nullptr, "gemm: a or b is null for m={} n={} k={}", g.m, g.n,
           g.k);
  const int64_t a_row = g.trans_a ? g.m : g.k, b_row = g.trans_b ? g.k : g.n;
  SN_CHECK(g.lda >= a_row, "gemm: lda {} is less than the row length {} of a", g.lda, a_row);
  SN_CHECK(g.ldb >= b_row, "gemm: ldb {} is less than the row length {} of b", g.ldb, b_row);
}

// K = 0: c = beta * c (zero for beta = 0, whatever c held).
void scale_c(const GemmArgs& g) {
  for (int64_t i = 0; i < g.m; ++i) {
    float* row = g.c + i * g.ldc;
    if (g.beta == 0.0f)
      std::fill(row, row + g.n, 0.0f);
    else if (g.beta != 1.0f)
      for (int64_t j = 0; j < g.n; ++j) row[j] *= g.beta;
  }
}

}  // namespace

void gemm(const GemmArgs& g) {
  check_args(g);
  if (g.m == 0 || g.n == 0) return;
  if (g.k == 0) return scale_c(g);
  run_range(g, make_plan(g), 0, g.m, 0, g.n);
}

void gemm_parallel(const GemmArgs& g) {
  check_args(g);
  if (g.m == 0 || g.n == 0) return;
  if (g.k == 0) return scale_c(g);
  const Plan plan = make_plan(g);
  const int64_t threads = num_threads();
  const bool small =
      plan.dot ? g.n * g.k < kMinParallelDotFloats : 2 * g.m * g.n * g.k < kMinParallelFlops;
  if (threads == 1 || small) {
    run_range(g, plan, 0, g.m, 0, g.n);
    return;
  }
  // Rows (slices of mr) when b is read in place and there are enough of them: the threads then
  // share b and keep whole column panels. Otherwise whichever of rows or columns (units of 16)
  // leaves the largest share smaller, columns on a tie so that each thread packs only its part
  // of b. The dot path only splits columns.
  const int64_t mr = plan.isa->mr;
  const int64_t row_units = plan.dot ? 1 : (g.m + mr - 1) / mr;
  const int64_t col_units = (g.n + kColUnit - 1) / kColUnit;
  const auto largest = [&](int64_t units) { return (units + threads - 1) / threads; };
  const bool rows_share_b = !plan.dot && row_units >= threads && b_in_place(g, *plan.isa, g.n);
  if (!rows_share_b && largest(col_units) * row_units <= largest(row_units) * col_units) {
    parallel_for(col_units, [&](int64_t begin, int64_t end) {
      run_range(g, plan, 0, g.m, begin * kColUnit, std::min(g.n, end * kColUnit));
    });
  } else {
    parallel_for(row_units, [&](int64_t begin, int64_t end) {
      run_range(g, plan, begin * mr, std::min(g.m, end * mr), 0, g.n);
    });
  }
}

const char* gemm_isa() { return active_isa().name; }

void set_gemm_isa(const char* name) {
  g_isa.store(checked_isa("set_gemm_isa", name ? name : ""), std::memory_order_release);
}

bool gemm_isa_supported(const char* name) { return name && known_isa(name) && cpu_has(name); }

}  // namespace scratchnet
