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
// threads, and returns when all are done. Runs inline when n is small or one thread is set.
// An exception thrown by fn is rethrown in the caller.
void parallel_for(int64_t n, const std::function<void(int64_t begin, int64_t end)>& fn);

}  // namespace scratchnet
