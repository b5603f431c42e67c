#include <fmt/format.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>

#include "scratchnet/data/dataset.h"
#include "support/error.h"
#include "support/fixtures.h"
#include "support/temp_dir.h"

namespace scratchnet {
namespace {

using testing::error_of;
using ::testing::HasSubstr;
using testing::TempDir;

TEST(Dataset, LoadsADirectoryOfIdxFiles) {
  TempDir dir;
  testing::make_idx_set(dir.path().string(), 50, 20);
  DatasetSplits s = load_dataset(dir.path().string(), "unused");
  EXPECT_EQ(s.train.size(), 50);
  EXPECT_EQ(s.test.size(), 20);
  EXPECT_EQ(s.train.sample_shape(), (Shape{1, 28, 28}));
  EXPECT_EQ(s.train.num_classes(), 10);
  EXPECT_EQ(s.train.images.size(), 50u * 28 * 28);
}

TEST(Dataset, NamedSetIsLookedUpUnderTheDataDirectory) {
  TempDir dir;
  std::filesystem::create_directories(dir.path() / "fashion-mnist");
  testing::make_idx_set((dir.path() / "fashion-mnist").string(), 10, 10);
  DatasetSplits s = load_dataset("fashion-mnist", dir.path().string());
  EXPECT_EQ(s.train.class_names[9], "Ankle boot");
}

TEST(Dataset, MissingDataDirectorySaysHowToFetch) {
  TempDir dir;
  EXPECT_THAT(
      error_of([&] { load_dataset("mnist", dir / "nowhere"); }),
      HasSubstr("dataset 'mnist' not found in " + (dir / "nowhere") +
                "/mnist: run scripts/fetch-data.sh --data-dir " + (dir / "nowhere") + " mnist"));
}

TEST(Dataset, UnknownNameThatIsNoDirectory) {
  EXPECT_THAT(error_of([] { load_dataset("cifar", "data"); }),
              HasSubstr("dataset 'cifar' is neither a known name (mnist, fashion-mnist) nor a "
                        "directory"));
}

TEST(Dataset, MissingFileInDirectory) {
  TempDir dir;
  testing::make_idx_set(dir.path().string(), 5, 5);
  std::filesystem::remove(dir / "t10k-labels-idx1-ubyte");
  EXPECT_THAT(error_of([&] { load_dataset(dir.path().string(), "data"); }),
              HasSubstr("missing t10k-labels-idx1-ubyte (or t10k-labels-idx1-ubyte.gz)"));
}

TEST(Dataset, ImageAndLabelCountsMustAgree) {
  TempDir dir;
  write_idx(dir / "img", IdxArray{{3, 2, 2}, std::vector<uint8_t>(12, 0)});
  write_idx(dir / "lab", IdxArray{{4}, {0, 1, 2, 3}});
  EXPECT_THAT(error_of([&] {
                load_idx_dataset(dir / "img", dir / "lab", {"a", "b", "c", "d"});
              }),
              HasSubstr("img has 3 images but " + (dir / "lab") + " has 4 labels"));
}

TEST(Dataset, LabelOutOfRange) {
  TempDir dir;
  write_idx(dir / "img", IdxArray{{3, 2, 2}, std::vector<uint8_t>(12, 0)});
  write_idx(dir / "lab", IdxArray{{3}, {0, 12, 1}});
  EXPECT_THAT(
      error_of([&] { load_idx_dataset(dir / "img", dir / "lab", dataset_class_names("mnist")); }),
      HasSubstr("lab: label 12 at index 1 is out of range for 10 classes"));
}

TEST(Dataset, ImagesMustBeThreeDimensional) {
  TempDir dir;
  write_idx(dir / "img", IdxArray{{3}, {0, 1, 2}});
  write_idx(dir / "lab", IdxArray{{3}, {0, 1, 2}});
  EXPECT_THAT(error_of([&] {
                load_idx_dataset(dir / "img", dir / "lab", {"a", "b", "c"});
              }),
              HasSubstr("img: expected images of shape (N, H, W), got 1 dimensions"));
}

TEST(Dataset, MakeBatchScalesAndNormalises) {
  Dataset set;
  set.height = 1;
  set.width = 2;
  set.images = {0, 255, 51, 102};
  set.labels = {0, 1};
  set.class_names = {"a", "b"};
  int64_t order[] = {1, 0};
  Tensor x;
  make_batch(x, set, order, 2, {});
  EXPECT_EQ(x.shape(), (Shape{2, 1, 1, 2}));
  EXPECT_FLOAT_EQ(x[0], 0.2f);
  EXPECT_FLOAT_EQ(x[1], 0.4f);
  EXPECT_FLOAT_EQ(x[3], 1.0f);
  make_batch(x, set, order, 1, {.normalize = true, .mean = 0.1307f, .std = 0.3081f});
  EXPECT_FLOAT_EQ(x[0], (0.2f - 0.1307f) / 0.3081f);
}

TEST(Dataset, TakeFirst) {
  TempDir dir;
  testing::make_idx_set(dir.path().string(), 30, 5);
  Dataset d = load_dataset(dir.path().string(), "").train;
  Dataset sub = take_first(d, 7);
  EXPECT_EQ(sub.size(), 7);
  EXPECT_EQ(sub.labels[6], d.labels[6]);
  EXPECT_EQ(sub.images.size(), 7u * 28 * 28);
  EXPECT_THAT(error_of([&] { take_first(d, 31); }), HasSubstr("cannot take 31 items"));
}

TEST(Dataset, TakePerClassKeepsTheFirstNOfEachClassInOrder) {
  Dataset d;
  d.source = "toy";
  d.height = d.width = 1;
  d.class_names = {"a", "b", "c"};
  d.labels = {2, 0, 0, 1, 2, 0, 1, 2, 1};
  d.images = {10, 11, 12, 13, 14, 15, 16, 17, 18};  // one pixel each: its position
  Dataset sub = take_per_class(d, 2);
  EXPECT_EQ(sub.labels, (std::vector<int32_t>{2, 0, 0, 1, 2, 1}));
  EXPECT_EQ(sub.images, (std::vector<uint8_t>{10, 11, 12, 13, 14, 16}));
  EXPECT_EQ(sub.class_names, d.class_names);
  EXPECT_EQ(error_of([&] { take_per_class(d, 4); }),
            "toy: class 'a' has 3 images, fewer than the 4 per class asked for");
  EXPECT_EQ(error_of([&] { take_per_class(d, 0); }), "cannot take 0 items per class from toy");
}

// A set of one-pixel images whose pixel is the item's index (mod 256): class c has
// counts[c] items, the classes interleaved.
Dataset indexed_set(const std::vector<int64_t>& counts) {
  Dataset d;
  d.source = "toy";
  d.height = d.width = 1;
  std::vector<int64_t> left = counts;
  for (size_t c = 0; c < counts.size(); ++c) d.class_names.push_back(std::to_string(c));
  for (bool any = true; any;) {
    any = false;
    for (size_t c = 0; c < counts.size(); ++c)
      if (left[c]-- > 0) {
        d.labels.push_back(static_cast<int32_t>(c));
        d.images.push_back(static_cast<uint8_t>(d.labels.size() - 1));
        any = true;
      }
  }
  return d;
}

TEST(ValidationSplit, StratifiedDisjointAndCoveringTheSet) {
  const Dataset d = indexed_set({40, 30, 20, 11, 1});
  const ValidationSplit s = take_validation_split(d, 0.1, 7);
  // round(0.1 n) of each class: 4, 3, 2, 1 and none of the class of one.
  std::vector<int64_t> per_class(5, 0);
  for (int32_t label : s.validation.labels) ++per_class[label];
  EXPECT_EQ(per_class, (std::vector<int64_t>{4, 3, 2, 1, 0}));
  ASSERT_EQ(s.held_out.size(), 10u);
  EXPECT_TRUE(std::is_sorted(s.held_out.begin(), s.held_out.end()));
  EXPECT_EQ(s.train.size() + s.validation.size(), d.size());
  // Every item lands in exactly one part, with its label, in the set's order.
  std::vector<int> seen(d.size(), 0);
  for (const Dataset* part : {&s.train, &s.validation})
    for (int64_t i = 0; i < part->size(); ++i) {
      const uint8_t index = part->images[i];
      ++seen[index];
      EXPECT_EQ(part->labels[i], d.labels[index]);
      if (i > 0) {
        EXPECT_LT(part->images[i - 1], index);
      }
    }
  EXPECT_EQ(seen, std::vector<int>(d.size(), 1));
  for (size_t j = 0; j < s.held_out.size(); ++j) EXPECT_EQ(s.validation.images[j], s.held_out[j]);
  EXPECT_EQ(s.validation.class_names, d.class_names);
}

TEST(ValidationSplit, SeededAndReproducible) {
  const Dataset d = indexed_set({50, 50, 50});
  EXPECT_EQ(take_validation_split(d, 0.2, 3).held_out, take_validation_split(d, 0.2, 3).held_out);
  EXPECT_NE(take_validation_split(d, 0.2, 3).held_out, take_validation_split(d, 0.2, 4).held_out);
  // A recorded split comes back exactly.
  const ValidationSplit s = take_validation_split(d, 0.2, 3);
  const ValidationSplit again = split_validation(d, s.held_out);
  EXPECT_EQ(again.train.images, s.train.images);
  EXPECT_EQ(again.validation.labels, s.validation.labels);
}

TEST(ValidationSplit, BadFractionsAndIndices) {
  const Dataset d = indexed_set({4, 4});
  for (double f : {0.0, 1.0, -0.1, 1.5})
    EXPECT_EQ(error_of([&] { take_validation_split(d, f, 1); }),
              fmt::format("validation fraction must be in (0, 1), got {}", f));
  EXPECT_EQ(error_of([&] { take_validation_split(d, 0.1, 1); }),
            "validation fraction 0.1 holds out no image of toy (8 images): give a larger "
            "fraction");
  EXPECT_EQ(error_of([&] {
              split_validation(d, {3, 2});
            }),
            "toy: held-out index 2 is out of order or past the set's 8 images");
  EXPECT_EQ(error_of([&] {
              split_validation(d, {1, 8});
            }),
            "toy: held-out index 8 is out of order or past the set's 8 images");
}

}  // namespace
}  // namespace scratchnet
