// parallel.h — the thread count used by the kernels.
//
// Kernels split work into contiguous chunks over a dimension whose results do not depend on
// how it is split (batch items for outputs, channels for weight gradients), so results are
// bit-identical for any thread count. Default: the number of hardware threads.
#pragma once

#include <cstdint>
#include <functional>

namespace scratchnet {

void set_num_threads(int n);  // n >= 1
int num_threads();

// Calls fn(begin, end) on disjoint contiguous chunks covering [0, n), on up to num_threads()
// threads, and returns when all are done. Chunks hold at least `grain` items (except when
// n < grain), so runs inline when n < 2 * grain or one thread is set. An exception thrown by
// fn is rethrown in the caller.
void parallel_for(int64_t n, int64_t grain,
                  const std::function<void(int64_t begin, int64_t end)>& fn);
inline void parallel_for(int64_t n, const std::function<void(int64_t begin, int64_t end)>& fn) {
  parallel_for(n, 1, fn);
}

// The grain for items of `work` floats each (a plane, a row, a channel) such that a chunk
// holds at least about 32K floats: handing a thread less costs more than it saves.
int64_t parallel_grain(int64_t work);

}  // namespace scratchnet
