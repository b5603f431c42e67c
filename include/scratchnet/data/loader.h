// loader.h — batches for training and evaluation, prepared in the background.
//
//   BatchLoader loader(train_set, {.batch_size = 64, .shuffle = true, .seed = 1});
//   for (int64_t epoch = 0; epoch < epochs; ++epoch) {
//     loader.start_epoch(epoch);
//     while (const Batch* batch = loader.next()) { ... batch->images (B, C, H, W) ... }
//   }
//
// The order of epoch e depends only on (seed, e), so a run resumed at epoch e sees exactly
// the batches an uninterrupted run would. The last partial batch is kept unless drop_last.
// While the caller works on batch i, a background thread prepares batch i + 1; the two
// batch buffers are allocated once.
//
// With `augment` options (augment.h; training only, never evaluation) the background thread
// augments every image before preprocessing it, drawing from
// Rng(augment_seed(seed, epoch, position)) for the item at `position` in epoch `epoch`: the
// batches depend only on (seed, epoch), as the order does, so a resumed run sees the augmented
// batches an uninterrupted one would. The augmented pixels go through one reused buffer.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <thread>
#include <vector>

#include "scratchnet/data/augment.h"
#include "scratchnet/data/dataset.h"
#include "scratchnet/tensor.h"

namespace scratchnet {

struct LoaderOptions {
  int64_t batch_size = 64;  // >= 1
  bool shuffle = true;
  uint64_t seed = 0;
  bool drop_last = false;
  Preprocess preprocess;
  AugmentOptions augment;  // inactive by default
};

struct Batch {
  Tensor images;                // (B, C, H, W)
  std::vector<int32_t> labels;  // (B)
};

class BatchLoader {
 public:
  // `set` must outlive the loader.
  BatchLoader(const Dataset& set, const LoaderOptions& options);
  ~BatchLoader();
  BatchLoader(const BatchLoader&) = delete;
  BatchLoader& operator=(const BatchLoader&) = delete;

  int64_t batches_per_epoch() const;
  // Starts epoch `epoch` (any order; restarting abandons the current one). `skip` batches
  // are passed over without being prepared, to resume inside an epoch.
  void start_epoch(int64_t epoch, int64_t skip = 0);
  // The next batch of the current epoch, or nullptr at its end. Valid until the next call.
  const Batch* next();

 private:
  void worker();
  void fill(Batch& batch, int64_t index, int64_t epoch);

  const Dataset& set_;
  LoaderOptions options_;
  std::vector<int64_t> order_;
  Batch slots_[2];
  std::mutex mu_;
  std::condition_variable cv_;
  int64_t next_ = 0;    // the batch the caller gets next
  int64_t filled_ = 0;  // batches [0, filled_) are prepared (or skipped)
  int64_t end_ = 0;     // batches in this epoch
  int64_t epoch_ = 0;
  uint64_t generation_ = 0;
  bool busy_ = false, quit_ = false;
  std::vector<uint8_t> augmented_;  // (C, H, W): the image fill() is augmenting; worker only
  AugmentScratch augment_scratch_;  // worker only
  std::thread thread_;
};

}  // namespace scratchnet
