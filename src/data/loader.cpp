#include "scratchnet/data/loader.h"

#include <numeric>

#include "scratchnet/check.h"
#include "scratchnet/rng.h"

namespace scratchnet {

BatchLoader::BatchLoader(const Dataset& set, const LoaderOptions& options)
    : set_(set), options_(options) {
  SN_CHECK(options.batch_size >= 1, "batch size must be at least 1, got {}", options.batch_size);
  SN_CHECK(set.size() >= 1, "{}: the data set is empty", set.source);
  SN_CHECK(!options.preprocess.normalize || options.preprocess.std > 0,
           "normalisation std must be positive, got {}", options.preprocess.std);
  check_augment(options.augment);
  order_.resize(set.size());
  if (options.augment.active()) augmented_.resize(shape_numel(set.sample_shape()));
  thread_ = std::thread([this] { worker(); });
}

BatchLoader::~BatchLoader() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    quit_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

int64_t BatchLoader::batches_per_epoch() const {
  int64_t n = set_.size(), b = options_.batch_size;
  return options_.drop_last ? n / b : (n + b - 1) / b;
}

void BatchLoader::start_epoch(int64_t epoch, int64_t skip) {
  std::unique_lock<std::mutex> lock(mu_);
  ++generation_;  // the worker abandons what it was preparing
  cv_.wait(lock, [&] { return !busy_; });
  std::iota(order_.begin(), order_.end(), 0);
  if (options_.shuffle) {
    // Fisher–Yates from a stream that depends only on (seed, epoch).
    Rng rng(options_.seed ^ (0x9e3779b97f4a7c15ULL * static_cast<uint64_t>(epoch + 1)));
    for (int64_t i = static_cast<int64_t>(order_.size()) - 1; i > 0; --i)
      std::swap(order_[i], order_[rng.below(static_cast<uint64_t>(i) + 1)]);
  }
  end_ = batches_per_epoch();
  epoch_ = epoch;
  SN_CHECK(skip >= 0 && skip <= end_, "cannot skip {} of {} batches", skip, end_);
  next_ = filled_ = skip;
  lock.unlock();
  cv_.notify_all();
}

const Batch* BatchLoader::next() {
  std::unique_lock<std::mutex> lock(mu_);
  if (next_ >= end_) return nullptr;
  int64_t i = next_++;
  cv_.notify_all();  // slot of batch i - 1 is free again
  cv_.wait(lock, [&] { return filled_ > i; });
  return &slots_[i % 2];
}

void BatchLoader::fill(Batch& batch, int64_t index, int64_t epoch) {
  int64_t begin = index * options_.batch_size;
  int64_t count = std::min<int64_t>(options_.batch_size, set_.size() - begin);
  if (options_.augment.active()) {
    const int64_t pixels = shape_numel(set_.sample_shape());
    batch.images.resize({count, set_.channels, set_.height, set_.width});
    for (int64_t i = 0; i < count; ++i) {
      Rng rng(augment_seed(options_.seed, epoch, begin + i));
      augment_image(augmented_.data(), set_.image(order_[begin + i]), set_.channels, set_.height,
                    set_.width, options_.augment, rng, augment_scratch_);
      preprocess_pixels(batch.images.data() + i * pixels, augmented_.data(), pixels,
                        options_.preprocess);
    }
  } else {
    make_batch(batch.images, set_, order_.data() + begin, count, options_.preprocess);
  }
  batch.labels.resize(count);
  for (int64_t i = 0; i < count; ++i) batch.labels[i] = set_.labels[order_[begin + i]];
}

void BatchLoader::worker() {
  std::unique_lock<std::mutex> lock(mu_);
  for (;;) {
    // Batch filled_ may be written once the caller has moved past batch filled_ - 2, whose
    // slot it reuses: that is, once filled_ < next_ + 1.
    cv_.wait(lock, [&] { return quit_ || (filled_ < end_ && filled_ <= next_); });
    if (quit_) return;
    int64_t index = filled_, epoch = epoch_;
    uint64_t generation = generation_;
    busy_ = true;
    lock.unlock();
    fill(slots_[index % 2], index, epoch);
    lock.lock();
    busy_ = false;
    if (generation == generation_) ++filled_;
    cv_.notify_all();
  }
}

}  // namespace scratchnet
