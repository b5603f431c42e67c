// A persistent pool: parallel_for hands chunk i to worker i-1 and runs chunk 0 itself.
// Nested calls (from inside a chunk) run inline.
#include "scratchnet/parallel.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <exception>
#include <mutex>
#include <thread>
#include <vector>

#include "scratchnet/check.h"

namespace scratchnet {

namespace {

thread_local bool t_in_parallel = false;

// Workers and the caller spin for a short while before sleeping: a layer's parallel_for
// calls come microseconds apart, and waking a sleeping thread costs tens of microseconds
// on a virtual machine (single-image latency was 5x worse with two threads than with one).
// Only while there are no more threads than hardware threads: otherwise a spinning thread
// takes the core from the one it waits for.
class Pool {
 public:
  ~Pool() { stop(); }

  void run(int64_t n, int chunks, const std::function<void(int64_t, int64_t)>& fn) {
    std::lock_guard<std::mutex> call_lock(call_mu_);  // one parallel_for at a time
    ensure_workers(chunks - 1);
    fn_ = &fn;
    n_ = n;
    chunks_ = chunks;
    error_ = nullptr;
    pending_.store(chunks - 1, std::memory_order_relaxed);
    spin_.store(chunks <= hardware_threads(), std::memory_order_relaxed);
    {
      std::lock_guard<std::mutex> lock(mu_);
      generation_.fetch_add(1, std::memory_order_release);
    }
    cv_work_.notify_all();
    run_chunk(0);
    auto done = [&] { return pending_.load(std::memory_order_acquire) == 0; };
    if (!(spin_.load(std::memory_order_relaxed) && spin_until(done))) {
      std::unique_lock<std::mutex> lock(mu_);
      cv_done_.wait(lock, done);
    }
    fn_ = nullptr;
    if (error_) std::rethrow_exception(error_);
  }

 private:
  // Polls done() for up to kSpin; true when it became true.
  template <typename Done>
  static bool spin_until(Done done) {
    constexpr auto kSpin = std::chrono::microseconds(200);
    auto start = std::chrono::steady_clock::now();
    for (int i = 1;; ++i) {
      if (done()) return true;
      cpu_relax();
      if (i % 64 == 0 && std::chrono::steady_clock::now() - start > kSpin) return done();
    }
  }

  static int hardware_threads() {
    static const int n = static_cast<int>(std::thread::hardware_concurrency());
    return n;
  }

  static void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#else
    std::this_thread::yield();
#endif
  }

  void run_chunk(int i) {
    int64_t begin = n_ * i / chunks_, end = n_ * (i + 1) / chunks_;
    if (begin == end) return;
    t_in_parallel = true;
    try {
      (*fn_)(begin, end);
    } catch (...) {
      std::lock_guard<std::mutex> lock(mu_);
      if (!error_) error_ = std::current_exception();
    }
    t_in_parallel = false;
  }

  void ensure_workers(int count) {
    while (static_cast<int>(workers_.size()) < count) {
      int index = static_cast<int>(workers_.size()) + 1;
      workers_.emplace_back([this, index] { worker(index); });
    }
  }

  void worker(int index) {
    uint64_t seen = 0;
    for (;;) {
      auto ready = [&] {
        return quit_.load(std::memory_order_acquire) ||
               generation_.load(std::memory_order_acquire) != seen;
      };
      if (!(spin_.load(std::memory_order_relaxed) && spin_until(ready))) {
        std::unique_lock<std::mutex> lock(mu_);
        cv_work_.wait(lock, ready);
      }
      if (quit_.load(std::memory_order_acquire)) return;
      seen = generation_.load(std::memory_order_acquire);
      if (index >= chunks_) continue;
      run_chunk(index);
      if (pending_.fetch_sub(1, std::memory_order_acq_rel) == 1) {
        std::lock_guard<std::mutex> lock(mu_);
        cv_done_.notify_one();
      }
    }
  }

  void stop() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      quit_.store(true, std::memory_order_release);
    }
    cv_work_.notify_all();
    for (auto& t : workers_) t.join();
  }

  std::mutex call_mu_, mu_;
  std::condition_variable cv_work_, cv_done_;
  std::vector<std::thread> workers_;
  const std::function<void(int64_t, int64_t)>* fn_ = nullptr;
  int64_t n_ = 0;
  int chunks_ = 0;
  std::atomic<int> pending_{0};
  std::atomic<uint64_t> generation_{0};
  std::atomic<bool> quit_{false}, spin_{false};
  std::exception_ptr error_;
};

Pool& pool() {
  static Pool p;
  return p;
}

int default_threads() { return std::max(1u, std::thread::hardware_concurrency()); }
int g_num_threads = default_threads();

}  // namespace

void set_num_threads(int n) {
  SN_CHECK(n >= 1, "thread count must be at least 1, got {}", n);
  g_num_threads = n;
}

int num_threads() { return g_num_threads; }

int64_t parallel_grain(int64_t work) {
  constexpr int64_t kMinChunk = int64_t{1} << 15;
  return std::max<int64_t>(1, kMinChunk / std::max<int64_t>(work, 1));
}

void parallel_for(int64_t n, int64_t grain, const std::function<void(int64_t, int64_t)>& fn) {
  if (n <= 0) return;
  int chunks = static_cast<int>(std::min<int64_t>(g_num_threads, n / std::max<int64_t>(grain, 1)));
  if (chunks <= 1 || t_in_parallel) {
    fn(0, n);
    return;
  }
  pool().run(n, chunks, fn);
}

}  // namespace scratchnet
