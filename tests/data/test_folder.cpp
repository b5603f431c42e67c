#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <stb_image_write.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <set>

#include "scratchnet/data/folder.h"
#include "scratchnet/parallel.h"
#include "support/error.h"
#include "support/fixtures.h"
#include "support/temp_dir.h"

namespace scratchnet {
namespace {

namespace fs = std::filesystem;
using ::testing::ElementsAre;
using testing::error_of;
using ::testing::HasSubstr;
using testing::TempDir;

// Writes a 48 x 40 picture of a dark bar on white paper; `variant` moves and tilts the bar so
// that different files give different digits. PNG or JPEG by the extension.
void write_picture(const fs::path& path, int variant) {
  const int h = 48, w = 40;
  std::vector<uint8_t> px(h * w);  // (h, w)
  const float y0 = 6 + variant % 5, x0 = 8 + variant % 7, y1 = 40 - variant % 3,
              x1 = 30 - variant % 11;
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x) {
      const float dy = y1 - y0, dx = x1 - x0;
      const float t = std::clamp(((y - y0) * dy + (x - x0) * dx) / (dy * dy + dx * dx), 0.f, 1.f);
      const float d = std::hypot(y - (y0 + t * dy), x - (x0 + t * dx));
      px[y * w + x] = static_cast<uint8_t>(std::lround(255 * std::clamp(d - 2.0f, 0.0f, 1.0f)));
    }
  fs::create_directories(path.parent_path());
  const std::string ext = path.extension().string();
  const bool ok = ext == ".png" ? stbi_write_png(path.c_str(), w, h, 1, px.data(), w)
                                : stbi_write_jpg(path.c_str(), w, h, 1, px.data(), 95);
  ASSERT_TRUE(ok) << path;
}

void write_text(const fs::path& path, const std::string& text) {
  fs::create_directories(path.parent_path());
  std::ofstream(path) << text;
}

std::vector<uint8_t> converted(const fs::path& path) {
  std::vector<uint8_t> d;
  to_mnist_style(d, read_image(path.string()));
  return d;
}

std::vector<uint8_t> item(const Dataset& set, int64_t i) {
  return {set.image(i), set.image(i) + set.height * set.width};
}

// n pictures per class in dir/<class>/.
void make_folder(const fs::path& dir, const std::vector<std::string>& classes, int n) {
  int variant = 0;
  for (const std::string& c : classes)
    for (int i = 0; i < n; ++i)
      write_picture(dir / c / ("img" + std::to_string(10 + i) + (i % 2 ? ".jpg" : ".png")),
                    variant++);
}

TEST(Folder, ClassesAreSortedFolderNamesAndFilesAreReadInNameOrder) {
  TempDir dir;
  write_picture(dir.path() / "cat" / "b.png", 1);
  write_picture(dir.path() / "cat" / "a.JPG", 2);
  write_picture(dir.path() / "ant" / "z.jpeg", 3);
  write_picture(dir.path() / "dog" / "c.png", 4);
  Dataset set = load_image_folder(dir.path().string());
  EXPECT_THAT(set.class_names, ElementsAre("ant", "cat", "dog"));
  EXPECT_THAT(set.labels, ElementsAre(0, 1, 1, 2));
  EXPECT_EQ(set.sample_shape(), (Shape{1, 28, 28}));
  EXPECT_EQ(set.source, dir.path().string());
  EXPECT_EQ(item(set, 0), converted(dir.path() / "ant" / "z.jpeg"));
  EXPECT_EQ(item(set, 1), converted(dir.path() / "cat" / "a.JPG"));
  EXPECT_EQ(item(set, 2), converted(dir.path() / "cat" / "b.png"));
  EXPECT_EQ(item(set, 3), converted(dir.path() / "dog" / "c.png"));
}

TEST(Folder, OtherFilesHiddenEntriesAndNestedFoldersAreIgnored) {
  TempDir dir;
  write_picture(dir.path() / "a" / "1.png", 1);
  write_picture(dir.path() / "b" / "1.png", 2);
  write_text(dir.path() / "README.txt", "about this set");
  write_text(dir.path() / "a" / "notes.txt", "not an image");
  write_text(dir.path() / "a" / ".DS_Store", "junk");
  write_text(dir.path() / "b" / "Thumbs.db", "junk");
  write_picture(dir.path() / "a" / "nested" / "2.png", 3);
  write_picture(dir.path() / ".cache" / "3.png", 4);
  Dataset set = load_image_folder(dir.path().string());
  EXPECT_THAT(set.class_names, ElementsAre("a", "b"));
  EXPECT_EQ(set.size(), 2);
}

TEST(Folder, ClassFolderWithoutImagesIsAnError) {
  TempDir dir;
  write_picture(dir.path() / "a" / "1.png", 1);
  write_text(dir.path() / "b" / "notes.txt", "no images here");
  EXPECT_THAT(error_of([&] { load_image_folder(dir.path().string()); }),
              HasSubstr((dir / "b") + ": class folder without PNG or JPEG images"));
}

TEST(Folder, NoClassFoldersIsAnError) {
  TempDir dir;
  write_text(dir.path() / "README.txt", "nothing");
  EXPECT_THAT(error_of([&] { load_image_folder(dir.path().string()); }),
              HasSubstr(dir.path().string() + ": no class folders"));
  EXPECT_FALSE(is_image_folder(dir.path().string()));
}

TEST(Folder, UnreadableImageIsAnErrorNamingIt) {
  TempDir dir;
  make_folder(dir.path(), {"a", "b"}, 3);
  write_text(dir.path() / "b" / "bad.png", "this is text");
  EXPECT_THAT(error_of([&] { load_image_folder(dir.path().string()); }),
              HasSubstr((dir / "b/bad.png") + ": not a PNG or JPEG image"));
  fs::remove(dir.path() / "b" / "bad.png");
  write_picture(dir.path() / "b" / "cut.png", 5);
  fs::resize_file(dir.path() / "b" / "cut.png", 60);
  EXPECT_THAT(error_of([&] { load_image_folder(dir.path().string()); }),
              HasSubstr((dir / "b/cut.png") + ": corrupt"));
  fs::remove(dir.path() / "b" / "cut.png");
  std::vector<uint8_t> white(30 * 30, 255);
  ASSERT_TRUE(stbi_write_png((dir / "a/blank.png").c_str(), 30, 30, 1, white.data(), 30));
  EXPECT_THAT(error_of([&] { load_image_folder(dir.path().string()); }),
              HasSubstr((dir / "a/blank.png") + ": no ink found"));
}

TEST(Folder, OneFolderIsSplitBySeededFraction) {
  TempDir dir;
  make_folder(dir.path(), {"x", "y"}, 10);
  write_picture(dir.path() / "z" / "only.png", 99);  // one image: stays in train
  DatasetSplits s = load_folder_dataset(dir.path().string(), {.test_fraction = 0.3, .seed = 5});
  EXPECT_THAT(s.train.class_names, ElementsAre("x", "y", "z"));
  EXPECT_EQ(s.test.class_names, s.train.class_names);
  EXPECT_THAT(s.train.labels, ElementsAre(0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 2));
  EXPECT_THAT(s.test.labels, ElementsAre(0, 0, 0, 1, 1, 1));
  // Together the two splits hold every image once.
  Dataset all = load_image_folder(dir.path().string());
  auto key = [](const Dataset& d, int64_t i) {
    return std::string(d.image(i), d.image(i) + d.height * d.width);
  };
  std::multiset<std::string> a, b;
  for (int64_t i = 0; i < all.size(); ++i) a.insert(key(all, i));
  for (int64_t i = 0; i < s.train.size(); ++i) b.insert(key(s.train, i));
  for (int64_t i = 0; i < s.test.size(); ++i) b.insert(key(s.test, i));
  EXPECT_EQ(a, b);
  // The same seed gives the same split; another seed another.
  DatasetSplits again = load_folder_dataset(dir.path().string(), {.test_fraction = 0.3, .seed = 5});
  EXPECT_EQ(again.test.images, s.test.images);
  DatasetSplits other = load_folder_dataset(dir.path().string(), {.test_fraction = 0.3, .seed = 6});
  EXPECT_NE(other.test.images, s.test.images);
}

TEST(Folder, PerClassKeepsTheFirstTrainingImagesOnly) {
  TempDir dir;
  make_folder(dir.path(), {"x", "y"}, 6);
  Dataset few = load_image_folder(dir.path().string(), {.per_class = 2});
  EXPECT_THAT(few.labels, ElementsAre(0, 0, 1, 1));
  EXPECT_EQ(item(few, 1), converted(dir.path() / "x" / "img11.jpg"));
  DatasetSplits s =
      load_folder_dataset(dir.path().string(), {.per_class = 1, .test_fraction = 0.5});
  EXPECT_THAT(s.train.labels, ElementsAre(0, 1));
  EXPECT_THAT(s.test.labels, ElementsAre(0, 0, 0, 1, 1, 1)) << "the test split is never cut";
  EXPECT_THAT(error_of([&] { load_image_folder(dir.path().string(), {.per_class = -1}); }),
              HasSubstr("per_class must be at least 0, got -1"));
  EXPECT_THAT(error_of([&] { load_folder_dataset(dir.path().string(), {.test_fraction = 1}); }),
              HasSubstr("test_fraction must be in [0, 1), got 1"));
}

TEST(Folder, TrainAndTestFoldersAreTakenAsTheyAre) {
  TempDir dir;
  make_folder(dir.path() / "train", {"a", "b"}, 3);
  make_folder(dir.path() / "test", {"a", "b"}, 2);
  DatasetSplits s = load_folder_dataset(dir.path().string());
  EXPECT_THAT(s.train.class_names, ElementsAre("a", "b"));
  EXPECT_EQ(s.train.size(), 6);
  EXPECT_EQ(s.test.size(), 4);
  EXPECT_EQ(item(s.test, 3), converted(dir.path() / "test" / "b" / "img11.jpg"));
  write_picture(dir.path() / "test" / "c" / "1.png", 1);
  EXPECT_THAT(error_of([&] { load_folder_dataset(dir.path().string()); }),
              HasSubstr("train/ has the classes [a, b] but test/ has [a, b, c]"));
}

TEST(Folder, LoadDatasetRecognisesAFolderLayout) {
  TempDir dir;
  make_folder(dir.path() / "mine", {"circle", "line"}, 5);
  EXPECT_TRUE(is_image_folder((dir / "mine")));
  DatasetSplits s = load_dataset(dir / "mine", "unused");
  EXPECT_THAT(s.train.class_names, ElementsAre("circle", "line"));
  EXPECT_EQ(s.train.size() + s.test.size(), 10);
  EXPECT_EQ(s.test.size(), 2) << "20% of each class by default";
  DatasetSplits few = load_dataset(dir / "mine", "unused", FolderOptions{.per_class = 1});
  EXPECT_EQ(few.train.size(), 2);
  // IDX files win: a directory holding them is an IDX set even with folders in it.
  testing::make_idx_set(dir / "mine", 5, 5);
  EXPECT_FALSE(is_image_folder(dir / "mine"));
  EXPECT_EQ(load_dataset(dir / "mine", "unused").train.size(), 5);
  fs::create_directories(dir.path() / "empty");
  EXPECT_THAT(error_of([&] { load_dataset(dir / "empty", "unused"); }),
              HasSubstr("empty: holds neither the IDX files of a data set"));
}

TEST(Folder, SameSetForAnyThreadCount) {
  TempDir dir;
  make_folder(dir.path(), {"a", "b", "c"}, 7);
  const int threads = num_threads();
  set_num_threads(1);
  Dataset one = load_image_folder(dir.path().string());
  set_num_threads(3);
  Dataset three = load_image_folder(dir.path().string());
  set_num_threads(threads);
  EXPECT_EQ(one.images, three.images);
  EXPECT_EQ(one.labels, three.labels);
}

}  // namespace
}  // namespace scratchnet
