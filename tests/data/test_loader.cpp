#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <set>

#include "scratchnet/data/loader.h"
#include "support/error.h"

namespace scratchnet {
namespace {

using testing::error_of;
using ::testing::HasSubstr;

// n one-pixel images whose pixel value is the item index, labels index % 10.
Dataset counting_set(int64_t n) {
  Dataset set;
  set.source = "counting";
  set.height = set.width = 1;
  for (int64_t i = 0; i < n; ++i) {
    set.images.push_back(static_cast<uint8_t>(i));
    set.labels.push_back(static_cast<int32_t>(i % 10));
  }
  for (int i = 0; i < 10; ++i) set.class_names.push_back(std::to_string(i));
  return set;
}

std::vector<int> epoch_items(BatchLoader& loader, int64_t epoch,
                             std::vector<int64_t>* sizes = nullptr) {
  std::vector<int> items;
  loader.start_epoch(epoch);
  while (const Batch* b = loader.next()) {
    if (sizes) sizes->push_back(b->images.dim(0));
    for (int64_t i = 0; i < b->images.dim(0); ++i) {
      int item = static_cast<int>(std::lround(b->images[i] * 255.0f));
      EXPECT_EQ(b->labels[i], item % 10);
      items.push_back(item);
    }
  }
  return items;
}

TEST(Loader, EveryItemOncePerEpochWithAPartialLastBatch) {
  Dataset set = counting_set(103);
  BatchLoader loader(set, {.batch_size = 10, .shuffle = true, .seed = 5});
  EXPECT_EQ(loader.batches_per_epoch(), 11);
  std::vector<int64_t> sizes;
  auto items = epoch_items(loader, 0, &sizes);
  ASSERT_EQ(items.size(), 103u);
  EXPECT_EQ(sizes.back(), 3);
  std::sort(items.begin(), items.end());
  for (int i = 0; i < 103; ++i) EXPECT_EQ(items[i], i);
}

TEST(Loader, DropLast) {
  Dataset set = counting_set(103);
  BatchLoader loader(set, {.batch_size = 10, .drop_last = true});
  EXPECT_EQ(loader.batches_per_epoch(), 10);
  EXPECT_EQ(epoch_items(loader, 0).size(), 100u);
}

TEST(Loader, OrderDependsOnlyOnSeedAndEpoch) {
  Dataset set = counting_set(200);
  BatchLoader a(set, {.batch_size = 16, .seed = 1});
  BatchLoader b(set, {.batch_size = 16, .seed = 1});
  BatchLoader c(set, {.batch_size = 16, .seed = 2});
  auto a0 = epoch_items(a, 0), a1 = epoch_items(a, 1);
  EXPECT_NE(a0, a1);
  EXPECT_EQ(epoch_items(b, 1), a1);  // epoch 1 straight away, as a resumed run does
  EXPECT_EQ(epoch_items(b, 0), a0);
  EXPECT_NE(epoch_items(c, 0), a0);
}

TEST(Loader, NoShuffleKeepsFileOrder) {
  Dataset set = counting_set(25);
  BatchLoader loader(set, {.batch_size = 4, .shuffle = false});
  auto items = epoch_items(loader, 3);
  for (int i = 0; i < 25; ++i) EXPECT_EQ(items[i], i);
}

TEST(Loader, SkipResumesInsideAnEpoch) {
  Dataset set = counting_set(100);
  BatchLoader loader(set, {.batch_size = 8, .seed = 3});
  auto all = epoch_items(loader, 2);
  loader.start_epoch(2, 5);
  std::vector<int> rest;
  while (const Batch* b = loader.next())
    for (int64_t i = 0; i < b->images.dim(0); ++i)
      rest.push_back(static_cast<int>(std::lround(b->images[i] * 255.0f)));
  EXPECT_EQ(rest, std::vector<int>(all.begin() + 40, all.end()));
}

TEST(Loader, RestartingAnEpochHalfwayIsSafe) {
  Dataset set = counting_set(100);
  BatchLoader loader(set, {.batch_size = 8, .seed = 3});
  auto full = epoch_items(loader, 0);
  loader.start_epoch(0);
  loader.next();
  loader.next();
  EXPECT_EQ(epoch_items(loader, 0), full);
}

TEST(Loader, BadOptions) {
  Dataset set = counting_set(10);
  EXPECT_THAT(error_of([&] { BatchLoader l(set, {.batch_size = 0}); }),
              HasSubstr("batch size must be at least 1, got 0"));
  Dataset empty = counting_set(0);
  EXPECT_THAT(error_of([&] { BatchLoader l(empty, {}); }),
              HasSubstr("counting: the data set is empty"));
}

}  // namespace
}  // namespace scratchnet
