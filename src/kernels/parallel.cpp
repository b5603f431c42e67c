// A persistent pool: parallel_for hands chunk i to worker i-1 and runs chunk 0 itself, then
// any chunk whose worker has not started it yet (a worker whose core the machine has taken
// away, or still waking up): each chunk is claimed once per call, by its worker or by the
// caller, and the chunks are the same whoever runs them. Nested calls (from inside a chunk)
// run inline.
#include "scratchnet/parallel.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
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
    const uint64_t call = generation_.load(std::memory_order_relaxed) + 1;
    fn_.store(&fn, std::memory_order_relaxed);
    n_.store(n, std::memory_order_relaxed);
    chunks_.store(chunks, std::memory_order_relaxed);
    error_ = nullptr;
    pending_.store(chunks - 1, std::memory_order_relaxed);
    spin_.store(chunks <= hardware_threads(), std::memory_order_relaxed);
    for (size_t i = static_cast<size_t>(chunks); i < claimed_.size(); ++i)  // no such chunk
      claimed_[i].store(call, std::memory_order_relaxed);
    {
      std::lock_guard<std::mutex> lock(mu_);
      generation_.store(call, std::memory_order_release);
    }
    cv_work_.notify_all();
    run_chunk(fn, n, chunks, 0);
    for (int i = 1; i < chunks; ++i)
      if (claim(claimed_[static_cast<size_t>(i)], call)) {
        run_chunk(fn, n, chunks, i);
        pending_.fetch_sub(1, std::memory_order_acq_rel);
      }
    auto done = [&] { return pending_.load(std::memory_order_acquire) == 0; };
    if (!(spin_.load(std::memory_order_relaxed) && spin_until(done))) {
      std::unique_lock<std::mutex> lock(mu_);
      cv_done_.wait(lock, done);
    }
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

  // Chunk `call` of a call: true for the one that takes it.
  static bool claim(std::atomic<uint64_t>& chunk, uint64_t call) {
    uint64_t last = chunk.load(std::memory_order_acquire);
    return last < call && chunk.compare_exchange_strong(last, call, std::memory_order_acq_rel);
  }

  void run_chunk(const std::function<void(int64_t, int64_t)>& fn, int64_t n, int chunks, int i) {
    int64_t begin = n * i / chunks, end = n * (i + 1) / chunks;
    if (begin == end) return;
    t_in_parallel = true;
    try {
      fn(begin, end);
    } catch (...) {
      std::lock_guard<std::mutex> lock(mu_);
      if (!error_) error_ = std::current_exception();
    }
    t_in_parallel = false;
  }

  void ensure_workers(int count) {
    if (claimed_.empty()) claimed_.emplace_back(0);  // chunk 0, the caller's
    while (static_cast<int>(workers_.size()) < count) {
      int index = static_cast<int>(workers_.size()) + 1;
      std::atomic<uint64_t>* mine = &claimed_.emplace_back(0);  // deque: stays in place
      workers_.emplace_back([this, index, mine] { worker(index, *mine); });
    }
  }

  // Waits for calls; takes its chunk of each unless the caller took it first. The call's
  // fields are read before the claim: when the claim succeeds the call is still running (its
  // chunk is not done), so they were that call's.
  void worker(int index, std::atomic<uint64_t>& mine) {
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
      const auto* fn = fn_.load(std::memory_order_relaxed);
      const int64_t n = n_.load(std::memory_order_relaxed);
      const int chunks = chunks_.load(std::memory_order_relaxed);
      if (index >= chunks || !claim(mine, seen)) continue;
      run_chunk(*fn, n, chunks, index);
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
  std::deque<std::atomic<uint64_t>> claimed_;  // per chunk: the last call that claimed it
  std::atomic<const std::function<void(int64_t, int64_t)>*> fn_{nullptr};
  std::atomic<int64_t> n_{0};
  std::atomic<int> chunks_{0};
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
